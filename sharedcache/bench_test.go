package sharedcache

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
)

// BenchmarkGet is what a local miss that hits the shared cache adds: one
// Get of a stored verdict from redis-server on loopback, with its p50 and
// p99 (docs/deployment/shared-cache.md quotes them).
func BenchmarkGet(b *testing.B) {
	r := testutil.StartRedis(b)
	c := newCache(b, r.URL(), [][]byte{key1}, func(c *Config) { c.Now = nil })
	ctx := context.Background()
	c.put("p", "tok", verdict(time.Now().Add(time.Hour).UnixNano()))
	var took []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if _, ok := c.Get(ctx, "p", "tok"); !ok {
			b.Fatal("miss")
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkVerify is the local verification a JWT needs instead, for
// comparison: why JWT verdicts are not shared.
func BenchmarkVerify(b *testing.B) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tt := range []struct {
		name     string
		method   jwt.SigningMethod
		sign, pk any
	}{
		{name: "ES256", method: jwt.SigningMethodES256, sign: ec, pk: &ec.PublicKey},
		{name: "RS256", method: jwt.SigningMethodRS256, sign: rk, pk: &rk.PublicKey},
	} {
		b.Run(tt.name, func(b *testing.B) {
			claims := jwt.MapClaims{"iss": "https://idp.example.com", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}
			tok, err := jwt.NewWithClaims(tt.method, claims).SignedString(tt.sign)
			if err != nil {
				b.Fatal(err)
			}
			p := jwt.NewParser(jwt.WithValidMethods([]string{tt.name}), jwt.WithExpirationRequired())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Parse(tok, func(*jwt.Token) (any, error) { return tt.pk, nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
