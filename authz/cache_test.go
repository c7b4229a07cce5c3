package authz_test

import (
	"context"
	"crypto"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// decide runs one check through the engine itself, where Decision.Cached
// can be seen.
func (e *env) decide(authorization, requestID string) authz.Decision {
	h := authz.MapHeaders{}
	if authorization != "" {
		h["authorization"] = authorization
	}
	return e.eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "api.example.com", Path: "/v1/things", RequestID: requestID, Headers: h})
}

func TestTokenCacheNeverOutlivesExp(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	tok := "Bearer " + e.token(jwt.MapClaims{"exp": now.Add(2 * time.Minute).Unix()})
	steps := []struct {
		name       string
		advance    time.Duration
		wantAllow  bool
		wantCached bool
		wantReason authz.Reason
	}{
		{name: "first check verifies", wantAllow: true},
		{name: "second is a hit", advance: time.Minute, wantAllow: true, wantCached: true},
		{name: "past exp the entry is gone; within the skew it verifies again", advance: 61 * time.Second, wantAllow: true},
		{name: "and is not cached again", advance: time.Second, wantAllow: true},
		{name: "beyond the skew it is expired", advance: time.Minute, wantReason: authz.ReasonExpired},
	}
	for _, s := range steps {
		e.clock.Add(s.advance)
		d := e.decide(tok, "")
		if d.Allow != s.wantAllow || d.Cached != s.wantCached || (!s.wantAllow && d.Reason != s.wantReason) {
			t.Fatalf("%s: allow %v cached %v reason %v; want %v %v %v", s.name, d.Allow, d.Cached, d.Reason, s.wantAllow, s.wantCached, s.wantReason)
		}
	}
}

func TestTokenCacheTTL(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) { c.CacheTTL = 5 * time.Minute }))
	tok := "Bearer " + e.token(nil) // valid for an hour
	e.decide(tok, "")
	e.clock.Add(4 * time.Minute)
	if d := e.decide(tok, ""); !d.Cached {
		t.Fatal("not cached within the TTL")
	}
	e.clock.Add(2 * time.Minute)
	if d := e.decide(tok, ""); d.Cached || !d.Allow {
		t.Fatalf("beyond the TTL: cached %v allow %v; want a fresh verification", d.Cached, d.Allow)
	}
}

func TestConcurrentFirstChecksVerifyOnce(t *testing.T) {
	e := newEnv(t, nil)
	tok := "Bearer " + e.token(nil)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if d := e.decide(tok, ""); !d.Allow {
				t.Errorf("denied: %v", d.Reason)
			}
		})
	}
	wg.Wait()
	if n := e.eng.Stats().Verified; n != 1 {
		t.Fatalf("%d verifications for 50 concurrent checks of one token, want 1", n)
	}
}

func TestRequestDedup(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	good := "Bearer " + e.token(jwt.MapClaims{"exp": now.Add(20 * time.Second).Unix()})
	forged := "Bearer " + e.token(nil)[:40] + "x.y"
	steps := []struct {
		name          string
		advance       time.Duration
		authorization string
		requestID     string
		path          string
		wantAllow     bool
		wantCached    bool
	}{
		{name: "first check of the request", authorization: good, requestID: "req-1", wantAllow: true},
		{name: "its twin reuses the decision", authorization: good, requestID: "req-1", wantAllow: true, wantCached: true},
		{name: "the same id with another token is decided afresh", authorization: forged, requestID: "req-1"},
		{name: "whose twin reuses the denial", authorization: forged, requestID: "req-1", wantCached: true},
		{name: "another route is not a twin (the negative cache answers)", authorization: forged, requestID: "req-1", path: "/v1/other", wantCached: true},
		{name: "the same id without a token is decided afresh", authorization: "", requestID: "req-1"},
		{name: "a reused allow never outlives exp", advance: 21 * time.Second, authorization: good, requestID: "req-1", wantAllow: true},
	}
	for _, s := range steps {
		e.clock.Add(s.advance)
		path := "/v1/things"
		if s.path != "" {
			path = s.path
		}
		h := authz.MapHeaders{}
		if s.authorization != "" {
			h["authorization"] = s.authorization
		}
		d := e.eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "api.example.com", Path: path, RequestID: s.requestID, Headers: h})
		if d.Allow != s.wantAllow || d.Cached != s.wantCached {
			t.Fatalf("%s: allow %v (%v) cached %v; want %v, cached %v", s.name, d.Allow, d.Reason, d.Cached, s.wantAllow, s.wantCached)
		}
	}
	if st := e.eng.Stats().Dedup; st.Hits != 1 {
		t.Fatalf("dedup %+v, want exactly one hit", st)
	}
}

func TestConcurrentTwinsShareOneDecision(t *testing.T) {
	e := newEnv(t, nil)
	tok := "Bearer " + e.token(nil)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { e.decide(tok, "req-twins") })
	}
	wg.Wait()
	if n := e.eng.Stats().Verified; n != 1 {
		t.Fatalf("%d verifications for 20 twins, want 1", n)
	}
}

func TestRemovedKeyEndsCachedAllows(t *testing.T) {
	old := issuer.MustSigner("ES256")
	e := newEnv(t, []*issuer.Signer{old})
	tok := "Bearer " + e.token(nil)
	e.decide(tok, "")
	if d := e.decide(tok, ""); !d.Cached {
		t.Fatal("not cached")
	}
	e.idp.Publish(issuer.MustSigner("ES256")) // the IdP withdraws the key
	if !e.src.Refresh(context.Background()) {
		t.Fatal("refresh failed")
	}
	if d := e.decide(tok, ""); d.Allow || d.Reason != authz.ReasonUnknownKID {
		t.Fatalf("after the key was withdrawn: allow %v reason %v", d.Allow, d.Reason)
	}
}

// An IdP that puts a new key under the kid of the old one (fixed kids such
// as "1" are common), or swaps the only key of a kid-less set, withdraws the
// old key all the same: the allows it made end at the refresh.
func TestReplacedKeyUnderItsKIDEndsCachedAllows(t *testing.T) {
	for _, kid := range []string{"1", ""} {
		t.Run("kid "+strconv.Quote(kid), func(t *testing.T) {
			signer := func() *issuer.Signer {
				s := issuer.MustSigner("ES256")
				s.KID = kid
				return s
			}
			e := newEnv(t, []*issuer.Signer{signer()})
			tok := "Bearer " + e.token(nil)
			e.decide(tok, "")
			if d := e.decide(tok, ""); !d.Allow || !d.Cached {
				t.Fatalf("allow %v, cached %v", d.Allow, d.Cached)
			}
			e.idp.Publish(signer())
			if !e.src.Refresh(context.Background()) {
				t.Fatal("refresh failed")
			}
			if d := e.decide(tok, ""); d.Allow || d.Reason != authz.ReasonBadSignature {
				t.Fatalf("after the key was replaced: allow %v, reason %v", d.Allow, d.Reason)
			}
		})
	}
}

// A reload keeps the cached grants of a provider whose configuration is
// unchanged (its key source the same one), and ends those of a provider
// with another key source; it never reads a running source (under -race,
// comparing sources field by field raced with their fetches).
func TestUpdateKeepsUnchangedProviders(t *testing.T) {
	var pc authz.ProviderConfig
	e := newEnv(t, nil, withConfig(func(_ *authz.Config, p *authz.ProviderConfig) { pc = *p }))
	tok := "Bearer " + e.token(nil)
	e.decide(tok, "")
	if err := e.eng.Update([]authz.ProviderConfig{pc}, nil); err != nil {
		t.Fatal(err)
	}
	if d := e.decide(tok, ""); !d.Allow || !d.Cached {
		t.Fatalf("same configuration: allow %v, cached %v", d.Allow, d.Cached)
	}
	// Other sources: two with the same keys (the second equal to the first
	// field by field, yet another source), then running ones, each with a
	// Transport of its own whose live state a field-by-field comparison
	// would read while its fetches write it (-race catches that).
	sources := []authz.KeySource{newStaticKeys(e.idp.Signing()), newStaticKeys(e.idp.Signing())}
	for range 4 {
		sources = append(sources, runSource(t, jwks.Config{Name: "test", Issuer: e.idp.URL, URL: e.idp.JWKSURL(),
			Client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}, true))
	}
	for i, keys := range sources {
		pc.Keys = keys
		if err := e.eng.Update([]authz.ProviderConfig{pc}, nil); err != nil {
			t.Fatal(err)
		}
		if d := e.decide(tok, ""); !d.Allow || d.Cached {
			t.Fatalf("another key source (%d): allow %v, cached %v (want verified again)", i, d.Allow, d.Cached)
		}
	}
}

// Grants keep only the scopes and claims the rules read. A reload whose
// rules read more verifies the tokens again, instead of refusing them from
// the cache for what it did not keep.
func TestUpdateThatReadsMoreClaimsVerifiesAgain(t *testing.T) {
	var pc authz.ProviderConfig
	e := newEnv(t, nil, withConfig(func(_ *authz.Config, p *authz.ProviderConfig) { pc = *p }))
	tok := "Bearer " + e.token(jwt.MapClaims{"scope": "read admin", "role": "admin"})
	e.decide(tok, "")
	for _, rules := range [][]authz.RuleConfig{
		{{Require: authz.Require{Scopes: []string{"admin"}}}},
		{{Require: authz.Require{Scopes: []string{"admin"}, Claims: map[string]string{"role": "admin"}}}},
	} {
		if err := e.eng.Update([]authz.ProviderConfig{pc}, rules); err != nil {
			t.Fatal(err)
		}
		if d := e.decide(tok, ""); !d.Allow || d.Cached {
			t.Fatalf("%+v: allow %v (%v), cached %v: want verified again and allowed", rules[0].Require, d.Allow, d.Reason, d.Cached)
		}
		if d := e.decide(tok, ""); !d.Allow || !d.Cached {
			t.Fatalf("%+v, again: allow %v (%v), cached %v", rules[0].Require, d.Allow, d.Reason, d.Cached)
		}
	}
}

// A new key under the kid of the old one: the first token it signed fails
// with the old key, refreshes the set (as an unknown kid does) and passes.
// Forgeries under that kid then cost the IdP nothing more: the refresh is
// cooled down.
func TestNewKeyUnderTheSameKIDIsFetched(t *testing.T) {
	signer := func() *issuer.Signer {
		s := issuer.MustSigner("ES256")
		s.KID = "1"
		return s
	}
	e := newEnv(t, []*issuer.Signer{signer()})
	e.idp.Publish(signer())
	before := e.idp.JWKSRequests()
	if d := e.decide("Bearer "+e.token(nil), ""); !d.Allow {
		t.Fatalf("a token of the new key: %v", d.Reason)
	}
	if n := e.idp.JWKSRequests() - before; n != 1 {
		t.Fatalf("%d JWKS requests, want 1", n)
	}
	forger := signer()
	for i := range 100 {
		tok, err := forger.Sign(jwt.MapClaims{"iss": e.idp.URL, "sub": fmt.Sprint("f", i), "iat": e.clock.Now().Unix(), "exp": e.clock.Now().Add(time.Hour).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		if d := e.decide("Bearer "+tok, ""); d.Allow || d.Reason != authz.ReasonBadSignature {
			t.Fatalf("forgery %d: allow %v, reason %v", i, d.Allow, d.Reason)
		}
	}
	if n := e.idp.JWKSRequests() - before; n != 1 {
		t.Fatalf("%d JWKS requests after 100 forgeries, want still 1", n)
	}
}

func TestJWKSRequestsPerChecks(t *testing.T) {
	e := newEnv(t, nil)
	toks := make([]string, 1000)
	for i := range toks {
		toks[i] = "Bearer " + e.token(jwt.MapClaims{"sub": fmt.Sprint("user_", i)})
	}
	for i := range 10_000 {
		if d := e.decide(toks[i%len(toks)], ""); !d.Allow {
			t.Fatalf("check %d denied: %v", i, d.Reason)
		}
	}
	if n := e.idp.JWKSRequests(); n != 1 {
		t.Fatalf("%d JWKS requests for 10,000 checks of 1,000 tokens, want 1", n)
	}
	// 1,000 tokens with random unknown kids within one cooldown.
	before := e.idp.JWKSRequests()
	stranger := issuer.MustSigner("ES256")
	for i := range 1000 {
		s := *stranger
		s.KID = fmt.Sprintf("kid-%x", rand.Uint64())
		tok, _ := s.Sign(jwt.MapClaims{"iss": e.idp.URL, "sub": fmt.Sprint(i), "exp": e.clock.Now().Add(time.Hour).Unix()})
		if d := e.decide("Bearer "+tok, ""); d.Allow || d.Reason != authz.ReasonUnknownKID {
			t.Fatalf("unknown kid: allow %v reason %v", d.Allow, d.Reason)
		}
	}
	extra := e.idp.JWKSRequests() - before
	if extra > 1 {
		t.Fatalf("%d extra JWKS requests for 1,000 unknown kids within a cooldown, want ≤ 1", extra)
	}
	t.Logf("JWKS requests: 1 for 10,000 checks over 1,000 tokens; %d extra for 1,000 unknown kids", extra)
}

// A cache hit allocates nothing in the engine: the headers to remove are
// lists made with the policy, whether the grant sets every header its
// provider may set or only the identity ones (a token without sub, or
// without the claims claim headers read), or the grant's own list when it
// sets only some of the claim headers, made on its first hit. Every
// managed header is set or removed on each hit, also after a reload that
// manages one more.
func TestCacheHitAllocatesNothing(t *testing.T) {
	var test authz.ProviderConfig
	e := newEnv(t, nil, withConfig(func(_ *authz.Config, pc *authz.ProviderConfig) {
		pc.ClaimHeaders = map[string]string{"x-auth-org": "org_id", "x-auth-email": "email"}
		test = *pc
	}))
	managed := []string{authz.HeaderSubject, authz.HeaderIssuer, "x-auth-org", "x-auth-email"}
	cases := []struct {
		name   string
		claims jwt.MapClaims
	}{
		{"every header", jwt.MapClaims{"org_id": "acme", "email": "a@example.com"}},
		{"sub, no claim", jwt.MapClaims{}},
		{"neither sub nor a claim", jwt.MapClaims{"sub": nil}},
		{"sub and one claim of two", jwt.MapClaims{"org_id": "acme"}},
		{"a claim, no sub", jwt.MapClaims{"sub": nil, "email": "a@example.com"}},
	}
	reqs := make([]*authz.Request, len(cases))
	for i, c := range cases {
		reqs[i] = &authz.Request{Method: "GET", Host: "api.example.com", Path: "/v1/things",
			Headers: authz.MapHeaders{"authorization": "Bearer " + e.token(c.claims)}}
	}
	hits := func(managed []string) {
		t.Helper()
		ctx := context.Background()
		for i, c := range cases {
			e.eng.Check(ctx, reqs[i]) // verifies, or makes the grant's list
			var d authz.Decision
			if n := testing.AllocsPerRun(100, func() { d = e.eng.Check(ctx, reqs[i]) }); n != 0 {
				t.Errorf("%s: %.0f allocations per cache hit", c.name, n)
			}
			if !d.Allow || !d.Cached {
				t.Fatalf("%s: allow %v, cached %v (%v)", c.name, d.Allow, d.Cached, d.Reason)
			}
			for _, h := range managed {
				set := slices.ContainsFunc(d.Set, func(s authz.Header) bool { return s.Name == h }) ||
					h == authz.HeaderSubject && d.Subject != "" || h == authz.HeaderIssuer && d.Issuer != ""
				if removed := slices.Contains(d.Remove, h); set == removed {
					t.Errorf("%s: %s set %v, removed %v: want one (set %v, remove %v)", c.name, h, set, removed, d.Set, d.Remove)
				}
			}
		}
	}
	hits(managed)
	// Another provider with a claim header of its own: "test" is unchanged,
	// so its grants stay cached, and must now remove that header too.
	other := authz.ProviderConfig{Name: "other", Issuer: "https://other.example.com", Keys: e.src,
		ClaimHeaders: map[string]string{"x-auth-tenant": "tid"}}
	if err := e.eng.Update([]authz.ProviderConfig{test, other}, nil); err != nil {
		t.Fatal(err)
	}
	hits(append(managed, "x-auth-tenant"))
}

// gatedKeys is a key source whose first Key call waits for the test.
type gatedKeys struct {
	authz.KeySource
	once             sync.Once
	entered, release chan struct{}
}

func (g *gatedKeys) Key(kid string) (crypto.PublicKey, string, bool) {
	g.once.Do(func() { close(g.entered); <-g.release })
	return g.KeySource.Key(kid)
}

// A verification under the policy a reload replaced does not leave its
// rejection in the negative cache, which the reload emptied: the new
// policy may accept the token (here, a provider with the keys that signed
// it), and would otherwise refuse it from the cache for 30 s.
func TestRejectionRacingAReloadIsNotRemembered(t *testing.T) {
	signer := issuer.MustSigner("ES256")
	idp := issuer.NewServer(signer)
	t.Cleanup(idp.Close)
	wrong := issuer.MustSigner("ES256")
	wrong.KID = signer.KID // another key under the token's kid: bad_signature, which is remembered
	other := issuer.NewServer(wrong)
	t.Cleanup(other.Close)
	gated := &gatedKeys{KeySource: runSource(t, jwks.Config{Name: "old", Issuer: idp.URL, URL: other.JWKSURL()}, true),
		entered: make(chan struct{}), release: make(chan struct{})}
	eng, err := authz.New(withDefaultLimits(authz.Config{Providers: []authz.ProviderConfig{{Name: "p", Issuer: idp.URL, Keys: gated}}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	tok, err := idp.Mint(jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	r := &authz.Request{Method: "GET", Host: "h", Path: "/", Headers: authz.MapHeaders{"authorization": "Bearer " + tok}}
	done := make(chan authz.Decision)
	go func() { done <- eng.Check(context.Background(), r) }()
	<-gated.entered
	right := runSource(t, jwks.Config{Name: "new", Issuer: idp.URL, URL: idp.JWKSURL()}, true)
	if err := eng.Update([]authz.ProviderConfig{{Name: "p", Issuer: idp.URL, Keys: right}}, nil); err != nil {
		t.Fatal(err)
	}
	close(gated.release)
	if d := <-done; d.Allow || d.Reason != authz.ReasonBadSignature {
		t.Fatalf("under the old policy: allow %v, reason %v", d.Allow, d.Reason)
	}
	if d := eng.Check(context.Background(), r); !d.Allow {
		t.Fatalf("after the reload: %v (cached %v)", d.Reason, d.Cached)
	}
}
