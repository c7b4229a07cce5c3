// Package cache holds what jwtauthz remembers between checks: an expirable
// LRU with a deadline per entry, and the coalescing of concurrent work.
//
// It is a leaf: it imports no other package of jwtauthz.
package cache

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Key is a full SHA-256 digest. Caches are keyed by digests so that no raw
// token is ever stored.
type Key [sha256.Size]byte

// Hash returns the SHA-256 digest of s without copying it.
func Hash(s string) Key {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// Expiring is a value that carries its own deadline: the instant, in Unix
// nanoseconds, from which it is no longer valid (0: never; only eviction
// ends it). Keeping it in the value, not beside it, keeps the entry small.
type Expiring interface {
	Deadline() int64
}

// half is one half of a Key.
type half [sha256.Size / 2]byte

// split returns the halves of k: the one a shard's map is keyed by, and the
// one its entry holds.
func split(k Key) (lo, hi half) { return half(k[:16]), half(k[16:]) }

// slot is what a shard keeps under the first half of a key: the second
// half, compared on every lookup, and the value. Two keys share a slot only
// if their whole digests are equal; a key whose first half is another's
// (2^-128 for any two tokens; finding one for a given token is a 128-bit
// second preimage) takes that key's place, as an eviction would. So the
// map's slots hold 16 bytes of key instead of 32, and the LRU's entry is no
// larger: 96 bytes with a pointer value, by its layout and Go's size
// classes (the heap per cached token is measured in authz).
type slot[V Expiring] struct {
	hi half
	v  V
}

// shard is one LRU with its lock and its own counters. The padding keeps
// two shards' counters off one cache line.
type shard[V Expiring] struct {
	mu        sync.Mutex
	lru       *simplelru.LRU[half, slot[V]]
	hits      atomic.Uint64
	misses    atomic.Uint64
	evictions atomic.Uint64
	_         [32]byte
}

// LRU is a size-bounded cache whose entries each carry their own deadline.
//
// It is golang-lru's LRU (simplelru) with the expiry done per entry: each
// value's own deadline, checked on every Get against the caller's clock,
// ends it (a token's exp, the cache TTL folded in by the caller), and the
// LRU order evicts unused entries first. golang-lru's expirable LRU has one
// TTL for all entries, so it was run with its TTL off, and then it only
// added cost: a second map per shard (its expiry bucket) holding every key
// again, 63–100 bytes per entry depending on how full Go's maps happen to
// be, and a clock read on every Get; with a TTL, v2.0.7 also starts a
// cleanup goroutine that nothing stops. Measured per cached token (the
// authz test): 286 → 223 bytes at 100,000 entries, 361 → 261 at 1,000,000;
// keying each shard's map by half the digest (see slot) then took them to
// 195 and 216.
// It is split into shards by key so that parallel readers do not all wait
// on one mutex.
type LRU[V Expiring] struct {
	shards   []shard[V]
	mask     uint64
	capacity int
	per      int // entries per shard
}

// Stats is a snapshot of an LRU's counters.
type Stats struct {
	Hits      uint64
	Misses    uint64
	Evictions uint64 // entries dropped to make room
	Size      int    // entries held; an expired one until it is evicted or looked up
	Capacity  int
}

// HitRate returns hits/(hits+misses), or 0 before the first lookup.
func (s Stats) HitRate() float64 {
	if n := s.Hits + s.Misses; n > 0 {
		return float64(s.Hits) / float64(n)
	}
	return 0
}

// NewLRU returns a cache of capacity entries, split into shards (rounded
// up to a power of two; 0 picks a default) of equal size: capacity is
// rounded up to a multiple of their number, and Stats says how many. A
// capacity of 0 (or less) makes a cache that keeps nothing: Put does
// nothing and every Get misses.
func NewLRU[V Expiring](capacity, shards int) *LRU[V] {
	capacity = max(capacity, 0)
	if shards <= 0 {
		shards = 16
	}
	n := 1
	for n < shards && n*2 <= capacity {
		n *= 2
	}
	per := (capacity + n - 1) / n
	c := &LRU[V]{shards: make([]shard[V], n), mask: uint64(n - 1), capacity: per * n, per: per}
	for i := range c.shards {
		c.shards[i].lru = newShardLRU[V](per)
	}
	return c
}

// newShardLRU returns a shard's LRU of size entries; one of capacity 0
// gets an empty one of size 1, into which Put puts nothing.
func newShardLRU[V Expiring](size int) *simplelru.LRU[half, slot[V]] {
	l, err := simplelru.NewLRU[half, slot[V]](max(size, 1), nil)
	if err != nil {
		panic(err) // only for size < 1, which max rules out
	}
	return l
}

func (c *LRU[V]) shard(k Key) *shard[V] {
	// The key is a uniform digest: any 8 of its bytes pick a shard evenly.
	i := uint64(k[0]) | uint64(k[1])<<8 | uint64(k[2])<<16 | uint64(k[3])<<24
	return &c.shards[i&c.mask]
}

// Get returns the value stored under k if its deadline is after now.
func (c *LRU[V]) Get(k Key, now time.Time) (V, bool) { return c.GetIf(k, now, nil) }

// GetIf is Get for a value that also has to pass keep (if not nil): one
// that does not is dropped and counted as a miss.
func (c *LRU[V]) GetIf(k Key, now time.Time, keep func(V) bool) (V, bool) {
	s := c.shard(k)
	v, ok := c.peek(s, k, now)
	if ok && keep != nil && !keep(v) {
		c.Remove(k)
		var zero V
		v, ok = zero, false
	}
	if ok {
		s.hits.Add(1)
	} else {
		s.misses.Add(1)
	}
	return v, ok
}

// Peek is Get without counting a hit or a miss.
func (c *LRU[V]) Peek(k Key, now time.Time) (V, bool) { return c.peek(c.shard(k), k, now) }

// peek is Get without counting.
func (c *LRU[V]) peek(s *shard[V], k Key, now time.Time) (V, bool) {
	lo, hi := split(k)
	s.mu.Lock()
	e, ok := s.lru.Get(lo)
	if ok = ok && e.hi == hi; ok && expired(e.v, now) {
		s.lru.Remove(lo)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		var zero V
		return zero, false
	}
	return e.v, true
}

// expired is generic, not over the interface, so that a value type is not
// boxed on every lookup.
func expired[V Expiring](v V, now time.Time) bool {
	d := v.Deadline()
	return d != 0 && now.UnixNano() >= d
}

// Put stores v under k until its deadline. A value already past its
// deadline is not stored, nor anything in a cache of capacity 0.
func (c *LRU[V]) Put(k Key, v V, now time.Time) {
	if c.capacity == 0 || expired(v, now) {
		return
	}
	s := c.shard(k)
	lo, hi := split(k)
	s.mu.Lock()
	evicted := s.lru.Add(lo, slot[V]{hi, v})
	s.mu.Unlock()
	if evicted {
		s.evictions.Add(1)
	}
}

// Remove drops k.
func (c *LRU[V]) Remove(k Key) {
	s := c.shard(k)
	lo, hi := split(k)
	s.mu.Lock()
	if e, ok := s.lru.Peek(lo); ok && e.hi == hi {
		s.lru.Remove(lo)
	}
	s.mu.Unlock()
}

// len is the number of entries of s.
func (s *shard[V]) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// Len returns the number of entries, expired ones not yet dropped included.
func (c *LRU[V]) Len() int {
	n := 0
	for i := range c.shards {
		n += c.shards[i].len()
	}
	return n
}

// Stats returns the counters summed over the shards.
func (c *LRU[V]) Stats() Stats {
	st := Stats{Capacity: c.capacity}
	for i := range c.shards {
		s := &c.shards[i]
		st.Hits += s.hits.Load()
		st.Misses += s.misses.Load()
		st.Evictions += s.evictions.Load()
		st.Size += s.len()
	}
	return st
}

// Close empties the cache and lets its memory go.
func (c *LRU[V]) Close() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.lru = newShardLRU[V](c.per)
		s.mu.Unlock()
	}
}
