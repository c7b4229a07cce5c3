package jwks

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

func jwkJSON(t testing.TB, k jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rsaJWK is s's RSA public key with the public exponent e.
func rsaJWK(t testing.TB, s *issuer.Signer, e int) string {
	pub := *s.Private.Public().(*rsa.PublicKey)
	pub.E = e
	return jwkJSON(t, jose.JSONWebKey{Key: &pub, KeyID: "e", Use: "sig"})
}

func doc(keys ...string) []byte {
	return []byte(`{"keys":[` + strings.Join(keys, ",") + `]}`)
}

func TestParse(t *testing.T) {
	rs := issuer.MustSigner("RS256")
	es := issuer.MustSigner("ES256")
	es384 := issuer.MustSigner("ES384")
	es512 := issuer.MustSigner("ES512")
	ed := issuer.MustSigner("EdDSA")
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	enc := es.JWK()
	enc.KeyID, enc.Use = "enc-key", "enc"
	private := jose.JSONWebKey{Key: es.Private, KeyID: "private", Algorithm: "ES256", Use: "sig"}
	b64 := base64.RawURLEncoding.EncodeToString
	offCurve := fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":"off","x":%q,"y":%q}`, b64(make([]byte, 32)), b64(append(make([]byte, 31), 1)))
	oct := `{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}`
	unknown := `{"kty":"XYZ","kid":"x"}`
	x25519 := `{"kty":"OKP","crv":"X25519","kid":"x25519","x":"` + b64(make([]byte, 32)) + `"}`
	n := bytes.Repeat([]byte{0xff}, 8192/8) // no key, but a modulus of 8192 bits
	bigRSA := `{"kty":"RSA","kid":"big","use":"sig","n":"` + b64(n) + `","e":"AQAB"}`
	maxRSA := `{"kty":"RSA","kid":"max","use":"sig","n":"` + b64(n[:4096/8]) + `","e":"AQAB"}`

	tests := []struct {
		name     string
		doc      []byte
		wantKIDs []string
		wantSkip int
		wantWhy  string // in the reason of the skip
		wantErr  error
	}{
		{name: "every supported kind", doc: doc(jwkJSON(t, rs.JWK()), jwkJSON(t, es.JWK()), jwkJSON(t, es384.JWK()), jwkJSON(t, es512.JWK()), jwkJSON(t, ed.JWK())),
			wantKIDs: []string{rs.KID, es.KID, es384.KID, es512.KID, ed.KID}},
		{name: "encryption key skipped", doc: doc(jwkJSON(t, enc), jwkJSON(t, es.JWK())), wantKIDs: []string{es.KID}, wantSkip: 1},
		{name: "symmetric key skipped", doc: doc(oct, jwkJSON(t, es.JWK())), wantKIDs: []string{es.KID}, wantSkip: 1},
		{name: "unknown type skipped", doc: doc(unknown, x25519, jwkJSON(t, es.JWK())), wantKIDs: []string{es.KID}, wantSkip: 2},
		{name: "small RSA skipped", doc: doc(jwkJSON(t, jose.JSONWebKey{Key: &small.PublicKey, KeyID: "small", Use: "sig"}), jwkJSON(t, es.JWK())), wantKIDs: []string{es.KID}, wantSkip: 1,
			wantWhy: "RSA key of 1024 bits, at least 2048 required"},
		{name: "RSA over 4096 bits skipped", doc: doc(bigRSA, jwkJSON(t, es.JWK())), wantKIDs: []string{es.KID}, wantSkip: 1,
			wantWhy: "RSA key of 8192 bits, at most 4096 supported"},
		{name: "RSA of 4096 bits kept", doc: doc(maxRSA), wantKIDs: []string{"max"}},
		{name: "point off the curve skipped", doc: doc(offCurve, jwkJSON(t, es.JWK())), wantKIDs: []string{es.KID}, wantSkip: 1},
		{name: "private key skipped", doc: doc(jwkJSON(t, private), jwkJSON(t, es.JWK())), wantKIDs: []string{es.KID}, wantSkip: 1},
		{name: "duplicate kid, same key: one kept", doc: doc(jwkJSON(t, es.JWK()), jwkJSON(t, es.JWK())), wantKIDs: []string{es.KID}, wantSkip: 1},
		{name: "keys without kid: all kept", doc: doc(jwkJSON(t, withoutKID(rs)), jwkJSON(t, withoutKID(es)), jwkJSON(t, withoutKID(ed))), wantKIDs: []string{"", "", ""}},
		{name: "RSA exponent 1 skipped", doc: doc(rsaJWK(t, rs, 1), jwkJSON(t, es.JWK())), wantKIDs: []string{es.KID}, wantSkip: 1},
		{name: "even RSA exponent skipped", doc: doc(rsaJWK(t, rs, 65536), jwkJSON(t, es.JWK())), wantKIDs: []string{es.KID}, wantSkip: 1,
			wantWhy: "RSA public exponent 65536"},
		{name: "nothing usable", doc: doc(oct, unknown), wantErr: ErrNoUsableKey},
		{name: "empty set", doc: []byte(`{"keys":[]}`), wantErr: ErrNoUsableKey},
		{name: "no keys member", doc: []byte(`{"kid":"x"}`), wantErr: ErrMalformed},
		{name: "not JSON", doc: []byte(`<html>maintenance</html>`), wantErr: ErrMalformed},
		{name: "keys not an array", doc: []byte(`{"keys":{}}`), wantErr: ErrMalformed},
		{name: "too many keys", doc: doc(strings.Split(strings.Repeat(unknown+"\n", MaxKeys+1), "\n")[:MaxKeys+1]...), wantErr: ErrTooManyKeys},
		{name: "too large", doc: []byte(`{"keys":[],"pad":"` + strings.Repeat("x", MaxBody) + `"}`), wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.doc, time.Unix(1, 0))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Len() != len(tt.wantKIDs) || len(s.Skipped) != tt.wantSkip {
				t.Fatalf("%d keys, %d skipped (%v); want %d, %d", s.Len(), len(s.Skipped), s.Skipped, len(tt.wantKIDs), tt.wantSkip)
			}
			if tt.wantWhy != "" && !strings.Contains(s.Skipped[0], tt.wantWhy) {
				t.Errorf("skipped because %q, want %q", s.Skipped[0], tt.wantWhy)
			}
			for _, kid := range tt.wantKIDs {
				if kid == "" {
					continue // no kid to find it by: TestKeysWithoutKIDAreAllKept
				}
				if _, ok := s.Lookup(kid); !ok {
					t.Errorf("kid %q missing", kid)
				}
			}
		})
	}
}

func TestLookupWithoutKID(t *testing.T) {
	a, b := issuer.MustSigner("ES256"), issuer.MustSigner("ES256")
	one, _ := Parse(doc(jwkJSON(t, a.JWK())), time.Time{})
	if k, ok := one.Lookup(""); !ok || k.ID != a.KID {
		t.Fatal("a set of one key: an empty kid should find it")
	}
	two, _ := Parse(doc(jwkJSON(t, a.JWK()), jwkJSON(t, b.JWK())), time.Time{})
	if _, ok := two.Lookup(""); ok {
		t.Fatal("a set of two keys: an empty kid must find none")
	}
	var none *Set
	if _, ok := none.Lookup(a.KID); ok || none.Len() != 0 || none.HasKey(a.Private.Public()) {
		t.Fatal("nil set")
	}
	none.EachKey(func(crypto.PublicKey, string) bool { t.Fatal("a nil set has a key"); return false })
}

// withoutKID is s's JWK with no kid.
func withoutKID(s *issuer.Signer) jose.JSONWebKey {
	k := s.JWK()
	k.KeyID = ""
	return k
}

// Every key without kid is kept, in the document's order: none is dropped
// because another lacks a kid too.
func TestKeysWithoutKIDAreAllKept(t *testing.T) {
	a, b, c := issuer.MustSigner("RS256"), issuer.MustSigner("ES256"), issuer.MustSigner("ES256")
	s, err := Parse(doc(jwkJSON(t, withoutKID(a)), jwkJSON(t, c.JWK()), jwkJSON(t, withoutKID(b))), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 || len(s.Skipped) != 0 {
		t.Fatalf("%d keys, skipped %v; want 3 and none", s.Len(), s.Skipped)
	}
	var got []crypto.PublicKey
	var algs []string
	s.EachKey(func(k crypto.PublicKey, alg string) bool { got, algs = append(got, k), append(algs, alg); return true })
	want := []crypto.PublicKey{a.Private.Public(), c.Private.Public(), b.Private.Public()}
	for i := range want {
		if i >= len(got) || !SameKey(got[i], want[i]) || algs[i] != []string{"RS256", "ES256", "ES256"}[i] {
			t.Fatalf("EachKey gave %d keys (%v), want a, c, b in order", len(got), algs)
		}
	}
	n := 0
	s.EachKey(func(crypto.PublicKey, string) bool { n++; return false })
	if n != 1 {
		t.Fatalf("EachKey went on after yield said stop: %d calls", n)
	}
	if _, ok := s.Lookup(""); ok {
		t.Fatal("an empty kid found one of several keys")
	}
	if k, ok := s.Lookup(c.KID); !ok || !SameKey(k.Public, c.Private.Public()) {
		t.Fatal("the key with a kid is not found by it")
	}
	if kids := s.KIDs(); len(kids) != 2 || !slices.Contains(kids, "") || !slices.Contains(kids, c.KID) {
		t.Fatalf("KIDs %q, want %q and \"\" once", kids, c.KID)
	}
	for _, k := range want {
		if !s.HasKey(k) {
			t.Fatalf("HasKey misses %T", k)
		}
	}
	if s.HasKey(issuer.MustSigner("ES256").Private.Public()) {
		t.Fatal("HasKey finds a key the set does not hold")
	}
}

func TestHasKeyDoesNotAllocate(t *testing.T) {
	a, b := issuer.MustSigner("ES256"), issuer.MustSigner("EdDSA")
	set, _ := Parse(doc(jwkJSON(t, withoutKID(a)), jwkJSON(t, withoutKID(b))), time.Time{})
	src := New(Config{Name: "t"})
	src.cur.Store(set)
	key := b.Private.Public()
	if n := testing.AllocsPerRun(1000, func() { src.HasKey(key) }); n != 0 {
		t.Fatalf("HasKey allocates %v times", n)
	}
}

// A refresh keeps the Key of a kid whose key did not change, so that what
// was verified with it can be told apart from what a new key under the
// same kid verifies; a changed key is named.
func TestKeepKeepsUnchangedKeys(t *testing.T) {
	a, b, c := issuer.MustSigner("ES256"), issuer.MustSigner("RS256"), issuer.MustSigner("EdDSA")
	parse := func(keys ...jose.JSONWebKey) *Set {
		t.Helper()
		var js []string
		for _, k := range keys {
			js = append(js, jwkJSON(t, k))
		}
		s, err := Parse(doc(js...), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	replaced := c.JWK()
	replaced.Key = issuer.MustSigner("EdDSA").Private.Public()
	old, cur := parse(a.JWK(), b.JWK(), c.JWK()), parse(a.JWK(), b.JWK(), replaced)
	if changed := cur.keep(old); len(changed) != 1 || changed[0] != c.KID {
		t.Fatalf("changed %v, want [%s]", changed, c.KID)
	}
	for _, kid := range []string{a.KID, b.KID} {
		if o, _ := old.Lookup(kid); cur.keys[kid] != o {
			t.Errorf("%s: a new Key for the same key", kid)
		}
	}
	if o, _ := old.Lookup(c.KID); cur.keys[c.KID] == o {
		t.Errorf("%s: the old Key for a new key", c.KID)
	}
	// The only key of a set, looked up without a kid.
	one, again := parse(a.JWK()), parse(a.JWK())
	again.keep(one)
	if k, _ := again.Lookup(""); k != one.all[0] {
		t.Error("the sole key was not kept")
	}
	// Keys without kid keep theirs, whatever their order; a new one among
	// them is named "".
	d, e := issuer.MustSigner("ES256"), issuer.MustSigner("RS256")
	before, after := parse(withoutKID(d), withoutKID(e)), parse(withoutKID(e), withoutKID(d))
	if changed := after.keep(before); len(changed) != 0 {
		t.Errorf("the same keys without kid, reordered: changed %q", changed)
	}
	if after.all[0] != before.all[1] || after.all[1] != before.all[0] {
		t.Error("a key without kid got a new Key across a refresh")
	}
	if changed := parse(withoutKID(d), withoutKID(issuer.MustSigner("ES256"))).keep(before); !slices.Equal(changed, []string{""}) {
		t.Errorf("a key without kid replaced: changed %q, want [\"\"]", changed)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	a, b := issuer.MustSigner("ES256"), issuer.MustSigner("RS256")
	set, _ := Parse(doc(jwkJSON(t, a.JWK()), jwkJSON(t, b.JWK())), time.Time{})
	src := New(Config{Name: "t"})
	src.cur.Store(set)
	kid := b.KID
	if n := testing.AllocsPerRun(1000, func() { src.Key(kid) }); n != 0 {
		t.Fatalf("Key allocates %v times", n)
	}
}

func BenchmarkKeyLookup(b *testing.B) {
	s := issuer.MustSigner("ES256")
	set, _ := Parse(doc(jwkJSON(b, s.JWK())), time.Time{})
	src := New(Config{Name: "t"})
	src.cur.Store(set)
	b.ReportAllocs()
	for b.Loop() {
		src.Key(s.KID)
	}
}

// TestAmbiguousKIDIsRefusedInEitherOrder: a kid that names two different
// keys selects neither, whichever comes first, while the set's other keys
// stay; a third entry under that kid does not bring it back.
func TestAmbiguousKIDIsRefusedInEitherOrder(t *testing.T) {
	a, b, c := issuer.MustSigner("ES256"), issuer.MustSigner("ES256"), issuer.MustSigner("RS256")
	other := b.JWK()
	other.KeyID = a.KID // b's key under a's kid
	for _, tt := range []struct {
		name string
		keys []string
	}{
		{"a first", []string{jwkJSON(t, a.JWK()), jwkJSON(t, other), jwkJSON(t, c.JWK())}},
		{"b first", []string{jwkJSON(t, other), jwkJSON(t, a.JWK()), jwkJSON(t, c.JWK())}},
		{"a, b, a again", []string{jwkJSON(t, a.JWK()), jwkJSON(t, other), jwkJSON(t, a.JWK()), jwkJSON(t, c.JWK())}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(doc(tt.keys...), time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if k, ok := s.Lookup(a.KID); ok {
				t.Errorf("kid %q found (%T): want no key for an ambiguous kid", a.KID, k.Public)
			}
			if _, ok := s.Lookup(c.KID); !ok || s.Len() != 1 {
				t.Errorf("%d keys, %q found %v: want the other key alone", s.Len(), c.KID, ok)
			}
			if len(s.Skipped) != len(tt.keys)-1 {
				t.Errorf("skipped %v: want every entry under the ambiguous kid named", s.Skipped)
			}
		})
	}
	if _, err := Parse(doc(jwkJSON(t, a.JWK()), jwkJSON(t, other)), time.Time{}); !errors.Is(err, ErrNoUsableKey) {
		t.Errorf("a set of one ambiguous kid: err %v, want ErrNoUsableKey", err)
	}
}
