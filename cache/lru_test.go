package cache

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0)

func key(i int) Key { return Hash(fmt.Sprint("token-", i)) }

// val is a cached value with a deadline.
type val struct {
	s string
	d int64
}

func (v val) Deadline() int64 { return v.d }

func until(s string, t time.Time) val { return val{s, t.UnixNano()} }

func TestLRUPerEntryDeadline(t *testing.T) {
	c := NewLRU[val](100, 4)
	tests := []struct {
		name     string
		notAfter time.Time
		at       time.Time
		wantHit  bool
	}{
		{name: "before its deadline", notAfter: t0.Add(time.Minute), at: t0.Add(59 * time.Second), wantHit: true},
		{name: "at its deadline", notAfter: t0.Add(time.Minute), at: t0.Add(time.Minute), wantHit: false},
		{name: "after its deadline", notAfter: t0.Add(time.Minute), at: t0.Add(2 * time.Minute), wantHit: false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := key(i)
			c.Put(k, until(tt.name, tt.notAfter), t0)
			v, ok := c.Get(k, tt.at)
			if ok != tt.wantHit || (ok && v.s != tt.name) {
				t.Fatalf("Get = %q, %v; want hit %v", v.s, ok, tt.wantHit)
			}
		})
	}
	if c.Put(key(9), val{s: "no deadline"}, t0); c.Len() == 0 {
		t.Fatal("a value without a deadline was not stored")
	}
}

func TestLRUExpiredPutStoresNothing(t *testing.T) {
	c := NewLRU[val](10, 1)
	c.Put(key(1), until("1", t0), t0)
	c.Put(key(2), until("2", t0.Add(-time.Second)), t0)
	if n := c.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
}

func TestLRUStats(t *testing.T) {
	c := NewLRU[val](4, 1)
	for i := range 6 {
		c.Put(key(i), until(fmt.Sprint(i), t0.Add(time.Minute)), t0)
	}
	c.Get(key(5), t0) // hit
	c.Get(key(0), t0) // evicted: miss
	st := c.Stats()
	want := Stats{Hits: 1, Misses: 1, Evictions: 2, Size: 4, Capacity: 4}
	if st != want {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}
	if hr := st.HitRate(); hr != 0.5 {
		t.Fatalf("HitRate = %v", hr)
	}
	c.Close()
	if c.Len() != 0 {
		t.Fatal("Close left entries")
	}
}

// TestLRUComparesWholeDigest: the shards' maps are keyed by the first half
// of a digest; two keys that share it still never read each other's value.
func TestLRUComparesWholeDigest(t *testing.T) {
	a := key(1)
	b := a
	b[31] ^= 1 // the same first half, another second half
	c := NewLRU[val](10, 1)
	c.Put(a, until("a", t0.Add(time.Minute)), t0)
	if v, ok := c.Get(b, t0); ok {
		t.Fatalf("Get(b) = %q: a's value under another digest", v.s)
	}
	if c.Remove(b); c.Len() != 1 {
		t.Fatal("Remove(b) dropped a")
	}
	c.Put(b, until("b", t0.Add(time.Minute)), t0) // takes a's place
	if v, ok := c.Get(a, t0); ok {
		t.Fatalf("Get(a) = %q after b took its place", v.s)
	}
	if v, ok := c.Get(b, t0); !ok || v.s != "b" {
		t.Fatalf("Get(b) = %q, %v", v.s, ok)
	}
	if c.Remove(b); c.Len() != 0 {
		t.Fatal("Remove(b) left it")
	}
}

func TestLRUShardsRoundToCapacity(t *testing.T) {
	for _, tt := range []struct{ capacity, shards, want int }{{1, 16, 1}, {3, 16, 2}, {100, 16, 16}, {100, 5, 8}} {
		if got := len(NewLRU[val](tt.capacity, tt.shards).shards); got != tt.want {
			t.Errorf("NewLRU(%d, _, %d): %d shards, want %d", tt.capacity, tt.shards, got, tt.want)
		}
	}
}

func TestFlightCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f Flight[int]
		var runs atomic.Int32
		release := make(chan struct{})
		var wg sync.WaitGroup
		results := make([]int, 8)
		for i := range results {
			wg.Go(func() {
				v, _, err := f.Do(context.Background(), key(1), func() int {
					runs.Add(1)
					<-release
					return 42
				})
				if err != nil {
					t.Error(err)
				}
				results[i] = v
			})
		}
		synctest.Wait() // every caller is waiting on the one run
		close(release)
		wg.Wait()
		for _, v := range results {
			if v != 42 {
				t.Fatalf("results %v", results)
			}
		}
		if n := runs.Load(); n != 1 {
			t.Fatalf("runs = %d, want 1", n)
		}
	})
}

func TestFlightPanicFailsTheWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f Flight[int]
		release := make(chan struct{})
		go func() {
			defer func() { recover() }()
			f.Do(context.Background(), key(1), func() int { <-release; panic("boom") })
		}()
		synctest.Wait()
		errc := make(chan error)
		go func() {
			_, _, err := f.Do(context.Background(), key(1), func() int { return 1 })
			errc <- err
		}()
		synctest.Wait()
		close(release)
		if err := <-errc; err != ErrFlightFailed {
			t.Fatalf("waiter of a run that panicked: %v, want ErrFlightFailed", err)
		}
	})
}

func TestFlightWaiterLeavesOnItsContext(t *testing.T) {
	var f Flight[int]
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	go f.Do(context.Background(), key(1), func() int { close(started); <-release; return 1 })
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := f.Do(ctx, key(1), func() int { <-release; return 2 }); err == nil {
		t.Fatal("a waiter whose context ended got no error")
	}
}

func TestDedupReusesWithinWindow(t *testing.T) {
	d := NewDedup[val](10)
	calls := 0
	fn := func(v string, notAfter time.Time) func() val {
		return func() val { calls++; return until(v, notAfter) }
	}
	ctx := context.Background()
	window := func(now time.Time) time.Time { return now.Add(10 * time.Second) }
	v, hit, _ := d.Do(ctx, key(1), t0, fn("first", window(t0)))
	if v.s != "first" || hit {
		t.Fatalf("first Do = %q, %v", v.s, hit)
	}
	v, hit, _ = d.Do(ctx, key(1), t0.Add(9*time.Second), fn("second", window(t0)))
	if v.s != "first" || !hit {
		t.Fatalf("within the window = %q, %v", v.s, hit)
	}
	at := t0.Add(11 * time.Second)
	v, _, _ = d.Do(ctx, key(1), at, fn("third", window(at)))
	if v.s != "third" {
		t.Fatalf("after the window = %q", v.s)
	}
	// A result whose own deadline is sooner than the window ends sooner.
	d.Do(ctx, key(2), t0, fn("short", t0.Add(time.Second)))
	if v, _, _ := d.Do(ctx, key(2), t0.Add(2*time.Second), fn("fresh", window(t0))); v.s != "fresh" {
		t.Fatalf("reused past its deadline: %q", v.s)
	}
	// A deadline already past is never remembered.
	d.Do(ctx, key(3), t0, fn("once", t0))
	if v, _, _ := d.Do(ctx, key(3), t0, fn("again", t0)); v.s != "again" {
		t.Fatalf("past deadline remembered: %q", v.s)
	}
	if calls != 6 {
		t.Fatalf("calls = %d, want 6", calls)
	}
}

func TestLRUStartsNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	var cs []*LRU[val]
	for range 10 {
		cs = append(cs, NewLRU[val](1000, 16))
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("goroutines %d → %d after 10 caches", before, after)
	}
	runtime.KeepAlive(cs)
}

// TestLRUMemoryAfterChurn: a flood of distinct keys (the negative cache under
// attack) keeps the memory of a full cache, not more.
func TestLRUMemoryAfterChurn(t *testing.T) {
	const capacity = 10_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := NewLRU[val](capacity, 0)
	v := until("", t0.Add(time.Hour))
	for i := range 10 * capacity {
		c.Put(key(i), v, t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / capacity
	t.Logf("after 10× capacity distinct keys: %.0f bytes per unit of capacity", per)
	if per > 600 {
		t.Fatalf("%.0f bytes per unit of capacity after churn, want under 600", per)
	}
	runtime.KeepAlive(c)
}

// Capacity is what the shards hold in all: 3 entries over 2 shards of 2 is
// a capacity of 4, and Size never exceeds it.
func TestCapacityIsWhatTheShardsHold(t *testing.T) {
	c := NewLRU[val](3, 16)
	for i := range 1000 {
		c.Put(key(i), val{s: "x"}, t0)
	}
	if st := c.Stats(); st.Size != 4 || st.Capacity != 4 {
		t.Fatalf("Size %d, Capacity %d: want 4 and 4", st.Size, st.Capacity)
	}
}
