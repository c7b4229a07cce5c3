// Package authztest builds what the tests of authz and of its adapters
// share: a real IdP on loopback serving a JWKS, a jwks.Source fetching it,
// an Engine on a fake clock, tokens, and the realistic CheckRequest
// (testdata/checkrequest-browser.json at the module's root). It is for
// tests only.
package authztest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/internal/testutil"
	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// Clock is a fake clock the test moves by hand.
type Clock = testutil.Clock

// NewClock returns a Clock at a fixed time.
func NewClock() *Clock { return testutil.NewClock(time.Unix(1_800_000_000, 0)) }

// Env is one engine in a test: a real IdP on loopback serving a JWKS, a
// jwks.Source fetching it, and an Engine whose one provider, "test", trusts
// the IdP, on the fake clock Clock.
type Env struct {
	TB    testing.TB
	IdP   *issuer.Server
	Src   *jwks.Source
	Eng   *authz.Engine
	Clock *Clock
}

// Option changes the Config and the provider an Env is built with.
type Option func(*authz.Config, *authz.ProviderConfig)

// WithAudiences sets the provider's audiences.
func WithAudiences(aud ...string) Option {
	return func(_ *authz.Config, p *authz.ProviderConfig) { p.Audiences = aud }
}

// RealClock runs the engine on time.Now, as in production (benchmarks).
func RealClock() Option { return func(c *authz.Config, _ *authz.ProviderConfig) { c.Now = nil } }

// New starts an Env whose IdP publishes signers (one ES256 key if none),
// and waits until the source has its keys.
func New(t testing.TB, signers []*issuer.Signer, opts ...Option) *Env {
	t.Helper()
	idp := issuer.NewServer(signers...)
	t.Cleanup(idp.Close)
	return Build(t, idp, true, opts...)
}

// Build starts an Env for idp, the limits of authz.DefaultConfig changed by
// opts; if wait, it waits until the source has the IdP's keys.
func Build(t testing.TB, idp *issuer.Server, wait bool, opts ...Option) *Env {
	t.Helper()
	e := &Env{TB: t, IdP: idp, Clock: NewClock()}
	e.Src = RunSource(t, jwks.Config{Name: "test", Issuer: idp.URL, URL: idp.JWKSURL()}, wait)
	pc := authz.ProviderConfig{Name: "test", Issuer: idp.URL, Keys: e.Src}
	cfg := authz.DefaultConfig()
	cfg.Now = e.Clock.Now
	for _, o := range opts {
		o(&cfg, &pc)
	}
	cfg.Providers = append([]authz.ProviderConfig{pc}, cfg.Providers...)
	eng, err := authz.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	e.Eng = eng
	return e
}

// Token mints a token from the IdP's signing key with the fake clock's
// times: valid for an hour unless claims say otherwise. A nil value removes
// a claim.
func (e *Env) Token(claims jwt.MapClaims) string {
	now := e.Clock.Now()
	c := jwt.MapClaims{"iss": e.IdP.URL, "sub": "user_1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok, err := e.IdP.Signing().Sign(c)
	if err != nil {
		panic(err)
	}
	return tok
}

// Bearers mints n distinct authorization values ("Bearer " and a token)
// with s, valid for an hour from the real time: for an Env on RealClock.
func (e *Env) Bearers(s *issuer.Signer, n int) []string {
	out := make([]string, n)
	for i := range out {
		tok, err := s.Sign(jwt.MapClaims{"iss": e.IdP.URL, "sub": fmt.Sprintf("user_2%030d", i), "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
		if err != nil {
			e.TB.Fatal(err)
		}
		out[i] = "Bearer " + tok
	}
	return out
}

// RequestIDs returns n distinct x-request-id values shaped like Envoy's.
func RequestIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("f3c1b3a0-5d2e-4c1e-9a61-%012d", i)
	}
	return ids
}

// WithDefaultLimits is c with the limits of authz.DefaultConfig (a zero
// limit in a Config is not its default): the Config literals of tests name
// only what they are about. c must set no limit.
func WithDefaultLimits(c authz.Config) authz.Config {
	d := authz.DefaultConfig()
	d.Providers, d.Rules, d.Now, d.Observe, d.Logger = c.Providers, c.Rules, c.Now, c.Observe, c.Logger
	return d
}

// RunSource runs a jwks.Source until the test ends and, if wait, waits until
// it has keys.
func RunSource(t testing.TB, cfg jwks.Config, wait bool) *jwks.Source {
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

// BrowserCheckRequest returns the shared realistic CheckRequest: what
// Envoy sends for a browser's request (testdata/checkrequest-browser.json).
func BrowserCheckRequest(t testing.TB) *authv3.CheckRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "testdata", "checkrequest-browser.json"))
	if err != nil {
		t.Fatal(err)
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(b, req); err != nil {
		t.Fatal(err)
	}
	return req
}

// moduleRoot is the directory of the go.mod above the test's package.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = up
	}
}

// BrowserRequest returns the shared realistic CheckRequest with the given
// authorization header ("" removes it) and x-request-id ("" removes it).
func BrowserRequest(t testing.TB, authorization, requestID string) *authv3.CheckRequest {
	t.Helper()
	req := BrowserCheckRequest(t)
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

// OKHeaders returns the headers an allow sets, by name.
func OKHeaders(resp *authv3.CheckResponse) map[string]string {
	out := map[string]string{}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		out[h.Header.Key] = h.Header.Value
	}
	return out
}

// DeniedHeader returns a header of a denial.
func DeniedHeader(resp *authv3.CheckResponse, name string) string {
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		if strings.EqualFold(h.Header.Key, name) {
			return h.Header.Value
		}
	}
	return ""
}

// DeniedBody decodes a denial's JSON body.
func DeniedBody(t testing.TB, resp *authv3.CheckResponse) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(resp.GetDeniedResponse().GetBody()), &m); err != nil {
		t.Fatalf("denial body %q: %v", resp.GetDeniedResponse().GetBody(), err)
	}
	return m
}
