package extauthz_test

import (
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/jwtauthz/jwtauthz/authz/extauthz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// env is an engine (authztest.Env) served by extauthz on a loopback port,
// as jwtauthz serves it, and a gRPC client of it.
type env struct {
	*authztest.Env
	client authv3.AuthorizationClient
}

// newEnv starts an env whose IdP publishes signers (one ES256 key if none).
func newEnv(t testing.TB, signers []*issuer.Signer, opts ...authztest.Option) *env {
	t.Helper()
	te := authztest.New(t, signers, opts...)
	return &env{Env: te, client: serveGRPC(t, extauthz.NewServer(te.Eng))}
}

// serveGRPC serves s on a loopback port through the wire codec's path
// (Register), with opts beside extauthz's own server options.
func serveGRPC(t testing.TB, s *extauthz.Server, opts ...grpc.ServerOption) authv3.AuthorizationClient {
	t.Helper()
	return authztest.ServeGRPC(t, s.Register, append(extauthz.ServerOptions(), opts...)...)
}
