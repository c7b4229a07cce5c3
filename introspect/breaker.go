package introspect

import (
	"sync"
	"time"
)

// Defaults of the circuit breaker, used where Config leaves them 0.
const (
	DefaultBreakerThreshold   = 5
	DefaultBreakerCooldown    = 5 * time.Second
	DefaultBreakerMaxCooldown = 30 * time.Second
)

// breaker counts consecutive unavailable answers. At threshold it opens:
// calls are refused at once until the cool-down ends. Then one call at a
// time goes through as a probe (half-open): an answer closes the breaker,
// another unavailable one opens it again for twice the cool-down, at most
// maxCooldown.
type breaker struct {
	threshold       int
	cooldown, maxCD time.Duration
	mu              sync.Mutex
	fails           int           // consecutive unavailable answers
	openUntil       time.Time     // zero: closed
	nextCD          time.Duration // the cool-down of the next opening
	probing         bool          // a half-open probe is out
}

func newBreaker(threshold int, cooldown, maxCD time.Duration) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, maxCD: maxCD, nextCD: cooldown}
}

// allow says whether a call may go out at now, and whether it is the probe.
func (b *breaker) allow(now time.Time) (ok, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.openUntil.IsZero():
		return true, false
	case now.Before(b.openUntil) || b.probing:
		return false, false
	}
	b.probing = true
	return true, true
}

// result records how a call that allow let through ended: unavailable, or
// an answer; inconclusive (the caller gave up, not the server) changes
// nothing but frees the probe.
func (b *breaker) result(now time.Time, probe, unavailable, inconclusive bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch {
	case inconclusive:
	case !unavailable:
		b.fails, b.openUntil, b.nextCD = 0, time.Time{}, b.cooldown
	case probe:
		b.open(now) // the probe failed: open again, for longer
	case b.openUntil.IsZero():
		if b.fails++; b.fails >= b.threshold {
			b.open(now)
		}
	}
}

func (b *breaker) open(now time.Time) {
	b.openUntil = now.Add(b.nextCD)
	b.nextCD = min(2*b.nextCD, b.maxCD)
}

// isOpen reports whether calls are refused at now (open, or half-open with
// the probe out).
func (b *breaker) isOpen(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.openUntil.IsZero() && (now.Before(b.openUntil) || b.probing)
}
