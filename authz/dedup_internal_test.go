package authz

import (
	"context"
	"crypto"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/cache"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

type oneKey struct{ s *issuer.Signer }

func (k oneKey) Key(kid string) (crypto.PublicKey, string, bool) {
	if kid != k.s.KID {
		return nil, "", false
	}
	return k.s.Private.Public(), "", true
}
func (oneKey) Ready() bool                  { return true }
func (oneKey) Refresh(context.Context) bool { return false }
func (k oneKey) EachKey(yield func(crypto.PublicKey, string) bool) {
	yield(k.s.Private.Public(), "")
}
func (k oneKey) HasKey(key crypto.PublicKey) bool {
	return k.s.Private.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(key)
}

// The dedup keeps no cookie header an allow rewrites (the request's other
// cookies): a twin's hit builds it from its own request.
func TestDedupKeepsNoCookies(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := issuer.MustSigner("ES256")
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return now }
	cfg.Providers = []ProviderConfig{{
		Name: "p", Issuer: "https://p", Keys: oneKey{s}, DropToken: true,
		TokenSources: []TokenSource{{Cookie: "__session"}}}}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	tok, err := s.Sign(jwt.MapClaims{"iss": "https://p", "sub": "u", "exp": now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	r := &Request{Method: "GET", Host: "h", Path: "/", RequestID: "id-1",
		Headers: MapHeaders{"cookie": "__session=" + tok + "; bank_sid=SECRET"}}
	if d := e.Check(t.Context(), r); !d.Allow || d.Cookie != "bank_sid=SECRET" {
		t.Fatalf("allow %v (%v), cookie %q", d.Allow, d.Reason, d.Cookie)
	}
	kept, hit, _ := e.dedup.Do(t.Context(), dedupKey(e.pol.Load().gen, r, cache.Hash(tok)), now, func() Decision { return Decision{} })
	if !hit || kept.CookieSet || kept.Cookie != "" {
		t.Fatalf("hit %v, the dedup holds cookie %q", hit, kept.Cookie)
	}
	// A twin is answered from its own cookies, by the dedup: the token
	// cache no longer has the grant.
	e.tokens.Remove(cache.Hash(tok))
	twin := &Request{Method: "GET", Host: "h", Path: "/", RequestID: "id-1",
		Headers: MapHeaders{"cookie": "theme=dark; __session=" + tok}}
	if d := e.Check(t.Context(), twin); !d.Allow || !d.Cached || d.Cookie != "theme=dark" {
		t.Fatalf("twin: allow %v, cached %v, cookie %q", d.Allow, d.Cached, d.Cookie)
	}
}
