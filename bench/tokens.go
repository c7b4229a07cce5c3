package main

import (
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// mint signs n distinct tokens with s, valid from now for ttl, on every
// core. Each has its own sub and sid, and the claims a browser session
// token of a hosted IdP carries.
func mint(s *issuer.Signer, iss, prefix string, n int, ttl time.Duration) ([]string, error) {
	toks := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	now := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += workers {
				toks[i], errs[w] = s.Sign(claims(iss, prefix, i, now, ttl))
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("mint %s: %w", s.Alg, err)
		}
	}
	return toks, nil
}

func claims(iss, prefix string, i int, now time.Time, ttl time.Duration) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": iss,
		"sub": fmt.Sprintf("user_%s%08d", prefix, i),
		"sid": fmt.Sprintf("sess_%s%08d", prefix, i),
		"azp": "https://app.example.com",
		"iat": now.Unix(),
		"nbf": now.Add(-10 * time.Second).Unix(),
		"exp": now.Add(ttl).Unix(),
	}
}

// bareVerify returns the CPU time one signature verification of tok takes
// on its own: the hash of the signing input and the public-key operation,
// as golang-jwt does them, with no parsing, claims or caching. It runs on
// one goroutine for at least a second of CPU so the tick resolution of
// /proc/self/stat stays under 1%.
func bareVerify(s *issuer.Signer, tok string) (time.Duration, error) {
	verify, err := bareVerifier(s, tok)
	if err != nil {
		return 0, err
	}
	runtime.GC()
	c0, err := cpuTime("self")
	if err != nil {
		return 0, err
	}
	var n int
	for start := time.Now(); time.Since(start) < 1500*time.Millisecond; n++ {
		verify()
	}
	c1, err := cpuTime("self")
	if err != nil {
		return 0, err
	}
	return (c1 - c0) / time.Duration(n), nil
}

// bareVerifier returns golang-jwt's SigningMethod.Verify of tok, signed by
// s, on its decoded signature, and fails unless it verifies once.
func bareVerifier(s *issuer.Signer, tok string) (func() error, error) {
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		return nil, err
	}
	m, input, pub := jwt.GetSigningMethod(s.Alg), tok[:i], s.Private.Public()
	verify := func() error { return m.Verify(input, sig, pub) }
	return verify, verify()
}
