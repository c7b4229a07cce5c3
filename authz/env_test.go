package authz_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// clock is a fake clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one jwtauthz in a test: a real IdP on loopback serving a JWKS, a
// jwks.Source fetching it, an Engine, and a real gRPC server and client.
type env struct {
	tb     testing.TB
	idp    *issuer.Server
	src    *jwks.Source
	eng    *authz.Engine
	clock  *clock
	client authv3.AuthorizationClient
}

type envOption func(*authz.Config, *authz.ProviderConfig)

func withAudiences(aud ...string) envOption {
	return func(_ *authz.Config, p *authz.ProviderConfig) { p.Audiences = aud }
}

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
	e := &env{tb: t, idp: idp, clock: newClock()}
	e.src = runSource(t, jwks.Config{Name: "test", Issuer: idp.URL, URL: idp.JWKSURL()}, wait)
	pc := authz.ProviderConfig{Name: "test", Issuer: idp.URL, Keys: e.src}
	cfg := authz.DefaultConfig()
	cfg.Now = e.clock.Now
	for _, o := range opts {
		o(&cfg, &pc)
	}
	cfg.Providers = append([]authz.ProviderConfig{pc}, cfg.Providers...)
	eng, err := authz.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	e.eng = eng
	e.client = serveGRPC(t, authz.NewServer(eng))
	return e
}

// withDefaultLimits is c with the limits of authz.DefaultConfig (a zero
// limit in a Config is not its default): the Config literals of these tests
// name only what they are about. c must set no limit.
func withDefaultLimits(c authz.Config) authz.Config {
	d := authz.DefaultConfig()
	d.Providers, d.Rules, d.Now, d.Observe, d.Logger = c.Providers, c.Rules, c.Now, c.Observe, c.Logger
	return d
}

// runSource runs a jwks.Source until the test ends and, if wait, waits until
// it has keys.
func runSource(t testing.TB, cfg jwks.Config, wait bool) *jwks.Source {
	t.Helper()
	src := jwks.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if !wait {
		return src
	}
	select {
	case <-src.ReadyC():
	case <-time.After(10 * time.Second):
		t.Fatal("key source never became ready")
	}
	// ReadyC closes as the first set is published, a moment before that
	// fetch stops taking joiners: wait until it is over, so that a test's
	// Refresh makes a fetch of its own instead of joining it.
	for deadline := time.Now().Add(10 * time.Second); src.Status().Fetches == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first fetch never ended")
		}
	}
	return src
}

// serveGRPC serves the ext_authz service on a loopback port, with opts
// beside jwtauthz's own server options.
func serveGRPC(t testing.TB, s authv3.AuthorizationServer, opts ...grpc.ServerOption) authv3.AuthorizationClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(append(authz.ServerOptions(), opts...)...)
	if as, ok := s.(*authz.Server); ok {
		as.Register(gs) // what jwtauthz serves: the wire codec's path
	} else {
		authv3.RegisterAuthorizationServer(gs, s)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return authv3.NewAuthorizationClient(cc)
}

// token mints a token from the IdP's signing key with the fake clock's
// times: valid for an hour unless claims say otherwise. A nil value removes
// a claim.
func (e *env) token(claims jwt.MapClaims) string {
	now := e.clock.Now()
	c := jwt.MapClaims{"iss": e.idp.URL, "sub": "user_1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok, err := e.idp.Signing().Sign(c)
	if err != nil {
		panic(err)
	}
	return tok
}

// browserRequest returns the shared realistic CheckRequest with the given
// authorization header ("" removes it) and x-request-id ("" removes it).
func browserRequest(t testing.TB, authorization, requestID string) *authv3.CheckRequest {
	t.Helper()
	req := authz.BrowserCheckRequest(t)
	h := req.Attributes.Request.Http.Headers
	setOrDelete(h, "authorization", authorization)
	setOrDelete(h, "x-request-id", requestID)
	return req
}

func setOrDelete(h map[string]string, k, v string) {
	if v == "" {
		delete(h, k)
	} else {
		h[k] = v
	}
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
func okHeaders(resp *authv3.CheckResponse) map[string]string {
	out := map[string]string{}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		out[h.Header.Key] = h.Header.Value
	}
	return out
}

// deniedHeader returns a header of a denial.
func deniedHeader(resp *authv3.CheckResponse, name string) string {
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		if strings.EqualFold(h.Header.Key, name) {
			return h.Header.Value
		}
	}
	return ""
}

// deniedBody decodes a denial's JSON body.
func deniedBody(t testing.TB, resp *authv3.CheckResponse) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(resp.GetDeniedResponse().GetBody()), &m); err != nil {
		t.Fatalf("denial body %q: %v", resp.GetDeniedResponse().GetBody(), err)
	}
	return m
}
