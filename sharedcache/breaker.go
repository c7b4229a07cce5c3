package sharedcache

import (
	"sync/atomic"
	"time"
)

// breaker skips Redis after failures consecutive failures, for cooldown;
// then one operation at a time probes it, and the first that succeeds
// closes the breaker. Lock-free: it is on every operation's path.
type breaker struct {
	failures int32
	cooldown time.Duration
	now      func() time.Time
	// changed, if set, hears each opening (true) and closing (false).
	changed func(open bool)

	fails     atomic.Int32
	openUntil atomic.Int64 // Unix nanoseconds; 0: closed
	probing   atomic.Bool
}

// allow reports whether an operation may try Redis, and whether it is the
// probe of an open breaker (which must report to done).
func (b *breaker) allow() (ok, probe bool) {
	until := b.openUntil.Load()
	if until == 0 {
		return true, false
	}
	if b.now().UnixNano() < until || !b.probing.CompareAndSwap(false, true) {
		return false, false
	}
	return true, true
}

// done reports how an operation allowed by allow ended: failed is true
// when Redis did not answer in time or the connection failed.
func (b *breaker) done(probe, failed bool) {
	switch {
	case failed && probe:
		b.openUntil.Store(b.now().Add(b.cooldown).UnixNano())
		b.probing.Store(false)
	case failed:
		if b.fails.Add(1) >= b.failures && b.openUntil.CompareAndSwap(0, b.now().Add(b.cooldown).UnixNano()) && b.changed != nil {
			b.changed(true)
		}
	case probe:
		b.fails.Store(0)
		b.openUntil.Store(0)
		b.probing.Store(false)
		if b.changed != nil {
			b.changed(false)
		}
	default:
		b.fails.Store(0)
	}
}

// open reports whether the breaker is open (probing or not).
func (b *breaker) open() bool { return b.openUntil.Load() != 0 }
