package authz_test

import (
	"context"
	"crypto"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// staticKeys is a KeySource whose set the test swaps by hand.
type staticKeys struct {
	mu   sync.Mutex
	keys map[string]crypto.PublicKey
}

func newStaticKeys(ss ...*issuer.Signer) *staticKeys {
	k := &staticKeys{}
	k.set(ss...)
	return k
}

func (k *staticKeys) set(ss ...*issuer.Signer) {
	m := map[string]crypto.PublicKey{}
	for _, s := range ss {
		m[s.KID] = s.Private.Public()
	}
	k.mu.Lock()
	k.keys = m
	k.mu.Unlock()
}

func (k *staticKeys) Key(kid string) (crypto.PublicKey, string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.keys[kid]
	return p, "", ok
}
func (k *staticKeys) Ready() bool                  { return true }
func (k *staticKeys) Refresh(context.Context) bool { return false }
func (k *staticKeys) EachKey(yield func(crypto.PublicKey, string) bool) {
	k.mu.Lock()
	keys := make([]crypto.PublicKey, 0, len(k.keys))
	for _, p := range k.keys {
		keys = append(keys, p)
	}
	k.mu.Unlock()
	for _, p := range keys {
		if !yield(p, "") {
			return
		}
	}
}
func (k *staticKeys) HasKey(key crypto.PublicKey) bool {
	found := false
	k.EachKey(func(p crypto.PublicKey, _ string) bool {
		found = p.(interface{ Equal(crypto.PublicKey) bool }).Equal(key)
		return !found
	})
	return found
}

// sign signs claims with s, failing t if it cannot.
func sign(t testing.TB, s *issuer.Signer, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := s.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func bearerRequest(tok string) *authz.Request {
	return &authz.Request{Method: "GET", Host: "api.example.com", Path: "/v1/things",
		Headers: authz.MapHeaders{"authorization": "Bearer " + tok}}
}

// An AnyIssuer provider's grant for a token whose iss a reload gives to a
// provider of its own ends: a fresh check sends that iss to the new
// provider, whose keys decide.
func TestAnyIssuerGrantEndsWhenItsIssuerGetsAProvider(t *testing.T) {
	clk := newClock()
	sa, sb := issuer.MustSigner("ES256"), issuer.MustSigner("ES256")
	a := authz.ProviderConfig{Name: "clerk", AnyIssuer: true, Keys: newStaticKeys(sa)}
	b := authz.ProviderConfig{Name: "corp", Issuer: "https://corp.example", Keys: newStaticKeys(sb)}
	e, err := authz.New(withDefaultLimits(authz.Config{Now: clk.Now, Providers: []authz.ProviderConfig{a}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	now := clk.Now()
	tok := sign(t, sa, jwt.MapClaims{"iss": "https://corp.example", "sub": "mallory", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	if d := e.Check(t.Context(), bearerRequest(tok)); !d.Allow {
		t.Fatalf("before the reload: %v", d.Reason)
	}
	if err := e.Update([]authz.ProviderConfig{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	if d := e.Check(t.Context(), bearerRequest(tok)); d.Allow || d.Cached {
		t.Fatalf("after the reload: allow %v, cached %v (%v)", d.Allow, d.Cached, d.Reason)
	}
}

// exp = 9999999999 (a common "never expires", in 2286) overflows
// UnixNano: the grant is still cached, until the cache TTL.
func TestFarExpIsCached(t *testing.T) {
	clk := newClock()
	s := issuer.MustSigner("ES256")
	e, err := authz.New(withDefaultLimits(authz.Config{Now: clk.Now, Providers: []authz.ProviderConfig{{Name: "p", Issuer: "https://p", Keys: newStaticKeys(s)}}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	tok := sign(t, s, jwt.MapClaims{"iss": "https://p", "sub": "svc", "iat": clk.Now().Unix(), "exp": int64(9999999999)})
	for range 3 {
		if d := e.Check(t.Context(), bearerRequest(tok)); !d.Allow {
			t.Fatal(d.Reason)
		}
	}
	if n := e.Stats().Verified; n != 1 {
		t.Fatalf("verified %d times in 3 checks, want 1", n)
	}
	clk.Add(authz.DefaultCacheTTL + time.Second)
	if d := e.Check(t.Context(), bearerRequest(tok)); !d.Allow || d.Cached {
		t.Fatalf("past the cache TTL: allow %v, cached %v", d.Allow, d.Cached)
	}
}

// A cached grant whose key was withdrawn is a miss, not a hit, and leaves
// the cache.
func TestUnusableGrantIsAMiss(t *testing.T) {
	clk := newClock()
	s1, s2 := issuer.MustSigner("ES256"), issuer.MustSigner("ES256")
	ks := newStaticKeys(s1)
	e, err := authz.New(withDefaultLimits(authz.Config{Now: clk.Now, Providers: []authz.ProviderConfig{{Name: "p", Issuer: "https://p", Keys: ks}}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	tok := sign(t, s1, jwt.MapClaims{"iss": "https://p", "sub": "u", "iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Hour).Unix()})
	if d := e.Check(t.Context(), bearerRequest(tok)); !d.Allow || e.Stats().Tokens.Size != 1 {
		t.Fatalf("before the withdrawal: allow %v (%v), %d cached", d.Allow, d.Reason, e.Stats().Tokens.Size)
	}
	ks.set(s2) // s1 withdrawn
	for range 5 {
		if d := e.Check(t.Context(), bearerRequest(tok)); d.Allow || d.Cached {
			t.Fatalf("allow %v, cached %v", d.Allow, d.Cached)
		}
	}
	if st := e.Stats().Tokens; st.Hits != 0 || st.Size != 0 {
		t.Fatalf("%d hits, %d entries after 5 denied checks, want none", st.Hits, st.Size)
	}
}

// Checks racing reloads that rebuild the provider (so its grants end): a
// token valid under both configurations is never denied. (The policy was
// swapped before the old provider was retired, and a grant of the old one
// was denied wrong_issuer instead of verified again.)
func TestReloadsDoNotDenyAValidToken(t *testing.T) {
	clk := newClock()
	s := issuer.MustSigner("ES256")
	pa := authz.ProviderConfig{Name: "p", Issuer: "https://p", Keys: newStaticKeys(s)}
	pb := pa
	pb.Audiences = []string{"api"}
	e, err := authz.New(withDefaultLimits(authz.Config{Now: clk.Now, Providers: []authz.ProviderConfig{pa}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	tok := sign(t, s, jwt.MapClaims{"iss": "https://p", "aud": "api", "sub": "u", "iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Hour).Unix()})
	stop := make(chan struct{})
	var reloader, checkers sync.WaitGroup
	configs := [][]authz.ProviderConfig{{pa}, {pb}}
	reloader.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := e.Update(configs[i%2], nil); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var mu sync.Mutex
	denied := map[authz.Reason]int{}
	for range 2 {
		checkers.Go(func() {
			for range 5000 {
				if d := e.Check(context.Background(), bearerRequest(tok)); !d.Allow {
					mu.Lock()
					denied[d.Reason]++
					mu.Unlock()
				}
			}
		})
	}
	checkers.Wait()
	close(stop)
	reloader.Wait()
	if len(denied) > 0 {
		t.Fatalf("a valid token denied during reloads: %v", denied)
	}
}

// A check under the new policy that joined a verification begun under the
// policy a reload replaced, whose provider it rebuilt, verifies again: the
// grant it shared is the old provider's. synctest tells when the second
// check waits on the first's run.
func TestSharedVerificationAcrossAReloadIsDoneAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := issuer.MustSigner("ES256")
		gated := &gatedKeys{KeySource: newStaticKeys(s), entered: make(chan struct{}), release: make(chan struct{})}
		e, err := authz.New(withDefaultLimits(authz.Config{Providers: []authz.ProviderConfig{{Name: "p", Issuer: "https://p", Keys: gated}}}))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		tok := sign(t, s, jwt.MapClaims{"iss": "https://p", "sub": "u", "exp": time.Now().Add(time.Hour).Unix()})
		first, second := make(chan authz.Decision), make(chan authz.Decision)
		go func() { first <- e.Check(context.Background(), bearerRequest(tok)) }()
		<-gated.entered
		if err := e.Update([]authz.ProviderConfig{{Name: "p", Issuer: "https://p", Keys: newStaticKeys(s)}}, nil); err != nil {
			t.Fatal(err)
		}
		go func() { second <- e.Check(context.Background(), bearerRequest(tok)) }()
		synctest.Wait() // the second waits for the first's verification
		close(gated.release)
		if d := <-first; !d.Allow {
			t.Fatalf("the first check: %v", d.Reason)
		}
		if d := <-second; !d.Allow || d.Cached {
			t.Fatalf("the check that joined it across the reload: allow %v (%v), cached %v: want verified again and allowed", d.Allow, d.Reason, d.Cached)
		}
	})
}

// A grant verified under a policy whose successor reads more claims is
// not left in the token cache, which the reload emptied: under the new
// rules it would lack the claim they read.
func TestGrantRacingAReloadIsNotCached(t *testing.T) {
	s := issuer.MustSigner("ES256")
	gated := &gatedKeys{KeySource: newStaticKeys(s), entered: make(chan struct{}), release: make(chan struct{})}
	pc := authz.ProviderConfig{Name: "p", Issuer: "https://p", Keys: gated}
	e, err := authz.New(withDefaultLimits(authz.Config{Providers: []authz.ProviderConfig{pc}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	tok := sign(t, s, jwt.MapClaims{"iss": "https://p", "sub": "u", "role": "admin", "exp": time.Now().Add(time.Hour).Unix()})
	done := make(chan authz.Decision)
	go func() { done <- e.Check(context.Background(), bearerRequest(tok)) }()
	<-gated.entered
	if err := e.Update([]authz.ProviderConfig{pc}, []authz.RuleConfig{{Require: authz.Require{Claims: map[string]string{"role": "admin"}}}}); err != nil {
		t.Fatal(err)
	}
	close(gated.release)
	if d := <-done; !d.Allow {
		t.Fatalf("under the old policy: %v", d.Reason)
	}
	if d := e.Check(context.Background(), bearerRequest(tok)); !d.Allow || d.Cached {
		t.Fatalf("after the reload: allow %v (%v), cached %v: want verified again and allowed", d.Allow, d.Reason, d.Cached)
	}
}
