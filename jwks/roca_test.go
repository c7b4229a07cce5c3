package jwks

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// The detector's data are those the published detectors use: M is the
// product of the primes up to 167, and 65537 has order 2454106387091158800
// modulo M (crocs-muni/roca roca/detect.py DlogFprint; badkeys
// rsakeys/roca.py, which writes both out).
func TestROCAData(t *testing.T) {
	if got := roca.m.Text(16); got != "924cba6ae99dfa084537facc54948df0c23da044d8cabe0edd75bc6" {
		t.Errorf("M = %s", got)
	}
	if roca.order != 2454106387091158800 {
		t.Errorf("order of 65537 = %d", roca.order)
	}
	prod := uint64(1)
	for _, pq := range roca.parts {
		prod *= pq
	}
	if prod != roca.order {
		t.Errorf("the parts %v multiply to %d, not the order", roca.parts, prod)
	}
	one := big.NewInt(1)
	if new(big.Int).Exp(roca.g, new(big.Int).SetUint64(roca.order), roca.m).Cmp(one) != 0 {
		t.Error("65537^order is not 1 modulo M")
	}
}

// rocaPrime returns a prime of bits bits, its two top bits set (a product
// of two has twice the bits), made as Infineon's RSALib made them:
// k·M + (65537^a mod M).
func rocaPrime(t testing.TB, bits int) *big.Int {
	t.Helper()
	kMax := new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), uint(bits)), roca.m)
	for range 1_000_000 {
		a, err := rand.Int(rand.Reader, new(big.Int).SetUint64(roca.order))
		if err != nil {
			t.Fatal(err)
		}
		p, err := rand.Int(rand.Reader, kMax)
		if err != nil {
			t.Fatal(err)
		}
		p.Mul(p, roca.m).Add(p, new(big.Int).Exp(roca.g, a, roca.m))
		if p.BitLen() == bits && p.Bit(bits-2) == 1 && p.ProbablyPrime(20) {
			return p
		}
	}
	t.Fatal("no prime of the form found")
	return nil
}

// rsaKey is the JWK of the RSA public key with modulus n.
func rsaKey(t testing.TB, n *big.Int) string {
	return jwkJSON(t, jose.JSONWebKey{Key: &rsa.PublicKey{N: n, E: 65537}, KeyID: "k", Use: "sig"})
}

func TestROCAKeysAreSkipped(t *testing.T) {
	p, q := rocaPrime(t, 1024), rocaPrime(t, 1024)
	n := new(big.Int).Mul(p, q)
	if n.BitLen() != 2048 {
		t.Fatalf("a modulus of %d bits", n.BitLen())
	}
	if !hasROCAFingerprint(n) {
		t.Fatal("a modulus of two RSALib primes is not found")
	}
	_, err := Parse(doc(rsaKey(t, n)), time.Time{})
	if !errors.Is(err, ErrNoUsableKey) {
		t.Fatalf("a set of one ROCA key: %v, want ErrNoUsableKey", err)
	}
	es := jwkJSON(t, issuer.MustSigner("ES256").JWK())
	s, err := Parse(doc(rsaKey(t, n), es), time.Time{})
	if err != nil || s.Len() != 1 || len(s.Skipped) != 1 || !strings.Contains(s.Skipped[0], "ROCA") {
		t.Fatalf("the ROCA key beside another: %v, skipped %q", err, s.Skipped)
	}
	// One RSALib prime is not the fingerprint: the other factor, random,
	// takes n out of the subgroup.
	r, err := rand.Prime(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if hasROCAFingerprint(new(big.Int).Mul(p, r)) {
		t.Fatal("one RSALib prime and a random one: found")
	}
}

// Fresh keys from crypto/rsa never have the fingerprint (a random modulus
// has it with a chance of about 2^-154).
func TestROCANoFalsePositive(t *testing.T) {
	n := 50
	if testing.Short() {
		n = 5
	}
	for range n {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if hasROCAFingerprint(k.N) {
			t.Fatalf("a fresh key has the fingerprint: %x", k.N)
		}
		if _, err := Parse(doc(rsaKey(t, k.N)), time.Time{}); err != nil {
			t.Fatalf("a fresh key refused: %v", err)
		}
	}
}

// vectorsDir is the published test vectors beside the repository
// (../shared/vectors from its root), or $JWTAUTHZ_VECTORS; "" if absent.
func vectorsDir() string {
	if d := os.Getenv("JWTAUTHZ_VECTORS"); d != "" {
		return d
	}
	d := filepath.Join("..", "..", "shared", "vectors")
	if _, err := os.Stat(d); err != nil {
		return ""
	}
	return d
}

// Wycheproof's JWK vectors hold a key with the ROCA fingerprint
// (jws_rsa_roca_key): its set has no usable key. No other RSA key of
// Wycheproof's JWK and JWS vectors has the fingerprint.
func TestROCAWycheproof(t *testing.T) {
	dir := vectorsDir()
	if dir == "" {
		t.Skip("no published vectors beside the repository (set JWTAUTHZ_VECTORS)")
	}
	roca, others := 0, 0
	for _, file := range []string{"wycheproof_json_web_key_test.json", "wycheproof_json_web_signature_test.json"} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			TestGroups []struct {
				Comment string          `json:"comment"`
				Public  json.RawMessage `json:"public"`
			} `json:"testGroups"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		for _, g := range v.TestGroups {
			for _, n := range rsaModuli(t, g.Public) {
				if g.Comment == "jws_rsa_roca_key" {
					roca++
					if !hasROCAFingerprint(n) {
						t.Errorf("%s: the ROCA key is not found", file)
					}
					if _, err := Parse(g.Public, time.Time{}); !errors.Is(err, ErrNoUsableKey) {
						t.Errorf("%s: the set of the ROCA key: %v, want ErrNoUsableKey", file, err)
					}
					continue
				}
				others++
				if hasROCAFingerprint(n) {
					t.Errorf("%s %s: a key without the fingerprint is found", file, g.Comment)
				}
			}
		}
	}
	if roca != 1 || others == 0 {
		t.Fatalf("%d ROCA keys and %d others read; want 1 and some", roca, others)
	}
}

// rsaModuli returns the moduli of the RSA keys of a JWK or a JWK set.
func rsaModuli(t *testing.T, raw json.RawMessage) []*big.Int {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, &set); err != nil || set.Keys == nil {
		set.Keys = []json.RawMessage{raw}
	}
	var out []*big.Int
	for _, k := range set.Keys {
		var jwk struct{ N string }
		if err := json.Unmarshal(k, &jwk); err != nil || jwk.N == "" {
			continue
		}
		b, err := base64.RawURLEncoding.DecodeString(jwk.N)
		if err != nil {
			t.Fatalf("modulus %q: %v", jwk.N, err)
		}
		out = append(out, new(big.Int).SetBytes(b))
	}
	return out
}

// BenchmarkROCAFingerprint is the cost the test adds to parsing an RSA key.
func BenchmarkROCAFingerprint(b *testing.B) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		hasROCAFingerprint(k.N)
	}
}
