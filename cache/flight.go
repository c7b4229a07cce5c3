package cache

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrFlightFailed is what waiters get when the run they waited for
// panicked.
var ErrFlightFailed = errors.New("cache: the shared run failed")

// Flight coalesces concurrent work on one key: the first caller runs fn
// itself, and every caller that arrives while it runs waits for its result;
// a waiter whose context ends stops waiting, and the run goes on for the
// others.
//
// golang.org/x/sync/singleflight offers either waiters that cannot leave
// (Do) or a new goroutine per run (DoChan), which for a signature check
// costs a stack growth each time (measured: about 10% of the CPU of an
// uncached check); this needs neither.
type Flight[V any] struct {
	mu    sync.Mutex
	calls map[Key]*call[V]
}

type call[V any] struct {
	done chan struct{}
	val  V
	ok   bool // fn returned (did not panic)
}

// Do runs fn for k unless a run for k is under way, in which case it waits
// for that run's result or for ctx to end. shared reports that the result
// came from another caller's run.
func (f *Flight[V]) Do(ctx context.Context, k Key, fn func() V) (v V, shared bool, err error) {
	f.mu.Lock()
	if c, ok := f.calls[k]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			if !c.ok {
				return v, true, ErrFlightFailed
			}
			return c.val, true, nil
		case <-ctx.Done():
			return v, false, ctx.Err()
		}
	}
	if f.calls == nil {
		f.calls = map[Key]*call[V]{}
	}
	c := &call[V]{done: make(chan struct{})}
	f.calls[k] = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.calls, k)
		f.mu.Unlock()
		close(c.done) // after c.val and c.ok are written; a panic goes on up
	}()
	c.val = fn()
	c.ok = true
	return c.val, false, nil
}

// Dedup shares one result among the checks of one request: concurrent ones
// wait for the first, later ones within the window reuse what it decided.
type Dedup[V Expiring] struct {
	lru    *LRU[V]
	flight Flight[V]
}

// NewDedup returns a Dedup that remembers up to capacity results, each
// until its deadline.
func NewDedup[V Expiring](capacity int) *Dedup[V] {
	return &Dedup[V]{lru: NewLRU[V](capacity, 0)}
}

// Do returns the result remembered under k, or computes it with fn, once for
// all concurrent callers. The value's deadline says until when it may be
// reused (callers fold their window into it). hit reports that the value
// was remembered, or computed for another caller: false exactly when this
// caller's fn ran.
func (d *Dedup[V]) Do(ctx context.Context, k Key, now time.Time, fn func() V) (v V, hit bool, err error) {
	if v, ok := d.lru.Get(k, now); ok {
		return v, true, nil
	}
	remembered := false
	v, shared, err := d.flight.Do(ctx, k, func() V {
		if v, ok := d.lru.Peek(k, now); ok { // finished between our Get and Do
			remembered = true
			return v
		}
		v := fn()
		d.lru.Put(k, v, now)
		return v
	})
	return v, shared || remembered, err
}

// Stats returns the counters of the remembered results.
func (d *Dedup[V]) Stats() Stats { return d.lru.Stats() }

// Close forgets every result.
func (d *Dedup[V]) Close() { d.lru.Close() }
