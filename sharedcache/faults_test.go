package sharedcache

import (
	"context"
	"maps"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
)

// TestRedisKilled: with Redis gone, Get is a miss at once, and after
// BreakerFailures failures Redis is skipped; after the cooldown one probe
// at a time tries it.
func TestRedisKilled(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newCache(t, r.URL(), [][]byte{key1}, defaultTimeout)
	ctx := context.Background()
	seed(t, r, "p", "tok")
	r.Kill(t)
	for i := range DefaultBreakerFailures + 3 {
		start := time.Now()
		if _, ok := c.Get(ctx, "p", "tok"); ok {
			t.Fatal("hit with Redis killed")
		}
		if d := time.Since(start); d > DefaultTimeout+slack {
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
	c := newCache(t, r.URL(), [][]byte{key1}, defaultTimeout)
	ctx := context.Background()
	seed(t, r, "p", "tok")
	// Long enough for five timeouts on a busy machine.
	r.Do(t, "CLIENT", "PAUSE", "1000", "ALL")
	var worst time.Duration
	for range DefaultBreakerFailures {
		start := time.Now()
		if _, ok := c.Get(ctx, "p", "tok"); ok {
			t.Fatal("hit from a paused Redis")
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("slowest Get from a paused Redis: %v (timeout %v)", worst, DefaultTimeout)
	if worst > DefaultTimeout+slack {
		t.Errorf("a Get took %v, want about %v", worst, DefaultTimeout)
	}
	if n := c.res.get(OpGet, Timeout); n != DefaultBreakerFailures || !c.BreakerOpen() {
		t.Errorf("timeouts %d (breaker open %v), want %d and open", n, c.BreakerOpen(), DefaultBreakerFailures)
	}
	r.Do(t, "PING") // answered when the pause ends
	// The probe after the cooldown closes the breaker (a busy machine may
	// need a few: a failed probe opens it again).
	var ok bool
	for try := 0; try < 5 && !ok; try++ {
		c.clock.add(DefaultBreakerCooldown)
		_, ok = c.Get(ctx, "p", "tok")
	}
	if !ok || c.BreakerOpen() {
		t.Errorf("the probe after the cooldown: hit %v, breaker open %v; want a hit and closed", ok, c.BreakerOpen())
	}
}

// TestCallersDeadlineIsNotRedisFault: Gets that end at the caller's
// deadline, sooner than the cache's timeout, or that the caller cancels,
// leave the breaker closed; as many that end at the cache's own timeout
// open it.
func TestCallersDeadlineIsNotRedisFault(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newCache(t, r.URL(), [][]byte{key1}, defaultTimeout)
	seed(t, r, "p", "tok")
	r.Do(t, "CLIENT", "PAUSE", "2000", "ALL")
	for i := range 2 * DefaultBreakerFailures {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout/4)
		if i%2 == 1 {
			cancel()
		}
		if _, ok := c.Get(ctx, "p", "tok"); ok {
			t.Fatal("hit from a paused Redis")
		}
		cancel()
	}
	if c.BreakerOpen() {
		t.Fatal("the caller's deadlines and cancels opened the breaker")
	}
	for range DefaultBreakerFailures {
		c.Get(context.Background(), "p", "tok")
	}
	if n := c.res.get(OpGet, Timeout); n != 3*DefaultBreakerFailures || !c.BreakerOpen() {
		t.Errorf("timeouts %d (breaker open %v), want %d and open", n, c.BreakerOpen(), 3*DefaultBreakerFailures)
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
		{name: "a status for every command", answer: "+OK\r\n", want: Error},
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
			c := newCache(t, "redis://"+l.Addr().String(), [][]byte{key1}, defaultTimeout)
			start := time.Now()
			if _, ok := c.Get(context.Background(), "p", "tok"); ok {
				t.Fatal("hit")
			}
			if d := time.Since(start); d > DefaultTimeout+slack {
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
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("5 Puts took %v with Redis paused: a Put must not wait for Redis (Timeout 1s)", d)
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

func defaultTimeout(c *Config) { c.Timeout = DefaultTimeout }

// slack is what a busy machine (-race, other tests) may add to a timeout.
const slack = 100 * time.Millisecond

// seed stores an active verdict for (provider, token) under key1, through
// a cache with room for a busy machine.
func seed(t *testing.T, r *testutil.Redis, provider, token string) {
	t.Helper()
	c := newCache(t, r.URL(), [][]byte{key1}, nil)
	c.put(provider, token, verdict(time.Now().Add(time.Hour).UnixNano()))
	if _, ok := c.Get(context.Background(), provider, token); !ok {
		t.Fatal("seed: miss")
	}
}
