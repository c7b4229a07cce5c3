package cache

import (
	"context"
	"time"

	"golang.org/x/sync/singleflight"
)

// Flight coalesces concurrent work on one key: the first caller's fn runs
// once, in a goroutine of its own, and every caller that arrives while it runs
// gets its result. A caller whose context ends stops waiting; the work goes
// on for the others.
type Flight[V any] struct {
	g singleflight.Group
}

// Do runs fn for k unless a run for k is already under way, and waits for the
// result or for ctx to end. shared reports whether the result went to more
// than one caller.
func (f *Flight[V]) Do(ctx context.Context, k Key, fn func() V) (v V, shared bool, err error) {
	ch := f.g.DoChan(string(k[:]), func() (any, error) { return fn(), nil })
	select {
	case r := <-ch:
		return r.Val.(V), r.Shared, nil
	case <-ctx.Done():
		return v, false, ctx.Err()
	}
}

// Dedup shares one result among the checks of one request: concurrent ones
// wait for the first, later ones within the window reuse what it decided.
type Dedup[V any] struct {
	lru    *LRU[V]
	flight Flight[V]
}

// NewDedup returns a Dedup that remembers up to capacity results, each for
// at most window.
func NewDedup[V any](capacity int, window time.Duration) *Dedup[V] {
	return &Dedup[V]{lru: NewLRU[V](capacity, window, 0)}
}

// Do returns the result remembered under k, or computes it with fn, once for
// all concurrent callers. fn returns the value and the instant until which it
// may be reused; a zero instant keeps it from being remembered. hit reports
// that the value was remembered or shared rather than computed for this call.
func (d *Dedup[V]) Do(ctx context.Context, k Key, now time.Time, fn func() (V, time.Time)) (v V, hit bool, err error) {
	if v, ok := d.lru.Get(k, now); ok {
		return v, true, nil
	}
	v, shared, err := d.flight.Do(ctx, k, func() V {
		if v, ok := d.lru.peek(d.lru.shard(k), k, now); ok { // finished between our Get and Do
			return v
		}
		v, notAfter := fn()
		d.lru.Put(k, v, now, notAfter)
		return v
	})
	return v, shared, err
}

// Stats returns the counters of the remembered results.
func (d *Dedup[V]) Stats() Stats { return d.lru.Stats() }

// Close forgets every result.
func (d *Dedup[V]) Close() { d.lru.Close() }
