package jwks_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// FuzzParseJWKS fuzzes the key set parser with documents an IdP (or whoever
// answers in its name) may serve. Whatever it accepts must be public
// signing keys of the supported kinds, each described by an entry of the
// document, within the limits; whatever breaks the limits is refused.
//
//	go test ./jwks -run '^$' -fuzz '^FuzzParseJWKS$' -fuzztime=20s
func FuzzParseJWKS(f *testing.F) {
	var keys []string
	for _, alg := range []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"} {
		b, err := json.Marshal(issuer.MustSigner(alg).JWK())
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, string(b))
	}
	set := func(entries ...string) []byte { return []byte(`{"keys":[` + strings.Join(entries, ",") + `]}`) }
	f.Add(set(keys...))
	f.Add(set(keys[2], keys[2]))
	f.Add(set(strings.Split(strings.Repeat(`{"kty":"EC"}`+"\n", jwks.MaxKeys+1), "\n")[:jwks.MaxKeys+1]...))
	// The body limit, once: a 1 MiB seed would slow every mutation down.
	if _, err := jwks.Parse(append(set(keys[5]), bytes.Repeat([]byte(" "), jwks.MaxBody)...), time.Time{}); err == nil {
		f.Fatalf("a document over %d bytes was accepted", jwks.MaxBody)
	}
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"p","x":"","y":"","d":""}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := jwks.Parse(doc, time.Unix(1_800_000_000, 0))
		if err != nil {
			if s != nil {
				t.Fatalf("error %v with a set", err)
			}
			return
		}
		if len(doc) > jwks.MaxBody {
			t.Fatalf("document of %d bytes accepted (limit %d)", len(doc), jwks.MaxBody)
		}
		entries := entriesOf(t, doc)
		if len(entries) > jwks.MaxKeys {
			t.Fatalf("%d entries accepted (limit %d)", len(entries), jwks.MaxKeys)
		}
		if s.Len() < 1 || s.Len() > len(entries) {
			t.Fatalf("%d keys from %d entries", s.Len(), len(entries))
		}
		if _, ok := s.Lookup(""); ok != (s.Len() == 1) {
			t.Fatalf("an empty kid finds a key: %v, with %d keys", ok, s.Len())
		}
		for _, kid := range s.KIDs() {
			k, ok := s.Lookup(kid)
			if kid == "" && s.Len() > 1 {
				if ok {
					t.Fatal("an empty kid finds a key in a set of several")
				}
				continue // a key without kid is used only when it is alone
			}
			if !ok || k.ID != kid {
				t.Fatalf("kid %q: lookup %v", kid, ok)
			}
			checkPublicSigningKey(t, k)
			if !described(entries, k) {
				t.Fatalf("key %q (%T, alg %q) is not described by a public signing entry of the document", kid, k.Public, k.Alg)
			}
		}
	})
}

// entriesOf reads the document's keys array on its own.
func entriesOf(t *testing.T, doc []byte) []map[string]json.RawMessage {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		t.Fatalf("Parse accepted a document encoding/json refuses: %v", err)
	}
	var out []map[string]json.RawMessage
	for _, e := range raw.Keys {
		var m map[string]json.RawMessage
		if json.Unmarshal(e, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// checkPublicSigningKey fails unless k is an RSA key of at least MinRSABits,
// an EC key on P-256, P-384 or P-521, or an Ed25519 key, and public.
func checkPublicSigningKey(t *testing.T, k *jwks.Key) {
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < jwks.MinRSABits {
			t.Fatalf("RSA key of %d bits", pub.N.BitLen())
		}
		// Parse keeps RSA keys no RSA key can be (an even or tiny e, an
		// even n); crypto/rsa then refuses every signature, e=1 included,
		// which would make the signature the message.
		if pub.E < 3 || pub.E%2 == 0 || pub.N.Bit(0) == 0 {
			msg := make([]byte, (pub.N.BitLen()+7)/8)
			msg[len(msg)-1] = 1
			if rsa.VerifyPKCS1v15(pub, crypto.SHA256, make([]byte, 32), msg) == nil {
				t.Fatalf("a signature verifies under an RSA key with e=%d", pub.E)
			}
		}
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			t.Fatalf("EC key on %v", pub.Curve.Params().Name)
		}
		if _, err := pub.ECDH(); err != nil {
			t.Fatalf("EC key not on its curve: %v", err)
		}
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			t.Fatalf("Ed25519 key of %d bytes", len(pub))
		}
	default:
		t.Fatalf("key of type %T", k.Public)
	}
}

// described reports whether some entry of the document has k's kid and
// alg, is not meant for encryption, and holds k's public key and no
// private part.
func described(entries []map[string]json.RawMessage, k *jwks.Key) bool {
	for _, e := range entries {
		var kid, alg, use string
		json.Unmarshal(e["kid"], &kid)
		json.Unmarshal(e["alg"], &alg)
		json.Unmarshal(e["use"], &use)
		if kid != k.ID || alg != k.Alg || (use != "" && use != "sig") || e["d"] != nil {
			continue
		}
		b, _ := json.Marshal(e)
		var jwk jose.JSONWebKey
		if jwk.UnmarshalJSON(b) != nil {
			continue
		}
		if same(jwk.Key, k.Public) {
			return true
		}
	}
	return false
}

// same reports whether two public keys are equal (every kind has Equal).
func same(a, b any) bool {
	x, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && x.Equal(b)
}
