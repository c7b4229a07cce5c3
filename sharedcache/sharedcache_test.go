package sharedcache

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
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

// newCache is a cache on url with keys and the test's clock; change, if
// set, edits its Config first.
func newCache(t testing.TB, url string, keys [][]byte, change func(*Config)) *testCache {
	t.Helper()
	tc := &testCache{clock: newClock(), res: &results{}}
	cfg := DefaultConfig()
	cfg.URL, cfg.Keys, cfg.Now, cfg.Observe = url, keys, tc.clock.now, tc.res.observe
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
	ttl, err := client(t, r).PTTL(ctx, c.secrets[0].key("p", "tok")).Result()
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
	key := c.secrets[0].key("p", "victim")
	c.put("p", "good", v) // an active verdict of another token
	good, err := rc.Get(ctx, c.secrets[0].key("p", "good")).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte { b = append([]byte{}, b...); b[i] ^= 1; return b }
	tests := []struct {
		name  string
		value []byte
	}{
		{name: "copied from another token's key", value: good},
		{name: "payload changed", value: flip(good, len(good)-3)},
		{name: "mac changed", value: flip(good, 5)},
		{name: "version changed", value: flip(good, 0)},
		{name: "truncated", value: good[:entryHeader-1]},
		{name: "header only", value: good[:entryHeader]},
		{name: "plain JSON", value: payload},
		{name: "garbage", value: []byte("\x00\xff garbage")},
		{name: "empty", value: nil},
		{name: "another cluster's secret", value: other.secrets[0].seal(key, payload)},
		{name: "another provider's entry", value: c.secrets[0].seal(c.secrets[0].key("q", "victim"), payload)},
		{name: "too large", value: c.secrets[0].seal(key, append(payload, make([]byte, maxEntry)...))},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := rc.Set(ctx, key, tt.value, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			if got, ok := c.Get(ctx, "p", "victim"); ok {
				t.Fatalf("hit %+v, want a miss", got)
			}
			if n := c.res.get(OpGet, BadMAC); n != i+1 {
				t.Errorf("bad_mac %d, want %d", n, i+1)
			}
		})
	}
	// The same bytes under their own key are an entry.
	if err := rc.Set(ctx, key, c.secrets[0].seal(key, payload), time.Hour).Err(); err != nil {
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

// TestRedisKilled: with Redis gone, Get is a miss at once, and after
// BreakerFailures failures Redis is skipped; after the cooldown one probe
// at a time tries it.
func TestRedisKilled(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newCache(t, r.URL(), [][]byte{key1}, nil)
	ctx := context.Background()
	c.put("p", "tok", verdict(c.clock.in(time.Hour)))
	if _, ok := c.Get(ctx, "p", "tok"); !ok {
		t.Fatal("miss before the kill")
	}
	r.Kill(t)
	for i := range DefaultBreakerFailures + 3 {
		start := time.Now()
		if _, ok := c.Get(ctx, "p", "tok"); ok {
			t.Fatal("hit with Redis killed")
		}
		if d := time.Since(start); d > DefaultTimeout+50*time.Millisecond {
			t.Errorf("Get %d took %v with Redis killed", i, d)
		}
	}
	if e, o := c.res.get(OpGet, Error)+c.res.get(OpGet, Timeout), c.res.get(OpGet, BreakerOpen); e != DefaultBreakerFailures || o != 3 || !c.BreakerOpen() {
		t.Errorf("errors %d, breaker_open %d (open %v); want %d and 3", e, o, c.BreakerOpen(), DefaultBreakerFailures)
	}
	c.Put(ctx, "p", "tok2", verdict(c.clock.in(time.Hour)))
	if n := c.res.get(OpPut, BreakerOpen); n != 1 {
		t.Errorf("put breaker_open %d, want 1", n)
	}
	c.clock.add(DefaultBreakerCooldown)
	c.Get(ctx, "p", "tok") // the probe: fails, the breaker opens again
	c.Get(ctx, "p", "tok")
	if e, o := c.res.get(OpGet, Error)+c.res.get(OpGet, Timeout), c.res.get(OpGet, BreakerOpen); e != DefaultBreakerFailures+1 || o != 4 {
		t.Errorf("after the cooldown: errors %d, breaker_open %d; want %d and 4", e, o, DefaultBreakerFailures+1)
	}
}

// TestSlowRedis: a Redis that does not answer is a miss within Timeout;
// the breaker opens, and after the cooldown the one probe closes it when
// Redis answers again. (CLIENT PAUSE ALL holds every command, CLIENT
// UNPAUSE too: the pause ends by itself.)
func TestSlowRedis(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newCache(t, r.URL(), [][]byte{key1}, nil)
	ctx := context.Background()
	c.put("p", "tok", verdict(c.clock.in(time.Hour)))
	r.Do(t, "CLIENT", "PAUSE", "300", "ALL")
	var worst time.Duration
	for range DefaultBreakerFailures {
		start := time.Now()
		if _, ok := c.Get(ctx, "p", "tok"); ok {
			t.Fatal("hit from a paused Redis")
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("slowest Get from a paused Redis: %v (timeout %v)", worst, DefaultTimeout)
	if worst > DefaultTimeout+50*time.Millisecond {
		t.Errorf("a Get took %v, want about %v", worst, DefaultTimeout)
	}
	if n := c.res.get(OpGet, Timeout); n != DefaultBreakerFailures || !c.BreakerOpen() {
		t.Errorf("timeouts %d (breaker open %v), want %d and open", n, c.BreakerOpen(), DefaultBreakerFailures)
	}
	start := time.Now()
	c.Put(ctx, "p", "tok", verdict(c.clock.in(time.Hour)))
	if d := time.Since(start); d > 5*time.Millisecond {
		t.Errorf("Put took %v: it must not wait for Redis", d)
	}
	r.Do(t, "PING") // answered when the pause ends
	c.clock.add(DefaultBreakerCooldown)
	if _, ok := c.Get(ctx, "p", "tok"); !ok || c.BreakerOpen() {
		t.Errorf("the probe after the cooldown: hit %v, breaker open %v; want a hit and closed", ok, c.BreakerOpen())
	}
}

// TestOneProbe: after the cooldown, while one operation probes Redis, the
// others skip it.
func TestOneProbe(t *testing.T) {
	clk := newClock()
	b := &breaker{failures: 2, cooldown: time.Second, now: clk.now}
	var changes []bool
	b.changed = func(open bool) { changes = append(changes, open) }
	for range 2 {
		ok, _ := b.allow()
		b.done(false, true)
		if !ok {
			t.Fatal("refused while closed")
		}
	}
	if ok, _ := b.allow(); ok {
		t.Fatal("allowed while open")
	}
	clk.add(time.Second)
	ok, probe := b.allow()
	if ok2, _ := b.allow(); !ok || !probe || ok2 {
		t.Fatalf("after the cooldown: first (%v, probe %v), second %v; want one probe", ok, probe, ok2)
	}
	b.done(true, false)
	if ok, probe := b.allow(); !ok || probe || b.open() {
		t.Errorf("after a good probe: allow %v probe %v open %v", ok, probe, b.open())
	}
	if !reflect.DeepEqual(changes, []bool{true, false}) {
		t.Errorf("changes %v", changes)
	}
}

// TestBadServer: a server that answers garbage, or nothing, is a miss
// within Timeout, never a hit, a panic or a hang.
func TestBadServer(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer string // "": never answers
		want   Result
	}{
		{name: "garbage", answer: "HTTP/1.1 200 OK\r\n\r\n", want: Error},
		{name: "a string for MGET", answer: "+OK\r\n", want: Error},
		{name: "an array for HELLO", answer: "*1\r\n$9\r\n\x01forged!!\r\n", want: Error},
		{name: "an error", answer: "-ERR no\r\n", want: Error},
		{name: "silence", want: Timeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			go serveBad(l, tt.answer)
			c := newCache(t, "redis://"+l.Addr().String(), [][]byte{key1}, nil)
			start := time.Now()
			if _, ok := c.Get(context.Background(), "p", "tok"); ok {
				t.Fatal("hit")
			}
			if d := time.Since(start); d > DefaultTimeout+50*time.Millisecond {
				t.Errorf("took %v", d)
			}
			got := maps.Collect(maps.All(c.res.n[OpGet]))
			if got[tt.want] != 1 {
				t.Errorf("results %v, want one %s", got, tt.want)
			}
		})
	}
}

// serveBad answers each command-looking read with answer, or with nothing.
func serveBad(l net.Listener, answer string) {
	for {
		cn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer cn.Close()
			buf := make([]byte, 4096)
			for {
				if _, err := cn.Read(buf); err != nil {
					return
				}
				if answer != "" {
					cn.Write([]byte(answer))
				}
			}
		}()
	}
}

// TestPutBounded: Put never waits, and beyond MaxWrites in flight it drops.
func TestPutBounded(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newCache(t, r.URL(), [][]byte{key1}, func(c *Config) { c.MaxWrites, c.Timeout = 2, time.Second })
	c.Get(context.Background(), "p", "warm") // a connection, before the pause
	r.Do(t, "CLIENT", "PAUSE", "10000", "WRITE")
	t.Cleanup(func() { r.Do(t, "CLIENT", "UNPAUSE") })
	start := time.Now()
	for i := range 5 {
		c.Put(context.Background(), "p", "tok"+string(rune('a'+i)), verdict(c.clock.in(time.Hour)))
	}
	if d := time.Since(start); d > 20*time.Millisecond {
		t.Errorf("5 Puts took %v with Redis paused", d)
	}
	if n := c.res.get(OpPut, Dropped); n != 3 {
		t.Errorf("dropped %d, want 3", n)
	}
	r.Do(t, "CLIENT", "UNPAUSE")
	c.inFlight.Wait()
	if n := c.res.get(OpPut, Stored); n != 2 {
		t.Errorf("stored %d, want 2", n)
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
