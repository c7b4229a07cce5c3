package authz

import (
	"testing"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// Tokens without kid that two keys sign in turn keep two numbers in the
// provider's table of keys, not one more per turn: each key keeps its own.
func TestKeylessKeysKeepTheirNumbers(t *testing.T) {
	p := &provider{}
	a, b := issuer.MustSigner("ES256").Private.Public(), issuer.MustSigner("ES256").Private.Public()
	ia, _ := p.keyIndex("", a)
	ib, _ := p.keyIndex("", b)
	for range 100 {
		if i, _ := p.keyIndex("", a); i != ia {
			t.Fatalf("the first key got number %d, then %d", ia, i)
		}
		if i, _ := p.keyIndex("", b); i != ib {
			t.Fatalf("the second key got number %d, then %d", ib, i)
		}
	}
	if n := len(*p.used.Load()); n != 2 || ia == ib {
		t.Fatalf("%d keys in the table (numbers %d and %d), want 2", n, ia, ib)
	}
}
