# jwtauthz: a static binary on distroless, running as nonroot.
#
#   docker build -t jwtauthz .
#   docker build -t jwtauthz --build-arg VERSION=$(git describe --tags) --build-arg COMMIT=$(git rev-parse HEAD) --build-arg DATE=$(date -u +%FT%TZ) .
#   docker run --rm -p 9001-9003:9001-9003 jwtauthz serve --issuer https://issuer.example.com/
#   docker run --rm -p 127.0.0.1:9001-9003:9001-9003 jwtauthz dev --grpc-addr :9001 --http-addr :9002 --admin-addr :9003
#       # with a development issuer (dev listens on loopback unless given addresses)
#
# Checked by `go test ./cmd/jwtauthz/` (TestDockerfile): the stages, user,
# ports and health check below, and that the go build line builds a static
# binary whose `healthcheck` works against a running server. `go -C tools
# test` (TestReleaseDockerfile) keeps Dockerfile.release, the image GoReleaser
# publishes, on the same base, user, ports, health check and entrypoint.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Empty unless building for several platforms with buildx, where they name
# the target.
ARG TARGETOS
ARG TARGETARCH
# The version, commit and build date that `jwtauthz version`, the starting
# log line and jwtauthz_build_info report (--build-arg VERSION=..., as in the
# example above): the build context has no .git for Go to read them from.
# Release images are built by GoReleaser from Dockerfile.release instead.
ARG VERSION=dev
ARG COMMIT=
ARG DATE=
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" -o /out/jwtauthz ./cmd/jwtauthz

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/jwtauthz /usr/local/bin/jwtauthz
USER nonroot
# 9001 gRPC ext_authz (Envoy), 9002 HTTP forward-auth, 9003 admin.
EXPOSE 9001 9002 9003
# distroless has no curl: the binary asks its own /readyz (default admin
# address :9003, or JWTAUTHZ_ADMIN_ADDR).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/usr/local/bin/jwtauthz", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/jwtauthz"]
CMD ["serve"]
