package authz_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

const keylessIss = "https://keyless.example"

// keyEntry is one JWK of a served set: s's public key, with s's kid if
// kid, and s's alg.
type keyEntry struct {
	s   *issuer.Signer
	kid bool
}

// keySetServer serves a JWKS that the test replaces.
type keySetServer struct {
	doc atomic.Pointer[[]byte]
	url string
}

func newKeySetServer(t testing.TB, keys ...keyEntry) *keySetServer {
	ks := &keySetServer{}
	ks.publish(t, keys...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(*ks.doc.Load()) }))
	t.Cleanup(srv.Close)
	ks.url = srv.URL + "/jwks.json"
	return ks
}

func (ks *keySetServer) publish(t testing.TB, keys ...keyEntry) {
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		jwk := jose.JSONWebKey{Key: k.s.Private.Public(), Algorithm: k.s.Alg, Use: "sig"}
		if k.kid {
			jwk.KeyID = k.s.KID
		}
		set.Keys = append(set.Keys, jwk)
	}
	doc, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	ks.doc.Store(&doc)
}

// keylessEngine is an engine with one provider whose keys ks serves.
func keylessEngine(t testing.TB, src *jwks.Source) *authz.Engine {
	cfg := authz.DefaultConfig()
	cfg.Providers = []authz.ProviderConfig{{Name: "p", Issuer: keylessIss, Keys: src}}
	e, err := authz.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// tokenWithoutKID signs a valid token for sub with s, naming no kid.
func tokenWithoutKID(t testing.TB, s *issuer.Signer, sub string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.GetSigningMethod(s.Alg), jwt.MapClaims{
		"iss": keylessIss, "sub": sub, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}).SignedString(s.Private)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func checkToken(e *authz.Engine, tok string) authz.Decision {
	return e.Check(context.Background(), bearerRequest(tok))
}

// permutations returns every order of keys.
func permutations(keys []keyEntry) [][]keyEntry {
	if len(keys) <= 1 {
		return [][]keyEntry{keys}
	}
	var out [][]keyEntry
	for i := range keys {
		rest := append(append([]keyEntry{}, keys[:i]...), keys[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]keyEntry{keys[i]}, p...))
		}
	}
	return out
}

// Which key a token without kid is checked against never depends on the
// order of the set: in every order of a set of keys with and without kid,
// of three types, the token each key signed is allowed and a stranger's is
// not.
func TestKeylessOrderDoesNotMatter(t *testing.T) {
	rs, es, es2, ed := issuer.MustSigner("RS256"), issuer.MustSigner("ES256"), issuer.MustSigner("ES256"), issuer.MustSigner("EdDSA")
	keys := []keyEntry{{rs, false}, {es, true}, {es2, false}, {ed, false}}
	toks := map[string]string{}
	for _, k := range keys {
		toks[k.s.KID] = tokenWithoutKID(t, k.s, k.s.Alg)
	}
	stranger := tokenWithoutKID(t, issuer.MustSigner("ES256"), "stranger")
	for _, order := range permutations(keys) {
		name := ""
		for _, k := range order {
			name += k.s.Alg + fmt.Sprint(map[bool]string{true: "+kid", false: ""}[k.kid]) + ","
		}
		t.Run(name, func(t *testing.T) {
			ks := newKeySetServer(t, order...)
			e := keylessEngine(t, runSource(t, jwks.Config{Name: "p", Issuer: keylessIss, URL: ks.url}, true))
			for _, k := range keys {
				if d := checkToken(e, toks[k.s.KID]); !d.Allow {
					t.Errorf("signed by the %s key (kid %v): %v", k.s.Alg, k.kid, d.Reason)
				}
			}
			if d := checkToken(e, stranger); d.Allow || d.Reason != authz.ReasonBadSignature {
				t.Errorf("a stranger's token: allow %v, %v", d.Allow, d.Reason)
			}
		})
	}
}

// At most MaxKeylessTries distinct keys that fit its alg are tried for a
// token without kid; with more the token is unknown_kid, whichever signed
// it. Keys of another type, or whose JWK names another alg, do not count;
// a key listed twice counts once.
func TestKeylessTriesAreBounded(t *testing.T) {
	var es []*issuer.Signer
	for range authz.MaxKeylessTries + 1 {
		es = append(es, issuer.MustSigner("ES256"))
	}
	rs, es384 := issuer.MustSigner("RS256"), issuer.MustSigner("ES384")
	n := authz.MaxKeylessTries
	nokid := func(ss ...*issuer.Signer) (out []keyEntry) {
		for _, s := range ss {
			out = append(out, keyEntry{s, false})
		}
		return out
	}
	tests := []struct {
		name       string
		keys       []keyEntry
		signer     *issuer.Signer
		wantReason authz.Reason // ReasonOK for an allow
	}{
		{name: "as many as the bound, signed by the last", keys: nokid(es[:n]...), signer: es[n-1]},
		{name: "one more than the bound, signed by the first", keys: nokid(es...), signer: es[0], wantReason: authz.ReasonUnknownKID},
		{name: "one more than the bound, some with a kid", keys: append(nokid(es[:2]...), keyEntry{es[2], true}, keyEntry{es[3], true}, keyEntry{es[4], false}), signer: es[2], wantReason: authz.ReasonUnknownKID},
		{name: "one more than the bound, one of another type", keys: append(nokid(es[:n]...), keyEntry{rs, false}), signer: es[1]},
		{name: "one more than the bound, one of another curve", keys: append(nokid(es[:n]...), keyEntry{es384, false}), signer: es[2]},
		{name: "one key listed twice, with and without kid", keys: append(nokid(es[:n]...), keyEntry{es[0], true}), signer: es[0]},
		{name: "no key of the token's type", keys: nokid(rs, es384), signer: es[0], wantReason: authz.ReasonUnknownKID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := newKeySetServer(t, tt.keys...)
			e := keylessEngine(t, runSource(t, jwks.Config{Name: "p", Issuer: keylessIss, URL: ks.url}, true))
			d := checkToken(e, tokenWithoutKID(t, tt.signer, "u"))
			if tt.wantReason == authz.ReasonOK && !d.Allow {
				t.Fatalf("denied: %v", d.Reason)
			}
			if tt.wantReason != authz.ReasonOK && (d.Allow || d.Reason != tt.wantReason) {
				t.Fatalf("allow %v, %v; want %v", d.Allow, d.Reason, tt.wantReason)
			}
		})
	}
}

// A cached grant of a token without kid holds while its key is anywhere in
// the set (a reordered set, the key given a kid) and ends when the key
// leaves it.
func TestKeylessGrantFollowsItsKey(t *testing.T) {
	clk := newClock()
	a, b, c := issuer.MustSigner("ES256"), issuer.MustSigner("ES256"), issuer.MustSigner("ES256")
	ks := newKeySetServer(t, keyEntry{a, false}, keyEntry{b, false})
	src := runSource(t, jwks.Config{Name: "p", Issuer: keylessIss, URL: ks.url, Now: clk.Now, MinRefresh: time.Second}, true)
	e := keylessEngine(t, src)
	tok := tokenWithoutKID(t, b, "bob")
	refresh := func() {
		t.Helper()
		clk.Add(time.Second) // past the refresh cooldown
		if !src.Refresh(context.Background()) {
			t.Fatal("the refresh did not fetch")
		}
	}
	if d := checkToken(e, tok); !d.Allow || d.Cached {
		t.Fatalf("first check: allow %v, cached %v (%v)", d.Allow, d.Cached, d.Reason)
	}
	for _, step := range []struct {
		name       string
		keys       []keyEntry
		wantAllow  bool
		wantCached bool
	}{
		{name: "same set", keys: []keyEntry{{a, false}, {b, false}}, wantAllow: true, wantCached: true},
		{name: "reordered", keys: []keyEntry{{b, false}, {a, false}}, wantAllow: true, wantCached: true},
		{name: "the key given a kid", keys: []keyEntry{{a, false}, {b, true}}, wantAllow: true, wantCached: true},
		{name: "the key withdrawn", keys: []keyEntry{{a, false}, {c, false}}, wantAllow: false},
	} {
		ks.publish(t, step.keys...)
		refresh()
		if d := checkToken(e, tok); d.Allow != step.wantAllow || (d.Allow && d.Cached != step.wantCached) {
			t.Fatalf("%s: allow %v cached %v (%v), want allow %v cached %v", step.name, d.Allow, d.Cached, d.Reason, step.wantAllow, step.wantCached)
		}
	}
}
