package authz

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/cache"
)

func TestGrantIsOneSmallAllocation(t *testing.T) {
	if n := unsafe.Sizeof(Grant{}); n != 64 {
		t.Fatalf("Grant is %d bytes, want 64 (a size class of its own)", n)
	}
}

// TestBytesPerCachedToken fills a token cache as checks would and reports
// the live heap per entry: the LRU's entry, its map slot, and the grant with
// its subject. Issue 8's target is 300 bytes at 100,000 and at 1,000,000
// tokens; Go's maps are emptier just after they grow, so the two differ.
func TestBytesPerCachedToken(t *testing.T) {
	if testing.Short() {
		t.Skip("fills up to 1,000,000 entries")
	}
	for _, n := range []int{100_000, 1_000_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			per := bytesPerCachedToken(t, n)
			t.Logf("%d cached tokens (32-byte subjects): %.0f bytes of live heap each", n, per)
			if per > 300 {
				t.Errorf("%.0f bytes per cached token, want at most 300", per)
			}
		})
	}
}

func bytesPerCachedToken(t *testing.T, n int) float64 {
	cfg := DefaultConfig()
	cfg.Providers = []ProviderConfig{{Name: "p", Issuer: "https://p", Keys: nopKeys{}}}
	cfg.CacheSize = 2 * n // room: shards fill unevenly
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pol := e.pol.Load()
	p := pol.providers[0]
	now := time.Now()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		c := &claims{RegisteredClaims: jwt.RegisteredClaims{Subject: fmt.Sprintf("user_2%027d", i), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}, key: &key.PublicKey}
		g := pol.newGrant(p, header{KID: "kid-1"}, c, "h.p.s", now.Add(time.Hour))
		e.tokens.Put(cache.Hash(fmt.Sprint(i)), g, now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(e)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}
