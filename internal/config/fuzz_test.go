package config

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/authz"
)

// FuzzConfig fuzzes configuration loading as `serve` does it: a YAML file,
// then JWTAUTHZ_* variables, then flags. No input may panic, and whatever
// loads must be safe to run: only the asymmetric algorithms jwtauthz
// allows (never HMAC or none), positive limits, and an engine that builds.
//
//	go test ./cmd/jwtauthz -run '^$' -fuzz '^FuzzConfig$' -fuzztime=20s
//
// args are split on spaces; env is NAME=value lines.
func FuzzConfig(f *testing.F) {
	f.Add([]byte("issuer: https://issuer.example.com/\n"), "", "")
	f.Add([]byte("providers:\n  - name: a\n    issuer: https://a.example\n    algorithms: [ES256]\n"), "--algorithms RS256", "JWTAUTHZ_MAX_TOKEN_SIZE=1")
	f.Add([]byte("issuer: https://i.example\nalgorithms: [HS256]\n"), "", "JWTAUTHZ_ALGORITHMS=none")
	f.Add([]byte("rules:\n  - match: {path_regex: '(a+)+$'}\n    action: allow\n"), "--issuer https://i.example", "")
	f.Add([]byte(""), "--issuer https://i.example --cache-size -1", "CLERK_PUBLISHABLE_KEY=pk_test_Y2xlcmsuZXhhbXBsZS5jb20k")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, doc []byte, args, env string) {
		argv := strings.Fields(args)
		for _, a := range argv {
			if strings.Contains(a, "config") {
				t.Skip("--config and --check-config read or stop on other files")
			}
		}
		vars := map[string]string{}
		for _, line := range strings.Split(env, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && k != "JWTAUTHZ_CONFIG" {
				vars[k] = v
			}
		}
		path := filepath.Join(dir, "jwtauthz.yaml")
		if err := os.WriteFile(path, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		c, _, err := Load("serve", append([]string{"--config", path}, argv...), func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, io.Discard, Defaults())
		if err != nil {
			return
		}
		assertLoadedSafe(t, c)
		c.JWKSCA = "" // reading a CA file is not what is fuzzed here
		if err := c.Check(); err != nil {
			return
		}
		for _, p := range c.EngineConfig(map[string]authz.KeySource{}).Providers {
			assertSafeAlgorithms(t, "engine provider "+p.Name, p.Algorithms)
		}
	})
}

// assertLoadedSafe asserts what validate promises of a configuration it passed.
func assertLoadedSafe(t *testing.T, c *Config) {
	t.Helper()
	assertSafeAlgorithms(t, "algorithms", c.Algorithms)
	for _, p := range c.AllProviders() {
		assertSafeAlgorithms(t, "provider "+p.Name, p.Algorithms)
	}
	if c.CacheSize < 0 || c.NegativeCacheSize < 0 || c.MaxTokenSize <= 0 {
		t.Fatalf("sizes accepted: cache %d, negative cache %d, max token %d", c.CacheSize, c.NegativeCacheSize, c.MaxTokenSize)
	}
	if c.ClockSkew < 0 || c.CacheTTL < 0 || c.NetworkWait < 0 || c.JWKSTimeout <= 0 || c.JWKSMinRefresh <= 0 {
		t.Fatalf("durations accepted: skew %v, cache ttl %v, network wait %v, jwks timeout %v, min refresh %v", c.ClockSkew, c.CacheTTL, c.NetworkWait, c.JWKSTimeout, c.JWKSMinRefresh)
	}
}

func assertSafeAlgorithms(t *testing.T, what string, algs []string) {
	t.Helper()
	if len(algs) == 0 {
		t.Fatalf("%s: no algorithm", what)
	}
	for _, a := range algs {
		if !slices.Contains(authz.DefaultAlgorithms, a) || strings.HasPrefix(strings.ToUpper(a), "HS") || strings.EqualFold(a, "none") {
			t.Fatalf("%s: %q accepted", what, a)
		}
	}
}
