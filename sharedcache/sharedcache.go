// Package sharedcache keeps introspection verdicts in Redis (or Valkey) for
// the replicas of a fleet to share: authz.SharedCache (--shared-cache).
//
// A Redis key is an HMAC of (provider, token) under a cluster secret, and
// every entry carries an HMAC of its contents bound to its key, so that
// whoever can read Redis learns no token and whoever can write it cannot
// make a verdict the cache accepts: an entry that does not verify is a
// miss. Redis that is down, slow or answers garbage is a miss within
// Config.Timeout, and after BreakerFailures consecutive failures Redis is
// skipped for BreakerCooldown (then one operation probes it). Writes are
// asynchronous and bounded; a check never waits for one.
package sharedcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtauthz/jwtauthz/authz"
)

// Defaults of Config: what DefaultConfig returns.
const (
	DefaultTimeout         = 20 * time.Millisecond
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = time.Second
	DefaultMaxWrites       = 256
)

// Config configures a Cache. Start from DefaultConfig: New refuses a
// number or duration that is not positive.
type Config struct {
	// URL is the Redis to use: redis://[user:password@]host[:port][/db],
	// rediss:// for TLS (the system roots), or unix:///path (CheckURL).
	URL string
	// Keys are the cluster secrets (LoadKeys): the first signs what is
	// written, each verifies what is read. Each is MinKeySize bytes or more.
	Keys [][]byte
	// Timeout bounds each Redis operation, connecting included, on top of
	// the caller's deadline.
	Timeout time.Duration
	// BreakerFailures consecutive failures (errors and timeouts, not
	// misses) open the breaker: Redis is skipped for BreakerCooldown, then
	// one operation at a time probes it until one succeeds.
	BreakerFailures int
	BreakerCooldown time.Duration
	// MaxWrites bounds the writes in flight; a Put beyond it is dropped.
	MaxWrites int

	Now func() time.Time // nil: time.Now
	// Observe, if set, hears the result of every Get and Put (metrics). It
	// must be quick: it is called on the check's path.
	Observe func(Op, Result)
	Logger  *slog.Logger // nil: no logs
}

// DefaultConfig is a Config with the defaults and no URL or keys.
func DefaultConfig() Config {
	return Config{Timeout: DefaultTimeout, BreakerFailures: DefaultBreakerFailures,
		BreakerCooldown: DefaultBreakerCooldown, MaxWrites: DefaultMaxWrites}
}

// Op is what the cache was asked: get or put.
type Op string

// The operations.
const (
	OpGet Op = "get"
	OpPut Op = "put"
)

// Result is how an operation ended.
type Result string

// The results. Get: hit, miss, bad_mac, error, timeout, breaker_open.
// Put: stored, error, timeout, breaker_open, dropped.
const (
	Hit         Result = "hit"          // an intact, unexpired entry
	Miss        Result = "miss"         // none, or one that has expired
	BadMAC      Result = "bad_mac"      // something that is not an intact entry of this cluster's (forged, moved, garbage)
	Error       Result = "error"        // Redis failed (connection refused, closed, an error reply)
	Timeout     Result = "timeout"      // Redis did not answer within Timeout (or the caller's deadline)
	BreakerOpen Result = "breaker_open" // skipped: the breaker is open
	Stored      Result = "stored"       // written
	Dropped     Result = "dropped"      // not written: MaxWrites writes in flight, or the cache closed
)

// Results are the results each operation can have, for metrics.
var Results = map[Op][]Result{
	OpGet: {Hit, Miss, BadMAC, Error, Timeout, BreakerOpen},
	OpPut: {Stored, Error, Timeout, BreakerOpen, Dropped},
}

// Cache is a shared verdict cache on Redis: an authz.SharedCache. Its
// methods are safe for concurrent use.
type Cache struct {
	rdb     *redis.Client
	secrets atomic.Pointer[[]secret] // SetKeys swaps them
	timeout time.Duration
	now     func() time.Time
	observe func(Op, Result)
	log     *slog.Logger
	br      breaker

	writes   chan struct{} // a token per write in flight
	closeMu  sync.RWMutex
	closed   bool
	inFlight sync.WaitGroup
}

var _ authz.SharedCache = (*Cache)(nil)

// New returns the cache cfg describes. It does not connect: the first
// operation does, and Redis need not be up.
func New(cfg Config) (*Cache, error) {
	switch {
	case cfg.Timeout <= 0, cfg.BreakerCooldown <= 0, cfg.BreakerFailures <= 0, cfg.MaxWrites <= 0:
		return nil, errors.New("sharedcache: Timeout, BreakerFailures, BreakerCooldown and MaxWrites must be positive")
	}
	opts, err := redisOptions(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("sharedcache: %w", err)
	}
	c := &Cache{timeout: cfg.Timeout, now: cfg.Now, observe: cfg.Observe, log: cfg.Logger, writes: make(chan struct{}, cfg.MaxWrites)}
	if _, err := c.SetKeys(cfg.Keys); err != nil {
		return nil, err
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.observe == nil {
		c.observe = func(Op, Result) {}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.br = breaker{failures: int32(cfg.BreakerFailures), cooldown: cfg.BreakerCooldown, now: c.now, changed: c.breakerChanged}
	limit(opts, cfg.Timeout)
	quiet.Do(func() { redis.SetLogger(discard{}) })
	c.rdb = redis.NewClient(opts)
	return c, nil
}

// SetKeys makes keys the cluster secrets (LoadKeys): the first signs what
// is written from then on, and every one verifies what is read. It
// reports whether they differ from those in use. With an error, those in
// use stay.
func (c *Cache) SetKeys(keys [][]byte) (changed bool, err error) {
	if len(keys) == 0 {
		return false, fmt.Errorf("sharedcache: %w", ErrNoKey)
	}
	secrets := make([]secret, 0, len(keys))
	for _, k := range keys {
		if len(k) < MinKeySize {
			return false, fmt.Errorf("sharedcache: %w", ErrKeyTooShort)
		}
		secrets = append(secrets, newSecret(k))
	}
	if old := c.secrets.Load(); old != nil && slices.EqualFunc(*old, secrets, secret.equal) {
		return false, nil
	}
	c.secrets.Store(&secrets)
	return true, nil
}

// keyring returns the cluster secrets in use: one operation reads them
// once.
func (c *Cache) keyring() []secret { return *c.secrets.Load() }

func (c *Cache) breakerChanged(open bool) {
	if open {
		c.log.Warn("shared cache: Redis failing, skipped for a while (checks go to the IdP)", "cooldown", c.br.cooldown.String())
	} else {
		c.log.Info("shared cache: Redis answers again")
	}
}

// Get returns the verdict stored for token under provider, if an intact,
// unexpired entry is there; anything else is a miss, within Timeout.
func (c *Cache) Get(ctx context.Context, provider, token string) (authz.SharedVerdict, bool) {
	v, r := c.get(ctx, provider, token)
	c.observe(OpGet, r)
	return v, r == Hit
}

func (c *Cache) get(ctx context.Context, provider, token string) (authz.SharedVerdict, Result) {
	ok, probe := c.br.allow()
	if !ok {
		return authz.SharedVerdict{}, BreakerOpen
	}
	secrets := c.keyring()
	keys := make([]string, len(secrets))
	for i, s := range secrets {
		keys[i] = s.key(provider, token)
	}
	own := time.Now().Add(c.timeout)
	op, cancel := context.WithDeadline(ctx, own)
	defer cancel()
	vals, err := c.read(op, keys)
	if r := c.failed(ctx, own, probe, err); r != "" {
		return authz.SharedVerdict{}, r
	}
	return c.pick(secrets, keys, vals)
}

// read returns what Redis holds under keys, at most maxEntry+1 bytes of
// each (GETRANGE: a huge value planted under a key is not read whole), ""
// for none; one round trip.
func (c *Cache) read(ctx context.Context, keys []string) ([]string, error) {
	if len(keys) == 1 {
		v, err := c.rdb.GetRange(ctx, keys[0], 0, maxEntry).Result()
		return []string{v}, err
	}
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.GetRange(ctx, k, 0, maxEntry)
		}
		return nil
	})
	vals := make([]string, len(keys))
	for i, cmd := range cmds {
		vals[i] = cmd.Val()
	}
	return vals, err
}

// pick returns the verdict of the first intact entry among vals, read
// under keys (one per secret of secrets).
func (c *Cache) pick(secrets []secret, keys []string, vals []string) (authz.SharedVerdict, Result) {
	r := Miss
	for i, s := range vals {
		if s == "" {
			continue // no entry
		}
		payload, ok := secrets[i].open(keys[i], []byte(s))
		if !ok {
			r = BadMAC
			continue
		}
		v, err := decode(payload)
		switch {
		case err != nil:
			c.log.Warn("shared cache: an entry with a good MAC does not decode (a newer jwtauthz's?)", "err", err)
			r = Error
		case v.Until <= c.now().UnixNano():
			// Redis keeps it a little longer than its PX when clocks differ.
		default:
			return v, Hit
		}
	}
	return authz.SharedVerdict{}, r
}

// failed tells the breaker how an operation that it allowed ended, and
// returns its result if it failed. The operation ran under caller's
// context with its own deadline, own, too.
func (c *Cache) failed(caller context.Context, own time.Time, probe bool, err error) Result {
	if err == nil || errors.Is(err, redis.Nil) {
		c.br.done(probe, false)
		return ""
	}
	var ne net.Error
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
	// The caller's deadline or cancel says nothing of Redis. Whose
	// deadline passed is decided by the deadlines, not by which context
	// is done by now: the connection's deadline (the sooner of the two)
	// may fire before either context's timer does.
	callers := caller.Err() != nil
	if timeout {
		d, bound := caller.Deadline()
		callers = bound && d.Before(own)
	}
	if callers {
		if probe {
			c.br.probing.Store(false)
		}
		return Timeout
	}
	var redisErr redis.Error
	// An error reply (ACLs, OOM, a key of another type) is an answer:
	// it does not open the breaker, a Redis that does not answer does.
	c.br.done(probe, !errors.As(err, &redisErr))
	if timeout {
		return Timeout
	}
	return Error
}

// Put stores v for token under provider until v.Until (Redis's PX is
// until − now, never longer), under the first key, in the background: it
// returns at once. A verdict already expired, or a write beyond
// MaxWrites in flight, is not stored.
func (c *Cache) Put(ctx context.Context, provider, token string, v authz.SharedVerdict) {
	ttl := time.Duration(v.Until - c.now().UnixNano()).Truncate(time.Millisecond)
	if ttl <= 0 {
		return
	}
	payload, err := encode(&v)
	if err != nil || len(payload) > maxEntry-entryHeader {
		c.log.Warn("shared cache: verdict not stored: too large or not JSON", "provider", provider, "bytes", len(payload), "err", err)
		c.observe(OpPut, Error)
		return
	}
	// Everything that depends on the token is done before Put returns:
	// its bytes may be reused once the check ends.
	signer := c.keyring()[0]
	key := signer.key(provider, token)
	value := signer.seal(key, payload)
	ok, probe := c.br.allow()
	if !ok {
		c.observe(OpPut, BreakerOpen)
		return
	}
	if !c.startWrite() {
		if probe {
			c.br.probing.Store(false) // nothing was tried: the next operation probes
		}
		c.observe(OpPut, Dropped)
		return
	}
	go func() {
		defer c.endWrite()
		caller := context.WithoutCancel(ctx)
		own := time.Now().Add(c.timeout)
		op, cancel := context.WithDeadline(caller, own)
		defer cancel()
		err := c.rdb.Set(op, key, value, ttl).Err()
		if r := c.failed(caller, own, probe, err); r != "" {
			c.observe(OpPut, r)
			return
		}
		c.observe(OpPut, Stored)
	}()
}

func (c *Cache) startWrite() bool {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed {
		return false
	}
	select {
	case c.writes <- struct{}{}:
		c.inFlight.Add(1)
		return true
	default:
		return false
	}
}

func (c *Cache) endWrite() {
	<-c.writes
	c.inFlight.Done()
}

// Close waits for the writes in flight (each bounded by Timeout) and
// closes the connections. Later Puts are dropped and Gets fail (a miss).
func (c *Cache) Close() error {
	c.closeMu.Lock()
	c.closed = true
	c.closeMu.Unlock()
	c.inFlight.Wait()
	return c.rdb.Close()
}

// BreakerOpen reports whether Redis is being skipped after failures.
func (c *Cache) BreakerOpen() bool { return c.br.open() }
