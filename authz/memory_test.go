package authz

import (
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
// the live heap per entry: the expirable LRU's entry, its two map slots, and
// the grant with its subject.
func TestBytesPerCachedToken(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 100,000 entries")
	}
	e, err := New(Config{Providers: []ProviderConfig{{Name: "p", Issuer: "https://p", Keys: nopKeys{}}}, CacheSize: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pol := e.pol.Load()
	p := pol.providers[0]
	now := time.Now()
	const n = 100_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		c := &claims{RegisteredClaims: jwt.RegisteredClaims{Subject: fmt.Sprintf("user_2%027d", i), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
		g := pol.newGrant(p, header{KID: "kid-1"}, c, "h.p.s", now.Add(time.Hour))
		e.tokens.Put(cache.Hash(fmt.Sprint(i)), g, now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d cached tokens (32-byte subjects): %.0f bytes of live heap each", n, per)
	if per > 350 {
		t.Errorf("%.0f bytes per cached token, want under 350 (the target is 300)", per)
	}
	runtime.KeepAlive(e)
}
