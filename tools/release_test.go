// Tests of the release files, run by .ci/release (`go -C tools test`).
// `goreleaser check` and actionlint say that .goreleaser.yaml and the
// workflows are well formed; these say that they agree with the rest of the
// repository: the release image with ./Dockerfile, the version stamps with
// the code's variables, the image tags with the manifests and the docs, the
// workflows with the checked GoReleaser and Go versions.
package tools

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository, seen from tools/.
const root = ".."

// image is the repository the release pushes and the manifests pull.
const image = "ghcr.io/jwtauthz/jwtauthz"

// stamps are the variables of package main that a build sets with -X, and
// the Dockerfile build argument each takes.
var stamps = map[string]string{"main.version": "VERSION", "main.commit": "COMMIT", "main.date": "DATE"}

// goreleaserConfig is the part of .goreleaser.yaml these tests read.
type goreleaserConfig struct {
	Builds []struct {
		ID, Main, Binary string
		Env, Flags       []string
		Ldflags          []string
		Goos, Goarch     []string
	}
	Checksum struct {
		Algorithm string
	}
	Sboms []struct {
		Artifacts string
	}
	DockersV2 []struct {
		IDs          []string `yaml:"ids"`
		Dockerfile   string
		Images, Tags []string
		Platforms    []string
		SBOM         string `yaml:"sbom"`
	} `yaml:"dockers_v2"`
}

func readText(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(readText(t, rel)), v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

func goreleaser(t *testing.T) goreleaserConfig {
	t.Helper()
	var c goreleaserConfig
	readYAML(t, ".goreleaser.yaml", &c)
	if len(c.Builds) != 1 || len(c.DockersV2) != 1 {
		t.Fatalf(".goreleaser.yaml: %d builds and %d dockers_v2, want one each", len(c.Builds), len(c.DockersV2))
	}
	return c
}

// action matches a template action, to drop the spaces inside it.
var action = regexp.MustCompile(`\{\{\s*(.*?)\s*\}\}`)

// xFlags returns the -X name=value pairs of a linker flag string, and
// whether it has -s and -w. A template action in it ({{ .Version }}) is
// returned without spaces ({{.Version}}).
func xFlags(ldflags string) (map[string]string, bool) {
	f := strings.Fields(action.ReplaceAllString(ldflags, "{{$1}}"))
	x := map[string]string{}
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-X" {
			name, value, _ := strings.Cut(f[i+1], "=")
			x[name] = value
		}
	}
	return x, slices.Contains(f, "-s") && slices.Contains(f, "-w")
}

// TestGoreleaserBuild checks what the release builds: static, stripped,
// -trimpath binaries of ./cmd/jwtauthz for linux and darwin on amd64 and
// arm64, stamped through the same variables as the Dockerfile, with
// checksums and SBOMs.
func TestGoreleaserBuild(t *testing.T) {
	c := goreleaser(t)
	b := c.Builds[0]
	if b.Main != "./cmd/jwtauthz" || b.Binary != "jwtauthz" {
		t.Errorf("build main %q binary %q, want ./cmd/jwtauthz and jwtauthz", b.Main, b.Binary)
	}
	if !slices.Contains(b.Env, "CGO_ENABLED=0") || !slices.Contains(b.Flags, "-trimpath") {
		t.Errorf("build env %q flags %q: want CGO_ENABLED=0 and -trimpath", b.Env, b.Flags)
	}
	slices.Sort(b.Goos)
	slices.Sort(b.Goarch)
	if !slices.Equal(b.Goos, []string{"darwin", "linux"}) || !slices.Equal(b.Goarch, []string{"amd64", "arm64"}) {
		t.Errorf("goos %q goarch %q, want darwin and linux on amd64 and arm64", b.Goos, b.Goarch)
	}
	x, stripped := xFlags(strings.Join(b.Ldflags, " "))
	if !stripped {
		t.Errorf("ldflags %q: want -s -w", b.Ldflags)
	}
	for name := range stamps {
		if x[name] == "" {
			t.Errorf("ldflags %q: no -X %s=...", b.Ldflags, name)
		}
	}
	// The binary reports the tag, as the image is tagged (TestImageTags).
	if x["main.version"] != "v{{.Version}}" {
		t.Errorf("-X main.version=%s, want v{{ .Version }} (the git tag)", x["main.version"])
	}
	if c.Checksum.Algorithm != "sha256" {
		t.Errorf("checksum algorithm %q, want sha256", c.Checksum.Algorithm)
	}
	if len(c.Sboms) == 0 {
		t.Error("no sboms: the release publishes an SBOM per archive")
	}
}

// TestImageStamps checks that ./Dockerfile sets the same variables from
// build arguments it declares: docker build --build-arg VERSION=...
func TestImageStamps(t *testing.T) {
	build, _ := dockerStages(t, "Dockerfile")
	var run string
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build ") {
			run = in.args
		}
	}
	_, ldflags, _ := strings.Cut(run, `-ldflags "`)
	ldflags, _, _ = strings.Cut(ldflags, `"`)
	x, stripped := xFlags(ldflags)
	if !stripped {
		t.Errorf("Dockerfile go build ldflags %q: want -s -w", ldflags)
	}
	for name, arg := range stamps {
		if x[name] != "${"+arg+"}" {
			t.Errorf("Dockerfile go build: -X %s=%q, want ${%s}", name, x[name], arg)
		}
		declared := slices.ContainsFunc(build, func(in instruction) bool {
			return in.cmd == "ARG" && (in.args == arg || strings.HasPrefix(in.args, arg+"="))
		})
		if !declared {
			t.Errorf("Dockerfile: no ARG %s in the build stage", arg)
		}
	}
	if len(x) != len(stamps) {
		t.Errorf("Dockerfile go build sets %v, want only %v", x, stamps)
	}
}

// TestReleaseDockerfile keeps Dockerfile.release, which GoReleaser builds
// from its own binaries, the image of ./Dockerfile: same base, user, ports,
// health check, entrypoint and command, the binary at the same path.
func TestReleaseDockerfile(t *testing.T) {
	_, final := dockerStages(t, "Dockerfile")
	build, release := dockerStages(t, "Dockerfile.release")
	if len(build) != 0 {
		t.Errorf("Dockerfile.release has %d stages before the last: want one stage, copying GoReleaser's binary", len(build))
	}
	for _, cmd := range []string{"FROM", "USER", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT", "CMD"} {
		want, got := args(final, cmd), args(release, cmd)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("Dockerfile.release %s %q, want %q as in Dockerfile", cmd, got, want)
		}
	}
	wantCopy := args(final, "COPY")
	if len(wantCopy) != 1 {
		t.Fatalf("Dockerfile final stage COPY %q: want one", wantCopy)
	}
	f := strings.Fields(wantCopy[0])
	dest := f[len(f)-1]
	bin := goreleaser(t).Builds[0].Binary
	// dockers_v2 puts each platform's binary at $TARGETPLATFORM/<binary>.
	if got, want := args(release, "COPY"), []string{"${TARGETPLATFORM}/" + bin + " " + dest}; !slices.Equal(got, want) {
		t.Errorf("Dockerfile.release COPY %q, want %q", got, want)
	}
	if got := args(release, "ARG"); !slices.Equal(got, []string{"TARGETPLATFORM"}) {
		t.Errorf("Dockerfile.release ARG %q, want TARGETPLATFORM", got)
	}
	for _, in := range release {
		if !slices.Contains([]string{"FROM", "ARG", "COPY", "USER", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT", "CMD"}, in.cmd) {
			t.Errorf("Dockerfile.release: %s %s, not in ./Dockerfile's final stage (distroless has no shell to RUN)", in.cmd, in.args)
		}
	}
}

// TestGoreleaserImage checks the image the release pushes: both linux
// platforms, from Dockerfile.release, of the build's binary, with an SBOM.
func TestGoreleaserImage(t *testing.T) {
	c := goreleaser(t)
	d := c.DockersV2[0]
	if d.Dockerfile != "Dockerfile.release" {
		t.Errorf("dockers_v2 dockerfile %q, want Dockerfile.release", d.Dockerfile)
	}
	if !slices.Equal(d.Images, []string{image}) {
		t.Errorf("dockers_v2 images %q, want %s", d.Images, image)
	}
	slices.Sort(d.Platforms)
	if !slices.Equal(d.Platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("dockers_v2 platforms %q, want linux/amd64 and linux/arm64", d.Platforms)
	}
	if !slices.Equal(d.IDs, []string{c.Builds[0].ID}) {
		t.Errorf("dockers_v2 ids %q, want the build's id %q", d.IDs, c.Builds[0].ID)
	}
	if d.SBOM != "true" {
		t.Errorf("dockers_v2 sbom %q, want true", d.SBOM)
	}
}
