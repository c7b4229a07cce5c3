package authz_test

import (
	"context"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/extauthz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// clock is a fake clock the test moves by hand.
type clock = authztest.Clock

func newClock() *clock { return authztest.NewClock() }

// env is one jwtauthz in a test: a real IdP on loopback serving a JWKS, a
// jwks.Source fetching it, an Engine (authztest.Env), and a real gRPC
// server (extauthz) and client.
type env struct {
	tb     testing.TB
	idp    *issuer.Server
	src    *jwks.Source
	eng    *authz.Engine
	clock  *clock
	client authv3.AuthorizationClient
	te     *authztest.Env
}

type envOption = authztest.Option

func withAudiences(aud ...string) envOption { return authztest.WithAudiences(aud...) }

func withConfig(f func(*authz.Config, *authz.ProviderConfig)) envOption { return f }

// newEnv starts an env whose IdP publishes signers (one ES256 key if none).
func newEnv(t testing.TB, signers []*issuer.Signer, opts ...envOption) *env {
	t.Helper()
	idp := issuer.NewServer(signers...)
	t.Cleanup(idp.Close)
	return buildEnv(t, idp, true, opts...)
}

// newEnvNoWait is newEnv for an IdP that may not answer: it does not wait
// for the keys.
func newEnvNoWait(t testing.TB, idp *issuer.Server, opts ...envOption) *env {
	return buildEnv(t, idp, false, opts...)
}

func buildEnv(t testing.TB, idp *issuer.Server, wait bool, opts ...envOption) *env {
	t.Helper()
	te := authztest.Build(t, idp, wait, opts...)
	e := &env{tb: t, idp: te.IdP, src: te.Src, eng: te.Eng, clock: te.Clock, te: te}
	e.client = serveGRPC(t, extauthz.NewServer(e.eng))
	return e
}

// withDefaultLimits is c with the limits of authz.DefaultConfig (a zero
// limit in a Config is not its default): the Config literals of these tests
// name only what they are about. c must set no limit.
func withDefaultLimits(c authz.Config) authz.Config { return authztest.WithDefaultLimits(c) }

// runSource runs a jwks.Source until the test ends and, if wait, waits until
// it has keys.
func runSource(t testing.TB, cfg jwks.Config, wait bool) *jwks.Source {
	t.Helper()
	return authztest.RunSource(t, cfg, wait)
}

// serveGRPC serves the ext_authz service on a loopback port, with opts
// beside jwtauthz's own server options.
func serveGRPC(t testing.TB, s authv3.AuthorizationServer, opts ...grpc.ServerOption) authv3.AuthorizationClient {
	t.Helper()
	register := func(gs *grpc.Server) { authv3.RegisterAuthorizationServer(gs, s) }
	if as, ok := s.(*extauthz.Server); ok {
		register = as.Register // what jwtauthz serves: the wire codec's path
	}
	return authztest.ServeGRPC(t, register, append(extauthz.ServerOptions(), opts...)...)
}

// token mints a token from the IdP's signing key with the fake clock's
// times: valid for an hour unless claims say otherwise. A nil value removes
// a claim.
func (e *env) token(claims jwt.MapClaims) string { return e.te.Token(claims) }

// browserRequest returns the shared realistic CheckRequest with the given
// authorization header ("" removes it) and x-request-id ("" removes it).
func browserRequest(t testing.TB, authorization, requestID string) *authv3.CheckRequest {
	t.Helper()
	return authztest.BrowserRequest(t, authorization, requestID)
}

// check sends a Check with the given authorization header.
func (e *env) check(authorization string) *authv3.CheckResponse {
	return e.send(browserRequest(e.tb, authorization, ""))
}

func (e *env) send(req *authv3.CheckRequest) *authv3.CheckResponse {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := e.client.Check(ctx, req)
	if err != nil {
		e.tb.Fatalf("Check: %v", err)
	}
	if resp.Status == nil {
		e.tb.Fatal("CheckResponse without status")
	}
	return resp
}

// okHeaders returns the headers an allow sets, by name.
func okHeaders(resp *authv3.CheckResponse) map[string]string { return authztest.OKHeaders(resp) }

// deniedHeader returns a header of a denial.
func deniedHeader(resp *authv3.CheckResponse, name string) string {
	return authztest.DeniedHeader(resp, name)
}

// deniedBody decodes a denial's JSON body.
func deniedBody(t testing.TB, resp *authv3.CheckResponse) map[string]string {
	t.Helper()
	return authztest.DeniedBody(t, resp)
}
