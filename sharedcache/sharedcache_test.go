package sharedcache

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/internal/testutil"
)

var (
	key1 = []byte("0123456789abcdef0123456789abcdef-one")
	key2 = []byte("0123456789abcdef0123456789abcdef-two")
)

// clock is a settable clock, starting at a fixed time.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time           { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration)      { c.ns.Add(int64(d)) }
func (c *clock) in(d time.Duration) int64 { return c.now().Add(d).UnixNano() }

// results counts what Observe heard.
type results struct {
	mu sync.Mutex
	n  map[Op]map[Result]int
}

func (r *results) observe(op Op, res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[Op]map[Result]int{}
	}
	if r.n[op] == nil {
		r.n[op] = map[Result]int{}
	}
	r.n[op][res]++
}

func (r *results) get(op Op, res Result) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[op][res]
}

type testCache struct {
	*Cache
	clock *clock
	res   *results
}

// newCache is a cache on url with keys, the test's clock and a timeout of
// 2s; change, if set, edits its Config first.
func newCache(t testing.TB, url string, keys [][]byte, change func(*Config)) *testCache {
	t.Helper()
	tc := &testCache{clock: newClock(), res: &results{}}
	cfg := DefaultConfig()
	cfg.URL, cfg.Keys, cfg.Now, cfg.Observe = url, keys, tc.clock.now, tc.res.observe
	// Room for a busy machine (-race, other tests); the tests of the
	// timeout set DefaultTimeout.
	cfg.Timeout = 2 * time.Second
	if change != nil {
		change(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc.Cache = c
	return tc
}

// put stores v and waits for the write.
func (tc *testCache) put(provider, token string, v authz.SharedVerdict) {
	tc.Put(context.Background(), provider, token, v)
	tc.inFlight.Wait()
}

func client(t testing.TB, r *testutil.Redis) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func verdict(until int64) authz.SharedVerdict {
	return authz.SharedVerdict{Active: true, Subject: "alice", Issuer: "https://idp.example.com", Scopes: []string{"read", "write"},
		Claims: map[string]any{"org": "acme", "level": json.Number("3"), "roles": []any{"a", "b"}}, Until: until}
}

func TestGetPut(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newCache(t, r.URL(), [][]byte{key1}, nil)
	ctx := context.Background()
	v := verdict(c.clock.in(time.Minute))
	if _, ok := c.Get(ctx, "p", "tok-a"); ok {
		t.Fatal("hit before any put")
	}
	c.put("p", "tok-a", v)
	got, ok := c.Get(ctx, "p", "tok-a")
	if !ok || !reflect.DeepEqual(got, v) {
		t.Fatalf("Get = %+v, %v; want %+v", got, ok, v)
	}
	inactive := authz.SharedVerdict{Active: false, Until: c.clock.in(time.Minute)}
	c.put("p", "tok-b", inactive)
	if got, ok := c.Get(ctx, "p", "tok-b"); !ok || !reflect.DeepEqual(got, inactive) {
		t.Errorf("inactive verdict: Get = %+v, %v", got, ok)
	}
	for _, pt := range [][2]string{{"q", "tok-a"}, {"p", "tok-c"}, {"", "ptok-a"}, {"pt", "ok-a"}} {
		if _, ok := c.Get(ctx, pt[0], pt[1]); ok {
			t.Errorf("Get(%q, %q): hit, want a miss", pt[0], pt[1])
		}
	}
	if n, m := c.res.get(OpGet, Hit), c.res.get(OpPut, Stored); n != 2 || m != 2 {
		t.Errorf("hits %d, stored %d; want 2 and 2", n, m)
	}
	// Nothing of the token in Redis.
	keys, err := client(t, r).Keys(ctx, "*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	for _, k := range keys {
		val, _ := client(t, r).Get(ctx, k).Result()
		if strings.Contains(k+val, "tok-") || !strings.HasPrefix(k, keyPrefix) || len(k) != len(keyPrefix)+64 {
			t.Errorf("key %q value %q: want the prefix and a digest, no token", k, val)
		}
	}
}

// TestTTL: Redis keeps an entry until the verdict's until, never longer,
// and a verdict read after its until is a miss.
func TestTTL(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newCache(t, r.URL(), [][]byte{key1}, nil)
	ctx := context.Background()
	c.put("p", "tok", verdict(c.clock.in(90*time.Second+700*time.Microsecond)))
	ttl, err := client(t, r).PTTL(ctx, c.keyring()[0].key("p", "tok")).Result()
	if err != nil || ttl > 90*time.Second || ttl < 89*time.Second {
		t.Errorf("PTTL %v (%v), want (89s, 90s]", ttl, err)
	}
	c.put("p", "old", verdict(c.clock.in(-time.Second)))
	c.put("p", "now", verdict(c.clock.in(500*time.Microsecond))) // less than a millisecond
	if n, _ := client(t, r).DBSize(ctx).Result(); n != 1 {
		t.Errorf("%d keys; an expired verdict must not be stored", n)
	}
	c.clock.add(91 * time.Second) // Redis still has it (its clock did not move)
	if _, ok := c.Get(ctx, "p", "tok"); ok {
		t.Error("hit after the verdict's until")
	}
	if n := c.res.get(OpGet, Miss); n != 1 {
		t.Errorf("misses %d, want 1", n)
	}
}

// TestForged: whoever can write Redis cannot make an entry the cache
// accepts: each of these, written with go-redis under the token's key, is
// a miss counted as bad_mac.
func TestForged(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newCache(t, r.URL(), [][]byte{key1}, nil)
	other := newCache(t, r.URL(), [][]byte{key2}, nil)
	rc := client(t, r)
	ctx := context.Background()
	v := verdict(c.clock.in(time.Hour))
	payload, _ := json.Marshal(v)
	key := c.keyring()[0].key("p", "victim")
	c.put("p", "good", v) // an active verdict of another token
	good, err := rc.Get(ctx, c.keyring()[0].key("p", "good")).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte { b = append([]byte{}, b...); b[i] ^= 1; return b }
	tests := []struct {
		name  string
		value []byte
		want  Result // "": bad_mac
	}{
		{name: "copied from another token's key", value: good},
		{name: "payload changed", value: flip(good, len(good)-3)},
		{name: "mac changed", value: flip(good, 5)},
		{name: "version changed", value: flip(good, 0)},
		{name: "truncated", value: good[:entryHeader-1]},
		{name: "header only", value: good[:entryHeader]},
		{name: "plain JSON", value: payload},
		{name: "garbage", value: []byte("\x00\xff garbage")},
		{name: "empty", value: nil, want: Miss}, // GETRANGE reads none as ""
		{name: "another cluster's secret", value: other.keyring()[0].seal(key, payload)},
		{name: "another provider's entry", value: c.keyring()[0].seal(c.keyring()[0].key("q", "victim"), payload)},
		{name: "too large", value: c.keyring()[0].seal(key, append(payload, make([]byte, maxEntry)...))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := cmp.Or(tt.want, BadMAC)
			n := c.res.get(OpGet, want)
			if err := rc.Set(ctx, key, tt.value, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			if got, ok := c.Get(ctx, "p", "victim"); ok {
				t.Fatalf("hit %+v, want a miss", got)
			}
			if got := c.res.get(OpGet, want); got != n+1 {
				t.Errorf("%s counted %d times, want %d (results %v)", want, got, n+1, c.res.n[OpGet])
			}
		})
	}
	// Another type under the key: an error reply, a miss.
	if err := rc.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.RPush(ctx, key, good).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(ctx, "p", "victim"); ok || c.res.get(OpGet, Error) != 1 || c.BreakerOpen() {
		t.Errorf("a list under the key: hit %v, errors %d, breaker open %v; want a miss, 1 error, closed", ok, c.res.get(OpGet, Error), c.BreakerOpen())
	}
	rc.Del(ctx, key)
	// The same bytes under their own key are an entry.
	if err := rc.Set(ctx, key, c.keyring()[0].seal(key, payload), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(ctx, "p", "victim"); !ok {
		t.Error("a sealed entry under its own key: miss, want a hit")
	}
}

// TestRotation: the first key signs, every key verifies.
func TestRotation(t *testing.T) {
	r := testutil.StartRedis(t)
	old := newCache(t, r.URL(), [][]byte{key1}, nil)
	both := newCache(t, r.URL(), [][]byte{key2, key1}, nil)
	next := newCache(t, r.URL(), [][]byte{key2}, nil)
	ctx := context.Background()
	v := verdict(old.clock.in(time.Hour))
	old.put("p", "a", v)
	both.put("p", "b", v)
	for _, tt := range []struct {
		name   string
		c      *testCache
		token  string
		wantOK bool
	}{
		{name: "old key's entry, read with both", c: both, token: "a", wantOK: true},
		{name: "old key's entry, read with the new key only", c: next, token: "a"},
		{name: "new key's entry, read with the new key", c: next, token: "b", wantOK: true},
		{name: "new key's entry, read with the old key only", c: old, token: "b"},
	} {
		if _, ok := tt.c.Get(ctx, "p", tt.token); ok != tt.wantOK {
			t.Errorf("%s: hit %v, want %v", tt.name, ok, tt.wantOK)
		}
	}
}

// TestSetKeys: a running cache rotates its keys as TestRotation's three
// caches do, concurrently with its reads and writes; keys it refuses
// leave those in use.
func TestSetKeys(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newCache(t, r.URL(), [][]byte{key1}, nil)
	old := newCache(t, r.URL(), [][]byte{key1}, nil)
	next := newCache(t, r.URL(), [][]byte{key2}, nil)
	ctx := context.Background()
	v := verdict(c.clock.in(time.Hour))
	c.put("p", "a", v)

	// set changes the keys while another goroutine reads and writes (for
	// -race), and waits for its writes: c.put's wait may not overlap them.
	set := func(keys ...[]byte) (changed bool, err error) {
		t.Helper()
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c.Get(ctx, "p", "a")
				c.Put(ctx, "p", fmt.Sprint("busy", i%8), v)
			}
		}()
		changed, err = c.SetKeys(keys)
		close(stop)
		<-done
		c.inFlight.Wait()
		return changed, err
	}
	if changed, err := set(key2, key1); !changed || err != nil {
		t.Fatalf("SetKeys(new, old): changed %v, %v", changed, err)
	}
	if changed, err := set(key2, key1); changed || err != nil {
		t.Errorf("SetKeys with the same keys: changed %v, %v", changed, err)
	}
	c.put("p", "b", v)
	if _, ok := c.Get(ctx, "p", "a"); !ok {
		t.Error("with both keys: the old key's entry missed")
	}
	if _, ok := next.Get(ctx, "p", "b"); !ok {
		t.Error("written after the rotation: not signed with the new key")
	}
	if _, err := set(key2); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(ctx, "p", "a"); ok {
		t.Error("with the new key only: the old key's entry hit")
	}
	if _, ok := old.Get(ctx, "p", "b"); ok {
		t.Error("the old key verified the new key's entry")
	}
	for _, keys := range [][][]byte{nil, {key1, []byte("short")}} {
		if changed, err := set(keys...); err == nil || changed {
			t.Errorf("SetKeys(%d keys, one short or none): changed %v, error %v", len(keys), changed, err)
		}
	}
	if _, ok := c.Get(ctx, "p", "b"); !ok {
		t.Error("after refused keys: the keys in use changed")
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*Config)
		err    error
	}{
		{name: "no key", change: func(c *Config) { c.Keys = nil }},
		{name: "short key", change: func(c *Config) { c.Keys = [][]byte{[]byte("short")} }, err: ErrKeyTooShort},
		{name: "zero timeout", change: func(c *Config) { c.Timeout = 0 }},
		{name: "not a URL", change: func(c *Config) { c.URL = "http://localhost" }, err: ErrURL},
		{name: "a timeout in the URL", change: func(c *Config) { c.URL = "redis://localhost?read_timeout=1s" }, err: ErrURLOption},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL, cfg.Keys = "redis://127.0.0.1:1", [][]byte{key1}
			tt.change(&cfg)
			_, err := New(cfg)
			if err == nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("New: %v, want %v", err, tt.err)
			}
		})
	}
}
