package cache

import (
	"context"
	"testing"
	"time"
)

// An LRU of capacity 0 keeps nothing, says so in its stats, and neither
// panics nor divides by zero; a Dedup over one remembers no result.
func TestZeroCapacityKeepsNothing(t *testing.T) {
	for _, shards := range []int{0, 1, 16} {
		c := NewLRU[val](0, shards)
		c.Put(key(1), until("a", t0.Add(time.Hour)), t0)
		if _, ok := c.Get(key(1), t0); ok {
			t.Fatalf("%d shards: a cache of capacity 0 kept a value", shards)
		}
		if st := c.Stats(); st.Capacity != 0 || st.Size != 0 || st.Misses != 1 || st.HitRate() != 0 {
			t.Fatalf("%d shards: stats %+v", shards, st)
		}
		c.Close()
		c.Put(key(1), until("a", t0.Add(time.Hour)), t0)
		if c.Len() != 0 {
			t.Fatalf("%d shards: kept a value after Close", shards)
		}
	}
	d := NewDedup[val](0)
	runs := 0
	for range 2 {
		v, hit, err := d.Do(context.Background(), key(2), t0, func() val { runs++; return until("b", t0.Add(time.Hour)) })
		if err != nil || hit || v.s != "b" {
			t.Fatalf("Do: %v %v %v", v, hit, err)
		}
	}
	if runs != 2 {
		t.Fatalf("a dedup of capacity 0 ran %d times for 2 calls, want 2", runs)
	}
}
