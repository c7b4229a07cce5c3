package authz

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"math/big"
	"testing"

	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// authz compares keys itself (it imports no key source), the way jwks
// does: the two answers never differ.
func TestSameKeyIsJWKSSameKey(t *testing.T) {
	ec := issuer.MustSigner("ES256").Private.Public().(*ecdsa.PublicKey)
	ecCopy := &ecdsa.PublicKey{Curve: ec.Curve, X: new(big.Int).Set(ec.X), Y: new(big.Int).Set(ec.Y)}
	rs := issuer.MustSigner("RS256").Private.Public().(*rsa.PublicKey)
	rsCopy := &rsa.PublicKey{N: new(big.Int).Set(rs.N), E: rs.E}
	ed := issuer.MustSigner("EdDSA").Private.Public().(ed25519.PublicKey)
	edCopy := append(ed25519.PublicKey(nil), ed...)
	other := issuer.MustSigner("ES256").Private.Public()
	tests := []struct {
		name string
		a, b crypto.PublicKey
		want bool
	}{
		{name: "one ECDSA object", a: ec, b: ec, want: true},
		{name: "ECDSA, equal material", a: ec, b: ecCopy, want: true},
		{name: "one RSA object", a: rs, b: rs, want: true},
		{name: "RSA, equal material", a: rs, b: rsCopy, want: true},
		{name: "Ed25519, equal material", a: ed, b: edCopy, want: true},
		{name: "two ECDSA keys", a: ec, b: other, want: false},
		{name: "ECDSA and RSA", a: ec, b: rs, want: false},
		{name: "RSA and nil", a: rs, b: nil, want: false},
		{name: "nil and nil", a: nil, b: nil, want: false},
		{name: "not a key", a: "k", b: "k", want: false},
	}
	for _, tt := range tests {
		if got, ref := sameKey(tt.a, tt.b), jwks.SameKey(tt.a, tt.b); got != tt.want || got != ref {
			t.Errorf("%s: sameKey %v, jwks.SameKey %v, want %v", tt.name, got, ref, tt.want)
		}
	}
}
