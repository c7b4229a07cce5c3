package authz_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
)

// fakeIntrospector answers from a table, by token: a fault the tests
// cannot cause with a real server (a timeout on the fake clock, a count of
// calls under a synctest bubble). The end-to-end tests use a real server.
type fakeIntrospector struct {
	mu      sync.Mutex
	answers map[string]map[string]any
	err     error         // returned for every token if set
	block   chan struct{} // if set, each call waits for it (or ctx)
	calls   atomic.Int64
}

func (f *fakeIntrospector) Introspect(ctx context.Context, tok string) (map[string]any, error) {
	f.calls.Add(1)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", authz.ErrIntrospectionUnavailable, ctx.Err())
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if a, ok := f.answers[tok]; ok {
		return a, nil
	}
	return map[string]any{"active": false}, nil
}

func (f *fakeIntrospector) set(tok string, a map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.answers == nil {
		f.answers = map[string]map[string]any{}
	}
	f.answers[tok] = a
}

const introIss = "https://idp.example.com/"

// opaqueEnv is an engine with one introspection provider, "hydra", on the
// fake clock.
type opaqueEnv struct {
	eng   *authz.Engine
	fake  *fakeIntrospector
	clock *authztest.Clock
}

func newOpaqueEnv(t testing.TB, opts ...func(*authz.Config, *authz.ProviderConfig)) *opaqueEnv {
	t.Helper()
	e := &opaqueEnv{fake: &fakeIntrospector{}, clock: authztest.NewClock()}
	pc := authz.ProviderConfig{Name: "hydra", Issuer: introIss, Introspector: e.fake, IntrospectionCacheTTL: time.Minute}
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
	return e
}

func (e *opaqueEnv) check(tok, path string) authz.Decision {
	return e.eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "api.example.com", Path: path,
		Headers: authz.MapHeaders{"authorization": "Bearer " + tok}})
}

// active is an active answer for the fake clock: sub, iss, an exp an hour
// on, and what more says (a nil value removes a member).
func (e *opaqueEnv) active(more map[string]any) map[string]any {
	a := map[string]any{"active": true, "sub": "user_1", "iss": introIss, "exp": e.clock.Now().Add(time.Hour).Unix(), "token_type": "access_token"}
	for k, v := range more {
		if v == nil {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	return a
}

func TestIntrospectionVerdicts(t *testing.T) {
	now := authztest.NewClock().Now()
	tests := []struct {
		name       string
		answer     map[string]any // nil: the fake's err
		err        error
		audiences  []string
		noIssuer   bool
		wantReason authz.Reason
	}{
		{name: "active", answer: map[string]any{}, wantReason: authz.ReasonOK},
		{name: "inactive", answer: map[string]any{"active": false}, wantReason: authz.ReasonInactive},
		{name: "active missing", answer: map[string]any{"active": nil}, wantReason: authz.ReasonInactive},
		{name: "active the string true", answer: map[string]any{"active": "true"}, wantReason: authz.ReasonInactive},
		{name: "active 1", answer: map[string]any{"active": 1}, wantReason: authz.ReasonInactive},
		{name: "not JSON, a status other than 200, too large", err: errors.New("introspect: introspection failed: status 500"), wantReason: authz.ReasonIntrospectionFailed},
		{name: "sub not a string", answer: map[string]any{"sub": 7}, wantReason: authz.ReasonIntrospectionFailed},
		{name: "exp not a number", answer: map[string]any{"exp": "soon"}, wantReason: authz.ReasonIntrospectionFailed},
		{name: "exp past beyond the skew", answer: map[string]any{"exp": now.Add(-2 * time.Minute).Unix()}, wantReason: authz.ReasonExpired},
		{name: "exp past within the skew", answer: map[string]any{"exp": now.Add(-30 * time.Second).Unix()}, wantReason: authz.ReasonOK},
		{name: "no exp", answer: map[string]any{"exp": nil}, wantReason: authz.ReasonOK},
		{name: "nbf future beyond the skew", answer: map[string]any{"nbf": now.Add(2 * time.Minute).Unix()}, wantReason: authz.ReasonNotYetValid},
		{name: "nbf future within the skew", answer: map[string]any{"nbf": now.Add(30 * time.Second).Unix()}, wantReason: authz.ReasonOK},
		{name: "iss another", answer: map[string]any{"iss": "https://evil.example.com/"}, wantReason: authz.ReasonWrongIssuer},
		{name: "iss missing", answer: map[string]any{"iss": nil}, wantReason: authz.ReasonMissingClaim},
		{name: "iss missing, none configured", answer: map[string]any{"iss": nil}, noIssuer: true, wantReason: authz.ReasonMissingClaim},
		{name: "iss any, none configured", answer: map[string]any{"iss": "https://other.example.com/"}, noIssuer: true, wantReason: authz.ReasonOK},
		{name: "aud one of", answer: map[string]any{"aud": []any{"web", "api"}}, audiences: []string{"api"}, wantReason: authz.ReasonOK},
		{name: "aud a string", answer: map[string]any{"aud": "api"}, audiences: []string{"api"}, wantReason: authz.ReasonOK},
		{name: "aud another", answer: map[string]any{"aud": "web"}, audiences: []string{"api"}, wantReason: authz.ReasonWrongAudience},
		{name: "aud missing", answer: map[string]any{}, audiences: []string{"api"}, wantReason: authz.ReasonMissingClaim},
		{name: "aud not checked without audiences", answer: map[string]any{"aud": "web"}, wantReason: authz.ReasonOK},
		{name: "token_type refresh_token", answer: map[string]any{"token_type": "refresh_token"}, wantReason: authz.ReasonWrongTyp},
		{name: "Hydra's refresh token: token_use", answer: map[string]any{"token_type": "Bearer", "token_use": "refresh_token"}, wantReason: authz.ReasonWrongTyp},
		{name: "Hydra's access token", answer: map[string]any{"token_type": "Bearer", "token_use": "access_token"}, wantReason: authz.ReasonOK},
		{name: "token_type absent", answer: map[string]any{"token_type": nil}, wantReason: authz.ReasonOK},
		{name: "token_type not a string", answer: map[string]any{"token_type": true}, wantReason: authz.ReasonIntrospectionFailed},
		{name: "unavailable", err: fmt.Errorf("%w: connection refused", authz.ErrIntrospectionUnavailable), wantReason: authz.ReasonUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newOpaqueEnv(t, func(_ *authz.Config, p *authz.ProviderConfig) {
				p.Audiences = tt.audiences
				if tt.noIssuer {
					p.Issuer = ""
				}
			})
			e.fake.err = tt.err
			if tt.answer != nil {
				a := e.active(tt.answer)
				if _, ok := tt.answer["active"]; ok {
					a["active"] = tt.answer["active"]
					if tt.answer["active"] == nil {
						delete(a, "active")
					}
				}
				e.fake.set("opaque-1", a)
			}
			d := e.check("opaque-1", "/")
			if d.Reason != tt.wantReason || d.Allow != (tt.wantReason == authz.ReasonOK) || d.Status() != tt.wantReason.Status() {
				t.Fatalf("decision %v (allow %v, %d); want %v", d.Reason, d.Allow, d.Status(), tt.wantReason)
			}
			if d.Provider != "hydra" {
				t.Errorf("provider %q; want hydra", d.Provider)
			}
			if d.Allow && (d.Subject != "user_1" || d.Issuer == "") {
				t.Errorf("subject %q issuer %q; want user_1 and the answer's iss", d.Subject, d.Issuer)
			}
		})
	}
}

func TestIntrospectionStatuses(t *testing.T) {
	for _, tt := range []struct {
		reason authz.Reason
		status int
	}{{authz.ReasonInactive, http.StatusUnauthorized}, {authz.ReasonIntrospectionFailed, http.StatusServiceUnavailable}, {authz.ReasonUnavailable, http.StatusServiceUnavailable}} {
		if tt.reason.Status() != tt.status {
			t.Errorf("%v: status %d; want %d", tt.reason, tt.reason.Status(), tt.status)
		}
	}
}

// A wait on the endpoint is bounded by NetworkWait and by the request's
// deadline: then the check is unavailable (503), and nothing is kept.
func TestIntrospectionTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newOpaqueEnv(t, func(c *authz.Config, _ *authz.ProviderConfig) { c.NetworkWait = 200 * time.Millisecond })
		e.fake.block = make(chan struct{}) // never answers
		e.fake.set("opaque-1", e.active(nil))
		start := time.Now()
		d := e.check("opaque-1", "/")
		if d.Reason != authz.ReasonUnavailable || d.Status() != http.StatusServiceUnavailable {
			t.Fatalf("decision %v; want unavailable", d.Reason)
		}
		if waited := time.Since(start); waited != 200*time.Millisecond {
			t.Errorf("waited %v; want NetworkWait, 200ms", waited)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start = time.Now()
		d = e.eng.Check(ctx, &authz.Request{Method: "GET", Host: "h", Path: "/", Headers: authz.MapHeaders{"authorization": "Bearer opaque-1"}})
		if d.Reason != authz.ReasonUnavailable || time.Since(start) >= 100*time.Millisecond {
			t.Errorf("decision %v after %v; want unavailable before the request's deadline", d.Reason, time.Since(start))
		}
		close(e.fake.block)
		if d := e.check("opaque-1", "/"); !d.Allow || d.Cached {
			t.Errorf("once the endpoint answers: allow %v cached %v; want a fresh allow (nothing was kept)", d.Allow, d.Cached)
		}
	})
}

func TestIntrospectionCache(t *testing.T) {
	e := newOpaqueEnv(t)
	e.fake.set("good", e.active(nil))
	e.fake.set("noexp", e.active(map[string]any{"exp": nil}))
	steps := []struct {
		name      string
		tok       string
		advance   time.Duration
		failWith  error // the fake's error from this step on
		wantAllow bool
		wantLayer authz.Layer
		wantCalls int64 // calls so far
	}{
		{name: "a new token is introspected", tok: "good", wantAllow: true, wantLayer: authz.LayerVerified, wantCalls: 1},
		{name: "the second check is a token cache hit", tok: "good", wantAllow: true, wantLayer: authz.LayerTokenCache, wantCalls: 1},
		{name: "an inactive one is introspected", tok: "revoked", wantLayer: authz.LayerVerified, wantCalls: 2},
		{name: "and remembered", tok: "revoked", wantLayer: authz.LayerNegativeCache, wantCalls: 2},
		{name: "without exp", tok: "noexp", wantAllow: true, wantLayer: authz.LayerVerified, wantCalls: 3},
		{name: "cached for the introspection cache TTL", tok: "noexp", advance: 59 * time.Second, wantAllow: true, wantLayer: authz.LayerTokenCache, wantCalls: 3},
		{name: "and no longer", tok: "noexp", advance: time.Second, wantAllow: true, wantLayer: authz.LayerVerified, wantCalls: 4},
		{name: "the IdP down: a cached token is still answered", tok: "good", failWith: authz.ErrIntrospectionUnavailable, wantAllow: true, wantLayer: authz.LayerTokenCache, wantCalls: 4},
		{name: "a new one is unavailable", tok: "other", wantLayer: authz.LayerVerified, wantCalls: 5},
		{name: "and not remembered", tok: "other", wantLayer: authz.LayerVerified, wantCalls: 6},
		{name: "a failed answer is not remembered either", tok: "other", failWith: errors.New("status 500"), wantLayer: authz.LayerVerified, wantCalls: 7},
		{name: "twice", tok: "other", wantLayer: authz.LayerVerified, wantCalls: 8},
		{name: "the cache TTL (5 min) ends a grant", tok: "good", failWith: nil, advance: 5 * time.Minute, wantAllow: true, wantLayer: authz.LayerVerified, wantCalls: 9},
	}
	for _, s := range steps {
		e.clock.Add(s.advance)
		if s.failWith != nil || s.name == "the cache TTL (5 min) ends a grant" {
			e.fake.mu.Lock()
			e.fake.err = s.failWith
			e.fake.mu.Unlock()
		}
		d := e.check(s.tok, "/")
		if d.Allow != s.wantAllow || d.Layer != s.wantLayer || e.fake.calls.Load() != s.wantCalls {
			t.Fatalf("%s: allow %v layer %v calls %d (%v); want %v %v %d", s.name, d.Allow, d.Layer, e.fake.calls.Load(), d.Reason, s.wantAllow, s.wantLayer, s.wantCalls)
		}
	}
}

// The token cache keeps a grant no longer than the answer's exp.
func TestIntrospectionCacheUntilExp(t *testing.T) {
	e := newOpaqueEnv(t)
	e.fake.set("short", e.active(map[string]any{"exp": e.clock.Now().Add(30 * time.Second).Unix()}))
	if d := e.check("short", "/"); !d.Allow {
		t.Fatal(d.Reason)
	}
	e.clock.Add(29 * time.Second)
	if d := e.check("short", "/"); d.Layer != authz.LayerTokenCache {
		t.Fatalf("before exp: layer %v; want token_cache", d.Layer)
	}
	e.clock.Add(time.Second)
	if d := e.check("short", "/"); d.Layer != authz.LayerVerified || e.fake.calls.Load() != 2 {
		t.Fatalf("at exp: layer %v calls %d; want verified, 2", d.Layer, e.fake.calls.Load())
	}
}

// Concurrent checks of one new token make one introspection call.
func TestIntrospectionSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newOpaqueEnv(t)
		e.fake.block = make(chan struct{})
		e.fake.set("opaque-1", e.active(nil))
		var wg sync.WaitGroup
		var allowed atomic.Int64
		for range 100 {
			wg.Go(func() {
				if e.check("opaque-1", "/").Allow {
					allowed.Add(1)
				}
			})
		}
		synctest.Wait() // every check waits: one on the endpoint, the others for it
		close(e.fake.block)
		wg.Wait()
		if n := e.fake.calls.Load(); n != 1 || allowed.Load() != 100 {
			t.Fatalf("%d calls, %d allowed; want 1 call, 100 allowed", n, allowed.Load())
		}
	})
}

// routedEnv has a JWT provider "test" and two introspection providers,
// "hydra" (which also introspects JWTs) and "other"; /jwt allows test
// alone, /both test and hydra, /other other alone, /either hydra then
// other.
func routedEnv(t *testing.T) (*env, *fakeIntrospector, *fakeIntrospector) {
	hydra, other := &fakeIntrospector{}, &fakeIntrospector{}
	e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) {
		c.Providers = append(c.Providers,
			authz.ProviderConfig{Name: "hydra", Issuer: introIss, Introspector: hydra, IntrospectJWTs: true},
			authz.ProviderConfig{Name: "other", Introspector: other})
		c.Rules = []authz.RuleConfig{
			{Match: authz.Match{Path: "/jwt"}, Require: authz.Require{Providers: []string{"test"}}},
			{Match: authz.Match{Path: "/both"}, Require: authz.Require{Providers: []string{"test", "hydra"}}},
			{Match: authz.Match{Path: "/other"}, Require: authz.Require{Providers: []string{"other"}}},
			{Match: authz.Match{Path: "/either"}, Require: authz.Require{Providers: []string{"hydra", "other"}}},
		}
	}))
	return e, hydra, other
}

func (e *env) checkPath(tok, path string) authz.Decision {
	return e.eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "api.example.com", Path: path,
		Headers: authz.MapHeaders{"authorization": "Bearer " + tok}})
}

func TestIntrospectionRouting(t *testing.T) {
	e, hydra, other := routedEnv(t)
	exp := e.clock.Now().Add(time.Hour).Unix()
	hydra.set("hydra-opaque", map[string]any{"active": true, "sub": "h", "iss": introIss, "exp": exp})
	other.set("other-opaque", map[string]any{"active": true, "sub": "o", "iss": "https://other.example.com/", "exp": exp})
	jwtOwn := e.token(nil)                                                  // test's
	jwtForeign := e.token(jwt.MapClaims{"iss": "https://foreign.example/"}) // no JWT provider's
	hydra.set(jwtForeign, map[string]any{"active": true, "sub": "j", "iss": introIss, "exp": exp})
	steps := []struct {
		name          string
		tok, path     string
		wantReason    authz.Reason
		wantProvider  string
		hydra, others int64 // calls so far
	}{
		{name: "an opaque token on a JWT-only route is malformed, and asks no one", tok: "hydra-opaque", path: "/jwt", wantReason: authz.ReasonMalformed},
		{name: "the same token where hydra may answer is introspected (the rejection was the other route's)", tok: "hydra-opaque", path: "/both", wantReason: authz.ReasonOK, wantProvider: "hydra", hydra: 1},
		{name: "a JWT of a JWT provider is verified, not introspected", tok: jwtOwn, path: "/both", wantReason: authz.ReasonOK, wantProvider: "test", hydra: 1},
		{name: "a JWT no JWT provider has goes to introspect_jwts providers", tok: jwtForeign, path: "/both", wantReason: authz.ReasonOK, wantProvider: "hydra", hydra: 2},
		{name: "but not to one without introspect_jwts", tok: e.token(jwt.MapClaims{"iss": "https://foreign.example/", "sub": "x"}), path: "/other", wantReason: authz.ReasonWrongIssuer, hydra: 2},
		{name: "providers in order: hydra says inactive, other active", tok: "other-opaque", path: "/either", wantReason: authz.ReasonOK, wantProvider: "other", hydra: 3, others: 1},
		{name: "all inactive", tok: "nobody's", path: "/either", wantReason: authz.ReasonInactive, hydra: 4, others: 2},
		{name: "remembered for that route", tok: "nobody's", path: "/either", wantReason: authz.ReasonInactive, hydra: 4, others: 2},
		{name: "a cached grant on a route that does not allow its provider", tok: "hydra-opaque", path: "/other", wantReason: authz.ReasonWrongIssuer, wantProvider: "hydra", hydra: 4, others: 2},
	}
	for _, s := range steps {
		d := e.checkPath(s.tok, s.path)
		if d.Reason != s.wantReason || s.wantProvider != "" && d.Provider != s.wantProvider || hydra.calls.Load() != s.hydra || other.calls.Load() != s.others {
			t.Fatalf("%s: %v provider %q, calls hydra %d other %d; want %v %q, %d %d", s.name, d.Reason, d.Provider, hydra.calls.Load(), other.calls.Load(), s.wantReason, s.wantProvider, s.hydra, s.others)
		}
	}
}

// Rules, scopes and claim headers read an answer as they read a JWT's
// claims.
func TestIntrospectionRulesAndHeaders(t *testing.T) {
	e := newOpaqueEnv(t, func(c *authz.Config, p *authz.ProviderConfig) {
		p.ClaimHeaders = map[string]string{"x-auth-org": "org"}
		c.Rules = []authz.RuleConfig{
			{Match: authz.Match{PathPrefix: "/admin"}, Require: authz.Require{Scopes: []string{"admin"}}},
			{Match: authz.Match{PathPrefix: "/acme"}, Require: authz.Require{Claims: map[string]string{"org": "acme"}}},
		}
	})
	e.fake.set("reader", e.active(map[string]any{"scope": "read write", "org": "acme"}))
	e.fake.set("admin", e.active(map[string]any{"scope": "read admin", "org": "other", "sub": "admin_1"}))
	tests := []struct {
		tok, path  string
		wantReason authz.Reason
		wantOrg    string
	}{
		{"reader", "/admin/x", authz.ReasonInsufficientScope, ""},
		{"admin", "/admin/x", authz.ReasonOK, "other"},
		{"reader", "/acme/x", authz.ReasonOK, "acme"},
		{"admin", "/acme/x", authz.ReasonInsufficientScope, ""},
	}
	for _, tt := range tests {
		d := e.check(tt.tok, tt.path)
		if d.Reason != tt.wantReason {
			t.Errorf("%s %s: %v; want %v", tt.tok, tt.path, d.Reason, tt.wantReason)
			continue
		}
		if d.Allow {
			var org string
			for _, h := range d.Set {
				if h.Name == "x-auth-org" {
					org = h.Value
				}
			}
			if org != tt.wantOrg || d.Issuer != introIss {
				t.Errorf("%s %s: x-auth-org %q issuer %q; want %q %q", tt.tok, tt.path, org, d.Issuer, tt.wantOrg, introIss)
			}
		}
	}
}

// A reload that keeps the provider keeps its grants (no key to check); one
// that changes it ends them.
func TestIntrospectionGrantsAcrossReload(t *testing.T) {
	fake := &fakeIntrospector{}
	clock := authztest.NewClock()
	pc := authz.ProviderConfig{Name: "hydra", Issuer: introIss, Introspector: fake, IntrospectionCacheTTL: time.Minute}
	cfg := authz.DefaultConfig()
	cfg.Now, cfg.Providers = clock.Now, []authz.ProviderConfig{pc}
	eng, err := authz.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	fake.set("tok", map[string]any{"active": true, "iss": introIss, "sub": "u", "exp": clock.Now().Add(time.Hour).Unix()})
	check := func() authz.Decision {
		return eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "h", Path: "/", Headers: authz.MapHeaders{"authorization": "Bearer tok"}})
	}
	check()
	if err := eng.Update([]authz.ProviderConfig{pc}, nil); err != nil {
		t.Fatal(err)
	}
	if d := check(); d.Layer != authz.LayerTokenCache {
		t.Errorf("after a reload that keeps the provider: layer %v; want token_cache", d.Layer)
	}
	pc.Audiences = []string{"api"}
	if err := eng.Update([]authz.ProviderConfig{pc}, nil); err != nil {
		t.Fatal(err)
	}
	if d := check(); d.Layer != authz.LayerVerified || d.Reason != authz.ReasonMissingClaim {
		t.Errorf("after a reload that changes it: layer %v reason %v; want verified, missing_claim (aud)", d.Layer, d.Reason)
	}
}

func TestIntrospectionProviderErrors(t *testing.T) {
	fake := &fakeIntrospector{}
	src := authztest.New(t, nil).Src
	tests := []struct {
		name string
		pc   authz.ProviderConfig
	}{
		{"keys and an introspector", authz.ProviderConfig{Name: "x", Issuer: introIss, Introspector: fake, Keys: src}},
		{"any issuer", authz.ProviderConfig{Name: "x", AnyIssuer: true, Introspector: fake}},
		{"payload header", authz.ProviderConfig{Name: "x", Introspector: fake, PayloadHeader: "x-payload"}},
		{"introspect_jwts without an introspector", authz.ProviderConfig{Name: "x", Issuer: introIss, Keys: src, IntrospectJWTs: true}},
		{"no name", authz.ProviderConfig{Introspector: fake}},
	}
	for _, tt := range tests {
		cfg := authz.DefaultConfig()
		cfg.Providers = []authz.ProviderConfig{tt.pc}
		var ce *authz.ConfigError
		if err := authz.Validate(cfg); !errors.As(err, &ce) {
			t.Errorf("%s: %v; want a ConfigError", tt.name, err)
		}
	}
}

// fakeShared is a SharedCache in memory whose entries go through JSON, as
// they do through Redis.
type fakeShared struct {
	mu      sync.Mutex
	entries map[string][]byte
	gets    int
}

func (f *fakeShared) Get(_ context.Context, provider, tok string) (authz.SharedVerdict, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	b, ok := f.entries[provider+"\x00"+tok]
	var v authz.SharedVerdict
	if !ok || json.Unmarshal(b, &v) != nil {
		return authz.SharedVerdict{}, false
	}
	return v, true
}

func (f *fakeShared) Put(_ context.Context, provider, tok string, v authz.SharedVerdict) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.entries == nil {
		f.entries = map[string][]byte{}
	}
	f.entries[provider+"\x00"+tok] = b
}

func TestIntrospectionSharedCache(t *testing.T) {
	shared := &fakeShared{}
	withShared := func(c *authz.Config, p *authz.ProviderConfig) {
		c.SharedCache = shared
		p.Audiences = []string{"api"}
		p.ClaimHeaders = map[string]string{"x-auth-org": "org"}
	}
	a, b := newOpaqueEnv(t, withShared), newOpaqueEnv(t, withShared) // two replicas, their clocks at one time
	a.fake.set("good", a.active(map[string]any{"aud": "api", "org": "acme"}))
	if d := a.check("good", "/"); !d.Allow {
		t.Fatalf("replica a: %v", d.Reason)
	}
	a.check("revoked", "/")
	if d := b.check("good", "/"); !d.Allow || d.Subject != "user_1" || len(d.Set) != 1 || d.Set[0].Value != "acme" || b.fake.calls.Load() != 0 {
		t.Fatalf("replica b: %v subject %q set %v, %d calls; want the shared verdict, no call", d.Reason, d.Subject, d.Set, b.fake.calls.Load())
	}
	if d := b.check("revoked", "/"); d.Reason != authz.ReasonInactive || b.fake.calls.Load() != 0 {
		t.Fatalf("replica b, revoked: %v, %d calls; want inactive from the shared cache", d.Reason, b.fake.calls.Load())
	}
	if d := b.check("good", "/"); d.Layer != authz.LayerTokenCache {
		t.Errorf("replica b again: layer %v; want its own token cache", d.Layer)
	}

	// A shared verdict is checked as a fresh answer is.
	now := a.clock.Now()
	until := now.Add(time.Minute).UnixNano()
	for _, tt := range []struct {
		name string
		v    authz.SharedVerdict
		want authz.Reason
	}{
		{"exp past", authz.SharedVerdict{Active: true, Issuer: introIss, Claims: map[string]any{"aud": "api", "exp": now.Add(-time.Hour).Unix()}, Until: until}, authz.ReasonExpired},
		{"another iss", authz.SharedVerdict{Active: true, Issuer: "https://evil.example/", Claims: map[string]any{"aud": "api"}, Until: until}, authz.ReasonWrongIssuer},
		{"another aud", authz.SharedVerdict{Active: true, Issuer: introIss, Claims: map[string]any{"aud": "web"}, Until: until}, authz.ReasonWrongAudience},
		{"a refresh token", authz.SharedVerdict{Active: true, Issuer: introIss, Claims: map[string]any{"aud": "api", "token_type": "refresh_token"}, Until: until}, authz.ReasonWrongTyp},
		{"Hydra's refresh token", authz.SharedVerdict{Active: true, Issuer: introIss, Claims: map[string]any{"aud": "api", "token_use": "refresh_token"}, Until: until}, authz.ReasonWrongTyp},
		{"claims claiming active", authz.SharedVerdict{Active: false, Issuer: introIss, Claims: map[string]any{"active": true, "aud": "api"}, Until: until}, authz.ReasonInactive},
		{"ended", authz.SharedVerdict{Active: true, Issuer: introIss, Claims: map[string]any{"aud": "api"}, Until: now.UnixNano()}, authz.ReasonInactive}, // a miss: the endpoint says inactive
	} {
		tok := "shared-" + tt.name
		shared.Put(context.Background(), "hydra", tok, tt.v)
		if d := b.check(tok, "/"); d.Reason != tt.want {
			t.Errorf("%s: %v; want %v", tt.name, d.Reason, tt.want)
		}
	}
}

// A shared verdict keeps what the conditions and the metadata read: a
// replica that gets it from the shared cache decides and answers as the
// one that asked the endpoint.
func TestIntrospectionSharedCacheKeepsWhatIsRead(t *testing.T) {
	for _, tt := range []struct{ name, when string }{
		{"a claim", `claims.org == "acme" && claims.team.name == "core" && claims.sub == "user_1" && claims.iss != ""`},
		{"claims as a whole", `claims.exists(k, k == "org") && claims.team.name == "core" && size(claims) > 3`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			shared := &fakeShared{}
			opts := func(c *authz.Config, p *authz.ProviderConfig) {
				c.SharedCache = shared
				c.Rules = []authz.RuleConfig{{Require: authz.Require{When: tt.when}}}
				p.MetadataClaims = []string{"tier"}
			}
			a, b := newOpaqueEnv(t, opts), newOpaqueEnv(t, opts)
			a.fake.set("tok", a.active(map[string]any{"org": "acme", "team": map[string]any{"name": "core"}, "tier": "gold", "other": "x"}))
			da := a.check("tok", "/")
			db := b.check("tok", "/")
			if !da.Allow || !db.Allow || b.fake.calls.Load() != 0 {
				t.Fatalf("replica a %v, replica b %v with %d calls; want both allowed, b from the shared cache", da.Reason, db.Reason, b.fake.calls.Load())
			}
			if ma, mb := fmt.Sprint(da.Metadata.Claims), fmt.Sprint(db.Metadata.Claims); ma != mb || !strings.Contains(mb, "gold") {
				t.Errorf("metadata claims: replica a %s, replica b %s; want the same, with tier", ma, mb)
			}
		})
	}
}

// FuzzIntrospectionAnswer feeds the engine any JSON object as an
// introspection answer (as the introspect package's parser passes it:
// numbers as json.Number): it must not panic, and must allow only an
// answer whose active is the boolean true, whose iss is the provider's and
// whose aud holds its audience.
//
//	go test ./authz -run '^$' -fuzz '^FuzzIntrospectionAnswer$' -fuzztime=20s
func FuzzIntrospectionAnswer(f *testing.F) {
	for _, s := range []string{
		`{"active":true,"iss":"https://idp.example.com/","aud":"api","sub":"u","exp":1900000000}`,
		`{"active":"true","iss":"https://idp.example.com/","aud":"api"}`,
		`{"active":true,"iss":"https://idp.example.com/","aud":["api"],"scope":"a b","org":{"id":1},"token_type":"refresh_token"}`,
		`{"active":true,"iss":"https://idp.example.com/","aud":"api","exp":1.5e9,"nbf":-1,"sub":"\u0000"}`,
		`{"active":false}`, `{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		var answer map[string]any
		if dec.Decode(&answer) != nil || answer == nil {
			return
		}
		e := newOpaqueEnv(t, func(c *authz.Config, p *authz.ProviderConfig) {
			p.Audiences = []string{"api"}
			p.ClaimHeaders = map[string]string{"x-auth-org": "org.id"}
			c.Rules = []authz.RuleConfig{{Match: authz.Match{PathPrefix: "/admin"}, Require: authz.Require{Scopes: []string{"admin"}}}}
		})
		e.fake.set("tok", answer)
		for _, path := range []string{"/", "/admin"} {
			d := e.check("tok", path)
			if !d.Allow {
				continue
			}
			aud, _ := answer["aud"].(string)
			auds, _ := answer["aud"].([]any)
			if answer["active"] != true || answer["iss"] != introIss || aud != "api" && !slices.Contains(auds, any("api")) {
				t.Fatalf("%s allowed %s", path, body)
			}
			for _, h := range append(d.Set, authz.Header{Name: "x-auth-subject", Value: d.Subject}) {
				if strings.ContainsAny(h.Value, "\x00\r\n") {
					t.Fatalf("header %s %q from %s", h.Name, h.Value, body)
				}
			}
		}
	})
}

// stepTracer records the steps a Tracer hears of, as "kind provider reason".
type stepTracer struct {
	mu    sync.Mutex
	steps []string
}

func (s *stepTracer) record(kind, provider string) func(authz.Reason) {
	return func(r authz.Reason) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.steps = append(s.steps, kind+" "+provider+" "+r.String())
	}
}

func (s *stepTracer) StartVerify(ctx context.Context, provider string) (context.Context, func(authz.Reason)) {
	return ctx, s.record("verify", provider)
}

func (s *stepTracer) StartIntrospect(ctx context.Context, provider string) (context.Context, func(authz.Reason)) {
	return ctx, s.record("introspect", provider)
}

func (s *stepTracer) StartKeyWait(ctx context.Context, provider string) (context.Context, func()) {
	end := s.record("wait", provider)
	return ctx, func() { end(authz.ReasonOK) }
}

// An introspection is traced as one, with the outcome of the call, and a
// cached token not at all.
func TestIntrospectionIsTracedAsIntrospection(t *testing.T) {
	tr := &stepTracer{}
	e := newOpaqueEnv(t, func(c *authz.Config, _ *authz.ProviderConfig) { c.Tracer = tr })
	e.fake.set("opaque-a", e.active(nil))
	for range 2 {
		if d := e.check("opaque-a", "/api"); !d.Allow {
			t.Fatalf("denied: %v", d.Reason)
		}
	}
	e.check("opaque-unknown", "/api")
	e.fake.err = fmt.Errorf("%w: refused", authz.ErrIntrospectionUnavailable)
	e.check("opaque-b", "/api")
	want := []string{"introspect hydra ok", "introspect hydra ok", "introspect hydra unavailable"}
	if !slices.Equal(tr.steps, want) {
		t.Errorf("steps %q; want %q", tr.steps, want)
	}
}
