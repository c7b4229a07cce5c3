package jwks

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of Config.
const (
	DefaultRefresh    = 2 * time.Hour
	DefaultMinRefresh = 30 * time.Second
	DefaultTimeout    = 5 * time.Second
	// DefaultCacheMaxAge bounds the age of a saved set loaded at start.
	DefaultCacheMaxAge = 7 * 24 * time.Hour
	// FilePoll is how often a key file is looked at for changes.
	FilePoll = 5 * time.Second

	firstRetry = time.Second
	maxRetry   = 10 * time.Second
)

// Config says where one provider's keys come from and how they are kept fresh.
type Config struct {
	Name   string // provider name, for logs, status and the cache file
	Issuer string // for discovery, and checked against the discovery document
	// URL is the JWKS address. Empty: discovered from
	// {Issuer}/.well-known/openid-configuration, or from Discovery.
	URL string
	// Discovery, if set, is the discovery document's URL, for an Issuer
	// that is not one (a multi-tenant IdP's template: Entra ID's
	// https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration
	// names the issuer https://login.microsoftonline.com/{tenantid}/v2.0).
	// The document must name Issuer all the same.
	Discovery string
	// File is a local JWKS file used instead of URL, re-read when it changes.
	File string
	// Header is sent with every JWKS and discovery request (e.g. Clerk's
	// Backend API needs Authorization). It is never logged.
	Header http.Header
	Client *http.Client // nil: a client with Timeout and the system roots

	// Refresh is the scheduled refresh period (0: DefaultRefresh).
	Refresh time.Duration
	// MinRefresh is the floor under the IdP's max-age, and the cooldown
	// between the refreshes unknown kids ask for (0: DefaultMinRefresh).
	MinRefresh time.Duration
	// Timeout bounds one fetch (0: DefaultTimeout).
	Timeout time.Duration

	// CacheDir, if set, keeps each good set on disk so that a restart during
	// an IdP outage starts with the last keys. The file is named after Name
	// and a hash of Name, Issuer, URL and File: a set is never loaded for a
	// provider whose keys now come from elsewhere. Only files and a
	// directory that no other user can have written are trusted (see
	// CheckCacheDir); CacheDir should pass CheckCacheDir.
	CacheDir string
	// CacheMaxAge is the age past which a saved set is not loaded: keys the
	// IdP may have withdrawn long ago (0: DefaultCacheMaxAge).
	CacheMaxAge time.Duration
	// None of Refresh, MinRefresh, Timeout and CacheMaxAge can be off: 0 is
	// the default, and a negative one is an error (see ErrConfig).

	Now     func() time.Time
	Logger  *slog.Logger
	Observe func(FetchResult) // called after every fetch attempt; may be nil
	// Tracer, if set, is told of every fetch and of the checks that
	// trigger or join it (trace spans); nil: nothing is called.
	Tracer FetchTracer
}

// FetchResult describes one fetch attempt, for metrics.
type FetchResult struct {
	Provider string
	Err      error
	Duration time.Duration
	Keys     int // keys in the set in use after the attempt
	// Status is the HTTP status of the last answer the attempt got
	// (discovery's or the key set's); 0 if none (a file, no answer).
	Status int
	// Triggered says that a check's Refresh (an unknown kid) started the
	// attempt, not the schedule.
	Triggered bool
	// CacheErr is why the set the attempt brought could not be saved to
	// CacheDir; nil if it was saved or nothing was to be saved.
	CacheErr error
}

// Status is what /cache/health reports of a provider's keys.
type Status struct {
	Name        string
	URL         string // the JWKS address in use, without query or user info (or the file)
	Ready       bool
	Keys        int
	KeysFetched time.Time // when the set in use was last fetched or read, changed or not
	LastAttempt time.Time
	LastError   string // of the last attempt; empty if it succeeded
	Fetches     uint64
}

// Source holds one provider's current key set and refreshes it. Its lookups
// read an immutable snapshot through an atomic pointer and never wait.
type Source struct {
	cfg     Config
	cfgErr  error // of New: Run returns it at once
	cur     atomic.Pointer[Set]
	readyC  chan struct{}
	limiter *rate.Limiter // the refreshes checks ask for (Refresh)

	mu         sync.Mutex
	ctx        context.Context // of Run: fetches run on it, not on a caller's
	inflight   *inflight
	discovered string // jwks_uri from discovery; cleared on failure
	lastTry    time.Time
	lastErr    error
	fetches    uint64
	good       time.Time // of the last successful attempt
	maxAge     time.Duration
	body       []byte         // of a file source's set in use, to notice an unchanged file
	running    sync.WaitGroup // fetches under way, which Run waits for
}

// inflight is one fetch that callers share.
type inflight struct {
	done      chan struct{}
	err       error
	triggered bool       // started by a check's Refresh
	trace     FetchTrace // of Config.Tracer; nil without
}

// ErrConfig is wrapped by the error of a Config with a negative duration:
// Run returns it at once, the source never has keys (its provider's checks
// are refused as unavailable), and Status reports it.
var ErrConfig = errors.New("jwks: invalid config")

// check reports the durations of c that are negative, each by its name.
func (c *Config) check() error {
	var errs []error
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"Refresh", c.Refresh}, {"MinRefresh", c.MinRefresh}, {"Timeout", c.Timeout}, {"CacheMaxAge", c.CacheMaxAge}} {
		if f.d < 0 {
			errs = append(errs, fmt.Errorf("%w: %s is %v, must not be negative (0: the default)", ErrConfig, f.name, f.d))
		}
	}
	return errors.Join(errs...)
}

// New returns a Source for cfg, the zero durations at their defaults. It
// holds no keys until Run has fetched or loaded some. A negative duration
// is an error that Run returns (see ErrConfig).
func New(cfg Config) *Source {
	err := cfg.check()
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 { // a negative one is err: the source never fetches
			*d = v
		}
	}
	def(&cfg.Refresh, DefaultRefresh)
	def(&cfg.MinRefresh, DefaultMinRefresh)
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.CacheMaxAge, DefaultCacheMaxAge)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = cfg.Logger.With("provider", cfg.Name)
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	return &Source{
		cfg:     cfg,
		cfgErr:  err,
		lastErr: err,
		readyC:  make(chan struct{}),
		limiter: rate.NewLimiter(rate.Every(cfg.MinRefresh), 1),
	}
}

// Name returns the provider's name.
func (s *Source) Name() string { return s.cfg.Name }

// Key returns the current key with the given kid and the alg its JWK names
// (empty if none). It takes no lock and does not allocate.
func (s *Source) Key(kid string) (crypto.PublicKey, string, bool) {
	k, ok := s.cur.Load().Lookup(kid)
	if !ok {
		return nil, "", false
	}
	return k.Public, k.Alg, true
}

// Keys returns the current snapshot, nil before the first one.
func (s *Source) Keys() *Set { return s.cur.Load() }

// Ready reports whether the source has a key set.
func (s *Source) Ready() bool { return s.cur.Load() != nil }

// ReadyC is closed when the source first has a key set.
func (s *Source) ReadyC() <-chan struct{} { return s.readyC }

// Run loads the cached set if there is one (and no set was seeded), then
// fetches until it succeeds (with jittered exponential backoff) and
// refreshes on schedule until ctx ends. A failed refresh keeps the set in
// use. Run returns once the fetch under way, if any, is over, so that a
// stopped source writes no cache file after. For a Config with a negative
// duration it returns an error wrapping ErrConfig at once.
func (s *Source) Run(ctx context.Context) error {
	if s.cfgErr != nil {
		s.cfg.Logger.Error("jwks: source not started", "error", s.cfgErr)
		return s.cfgErr
	}
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	defer s.stopped()
	if s.cur.Load() == nil {
		s.loadCached()
	}
	failures := 0
	for {
		var wait time.Duration
		if err := s.wait(ctx, s.start()); err != nil {
			failures++
			wait = backoff(failures)
		} else {
			failures = 0
			wait = s.nextRefresh()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// stopped takes no more fetches and waits for those under way.
func (s *Source) stopped() {
	s.mu.Lock()
	s.ctx = nil
	s.mu.Unlock()
	s.running.Wait()
}

// Seed makes the set in use by old, the source this one replaces, this
// one's until its own first fetch succeeds: a reload that changes how a
// provider's keys are fetched keeps serving them through an IdP outage.
// It does nothing unless old has keys and the same Name and Issuer (keys
// are never carried over to another issuer), nor if this source has keys.
// Call it before Run.
func (s *Source) Seed(old *Source) {
	if old == nil || old.cfg.Name != s.cfg.Name || old.cfg.Issuer != s.cfg.Issuer {
		return
	}
	set := old.cur.Load()
	if set == nil || !s.cur.CompareAndSwap(nil, set) {
		return
	}
	old.mu.Lock()
	good := old.good
	old.mu.Unlock()
	s.mu.Lock()
	s.good = good
	s.mu.Unlock()
	close(s.readyC)
	s.cfg.Logger.Info("jwks: keys of the replaced source kept until the first fetch", "keys", set.Len())
}

// Refresh asks for a fetch because a token names a kid the set lacks. It
// joins a fetch under way; otherwise it starts one only if the cooldown
// allows, and says no at once if not. It waits no longer than ctx and reports
// whether a fetch succeeded (the caller then looks the kid up again).
func (s *Source) Refresh(ctx context.Context) bool {
	s.mu.Lock()
	fl := s.inflight
	switch {
	case fl == nil:
		if s.ctx == nil || !s.limiter.AllowN(s.cfg.Now(), 1) {
			s.mu.Unlock()
			return false
		}
		fl = s.startLocked(ctx)
	case fl.trace != nil:
		// Under s.mu: the fetch ends its trace only once it has taken
		// inflight back, so no joiner comes after End.
		fl.trace.Join(ctx)
	}
	s.mu.Unlock()
	return s.wait(ctx, fl) == nil
}

// Status returns what the source knows of its keys and its last fetch.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Name: s.cfg.Name, URL: s.urlLocked(), LastAttempt: s.lastTry, Fetches: s.fetches}
	if s.cfg.File == "" {
		st.URL = redact(st.URL)
	}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	if set := s.cur.Load(); set != nil {
		// An unchanged file keeps its set, whose own time would grow old.
		st.Ready, st.Keys, st.KeysFetched = true, set.Len(), set.Fetched
		if s.good.After(set.Fetched) {
			st.KeysFetched = s.good
		}
	}
	return st
}

func (s *Source) start() *inflight {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight != nil {
		return s.inflight
	}
	return s.startLocked(nil)
}

// startLocked launches a shared fetch on the Run context; trigger is the
// context of the check whose Refresh asks for it, nil for the schedule.
// s.mu is held.
func (s *Source) startLocked(trigger context.Context) *inflight {
	fl := &inflight{done: make(chan struct{}), triggered: trigger != nil}
	s.inflight = fl
	ctx := s.ctx
	if s.cfg.Tracer != nil {
		ctx, fl.trace = s.cfg.Tracer.StartFetch(ctx, trigger, s.cfg.Name)
	}
	s.running.Go(func() {
		fl.err = s.fetch(ctx, fl)
		close(fl.done)
	})
	return fl
}

func (s *Source) wait(ctx context.Context, fl *inflight) error {
	select {
	case <-fl.done:
		return fl.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Source) lastBody() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.body
}

// setLastBody keeps b for a file source, whose unchanged file is then not
// parsed again; a URL's body is not kept.
func (s *Source) setLastBody(b []byte) {
	if s.cfg.File == "" {
		return
	}
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

// publish makes set the one in use.
func (s *Source) publish(set *Set) {
	changed := set.keep(s.cur.Load())
	old := s.cur.Swap(set)
	if old == nil {
		close(s.readyC)
	}
	for _, why := range set.Skipped {
		s.cfg.Logger.Info("jwks: key skipped", "reason", why)
	}
	if added, removed := diff(old, set); len(added)+len(removed)+len(changed) > 0 {
		s.cfg.Logger.Info("jwks: key set changed", "keys", set.Len(), "added", added, "removed", removed, "changed", changed)
	}
}

// nextRefresh is the scheduled period less up to a tenth of jitter; a
// shorter max-age from the IdP replaces it, but never below MinRefresh.
func (s *Source) nextRefresh() time.Duration {
	s.mu.Lock()
	period, maxAge := s.cfg.Refresh, s.maxAge
	s.mu.Unlock()
	if s.cfg.File != "" {
		period = min(period, FilePoll)
	}
	var floor time.Duration
	if maxAge > 0 && maxAge < period {
		period, floor = maxAge, s.cfg.MinRefresh
	}
	period -= rand.N(period/10 + 1)
	return max(period, floor)
}

// backoff returns the wait after the n-th failure in a row: exponential from
// firstRetry, capped at maxRetry, with equal jitter (half fixed, half random).
func backoff(n int) time.Duration {
	d := maxRetry
	if n < 5 {
		d = min(firstRetry<<(n-1), maxRetry)
	}
	return d/2 + rand.N(d/2+1)
}

func diff(old, cur *Set) (added, removed []string) {
	for _, id := range cur.KIDs() {
		if !old.has(id) {
			added = append(added, id)
		}
	}
	for _, id := range old.KIDs() {
		if !cur.has(id) {
			removed = append(removed, id)
		}
	}
	return added, removed
}
