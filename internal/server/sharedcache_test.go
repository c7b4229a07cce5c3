package server

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
	"github.com/jwtauthz/jwtauthz/introspect/introspecttest"
)

// fleetTimeout is the fleet's --shared-cache-timeout.
const fleetTimeout = 200 * time.Millisecond

// fleet is n jwtauthz sharing one Redis and one introspection endpoint:
// in-process servers, each with its own engine, local caches and Redis
// client, as n pods would have.
type fleet struct {
	apps    []*testApp
	clients []authv3.AuthorizationClient
	redis   *testutil.Redis
	rdb     *redis.Client
}

func newFleet(t *testing.T, n int, idp *introspecttest.Server, clock *testClock) *fleet {
	t.Helper()
	f := &fleet{redis: testutil.StartRedis(t)}
	f.rdb = redis.NewClient(&redis.Options{Addr: f.redis.Addr})
	t.Cleanup(func() { f.rdb.Close() })
	key := filepath.Join(t.TempDir(), "shared-cache-key")
	if err := os.WriteFile(key, []byte("Zm9yIHRlc3RzIG9ubHk6IGEgY2x1c3RlciBzZWNyZXQgb2YgNDggYnl0ZXM=\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	for range n {
		// A timeout with room for a busy machine (-race, other tests):
		// an entry a replica could not write in time would be missed.
		a := introspectionApp(t, idp, clock, false, "--cache-ttl", "1m", "--shared-cache", f.redis.URL(), "--shared-cache-key-file", key,
			"--shared-cache-timeout", fleetTimeout.String())
		f.apps = append(f.apps, a)
		f.clients = append(f.clients, authv3.NewAuthorizationClient(dial(t, a.grpcAddr())))
	}
	return f
}

// keys are the Redis keys the fleet wrote.
func (f *fleet) keys(t *testing.T) []string {
	t.Helper()
	ks, err := f.rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ks)
	return ks
}

// awaitKeys waits until Redis holds n entries: writes are asynchronous.
func (f *fleet) awaitKeys(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ks := f.keys(t); len(ks) >= n {
			return ks
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis holds %d entries after 10s, want %d", len(f.keys(t)), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestSharedCacheFleet: four jwtauthz sharing one Redis introspect a new
// token once between them, share inactive verdicts too, refuse an entry
// forged or moved in Redis, and go on through the IdP when Redis dies.
func TestSharedCacheFleet(t *testing.T) {
	idp := introspecttest.New(t, introspecttest.Options{})
	clock := newTestClock()
	f := newFleet(t, 4, idp, clock)
	claims := func(sub string) map[string]any {
		return map[string]any{"iss": idp.Issuer(), "sub": sub, "aud": "api", "org": "acme", "exp": clock.Now().Add(time.Hour).Unix(), "scope": "read"}
	}
	checkAll := func(tok string, want codes.Code) {
		t.Helper()
		before := len(f.keys(t))
		for i, c := range f.clients {
			code, h := checkOpaque(t, c, tok)
			if code != want || want == codes.OK && (h["x-auth-subject"] == "" || h["x-auth-org"] != "acme") {
				t.Errorf("jwtauthz %d: %v %v; want %v", i, code, h, want)
			}
			if i == 0 {
				f.awaitKeys(t, before+1) // the first one's verdict is in Redis
			}
		}
	}

	alice := idp.Issue(claims("alice"))
	checkAll(alice, codes.OK)
	if n := idp.CallsFor(alice); n != 1 {
		t.Errorf("alice: %d introspection calls from 4 jwtauthz, want 1", n)
	}
	revoked := idp.Issue(claims("mallory"))
	idp.Revoke(revoked)
	checkAll(revoked, codes.Unauthenticated)
	if n := idp.CallsFor(revoked); n != 1 {
		t.Errorf("a revoked token: %d introspection calls from 4 jwtauthz, want 1 (inactive verdicts are shared)", n)
	}
	if ks := f.keys(t); len(ks) != 2 || strings.Contains(strings.Join(ks, ""), alice) {
		t.Errorf("Redis keys %v: want 2 digests, no token", ks)
	}
	for _, want := range []string{
		`jwtauthz_shared_cache_total{op="get",result="hit"} 2`, // alice and the revoked token
		`jwtauthz_shared_cache_total{op="get",result="miss"} 0`,
		`jwtauthz_shared_cache_breaker_open 0`,
	} {
		if _, body, _ := get(t, f.apps[1].adminURL()+"/metrics"); !strings.Contains(body, want) {
			t.Errorf("the second jwtauthz's metrics lack %s", want)
		}
	}

	t.Run("forged", func(t *testing.T) {
		// Whoever can write Redis copies an allow onto a revoked token's
		// key, or writes one of their own: neither is an allow.
		ctx := context.Background()
		good := idp.Issue(claims("bob"))
		victim := idp.Issue(claims("eve"))
		idp.Revoke(victim)
		before := f.keys(t)
		checkOpaque(t, f.clients[0], good)
		withGood := f.awaitKeys(t, len(before)+1)
		checkOpaque(t, f.clients[0], victim)
		var goodKey, victimKey string
		for _, k := range f.awaitKeys(t, len(before)+2) {
			switch {
			case !slices.Contains(withGood, k):
				victimKey = k
			case !slices.Contains(before, k):
				goodKey = k
			}
		}
		allow, err := f.rdb.Get(ctx, goodKey).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		for i, forged := range [][]byte{allow, []byte(`{"active":true,"sub":"eve","iss":"` + idp.Issuer() + `","until":9999999999999999999}`)} {
			if err := f.rdb.Set(ctx, victimKey, forged, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			calls := idp.CallsFor(victim)
			if code, h := checkOpaque(t, f.clients[1+i], victim); code != codes.Unauthenticated {
				t.Errorf("forged entry %d: %v %v; want Unauthenticated", i, code, h)
			}
			if idp.CallsFor(victim) != calls+1 {
				t.Errorf("forged entry %d: the IdP was not asked", i)
			}
			if _, body, _ := get(t, f.apps[1+i].adminURL()+"/metrics"); !strings.Contains(body, `jwtauthz_shared_cache_total{op="get",result="bad_mac"} 1`) {
				t.Errorf("forged entry %d: no bad_mac counted", i)
			}
		}
	})

	t.Run("redis paused", func(t *testing.T) {
		// A Redis that does not answer costs a check the shared cache's
		// timeout, then the IdP answers.
		f.redis.Do(t, "CLIENT", "PAUSE", "1000", "ALL")
		dave := idp.Issue(claims("dave"))
		start := time.Now()
		if code, _ := checkOpaque(t, f.clients[0], dave); code != codes.OK {
			t.Errorf("with Redis paused: %v; want OK through the IdP", code)
		}
		took := time.Since(start)
		t.Logf("a new token with Redis paused: %v", took)
		if took < fleetTimeout || took > fleetTimeout+500*time.Millisecond {
			t.Errorf("a check with Redis paused took %v; want about the shared cache's timeout (%v) and the IdP's answer", took, fleetTimeout)
		}
		f.redis.Do(t, "PING") // answered when the pause ends
	})

	t.Run("redis killed", func(t *testing.T) {
		f.redis.Kill(t)
		carol := idp.Issue(claims("carol"))
		for i, c := range f.clients {
			start := time.Now()
			if code, _ := checkOpaque(t, c, carol); code != codes.OK {
				t.Errorf("jwtauthz %d with Redis killed: %v; want OK through the IdP", i, code)
			}
			t.Logf("jwtauthz %d: a new token with Redis killed in %v", i, time.Since(start))
		}
		if n := idp.CallsFor(carol); n != 4 {
			t.Errorf("carol with Redis killed: %d introspection calls, want 4 (one per jwtauthz)", n)
		}
		for _, a := range f.apps {
			if !a.Ready() {
				t.Error("unready with Redis killed")
			}
		}
	})
}
