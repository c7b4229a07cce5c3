package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of Config: what DefaultConfig returns.
const (
	DefaultClockSkew         = 60 * time.Second
	DefaultCacheTTL          = 5 * time.Minute
	DefaultCacheSize         = 100_000
	DefaultNegativeCacheSize = 10_000
	DefaultNegativeTTL       = 30 * time.Second
	DefaultDedupWindow       = 10 * time.Second
	DefaultDedupSize         = 10_000
	DefaultMaxTokenSize      = 8 << 10
	DefaultNetworkWait       = 500 * time.Millisecond
)

// Config configures an Engine. Start from DefaultConfig: a field's zero
// value is not its default but means what its comment says (most often
// "off"), and New refuses a negative one, or a MaxTokenSize that is not
// positive, with an error that names the field.
type Config struct {
	Providers []ProviderConfig
	Rules     []RuleConfig
	// PathCase says how the upstream compares paths, and so how Rules
	// match them; unset: a path whose rule changes with its case is
	// refused. See PathCase.
	PathCase PathCase
	// CORSPreflight lets a CORS preflight (OPTIONS with Origin and
	// Access-Control-Request-Method) pass without a token, before any rule,
	// as public (Envoy jwt_authn's bypass_cors_preflight); false: a
	// preflight is checked like any request.
	CORSPreflight bool

	// ClockSkew is the leeway for exp, nbf and iat; 0: none, a token is
	// refused from the second of its exp.
	ClockSkew time.Duration
	// CacheTTL is the longest life of a cached grant (never beyond the
	// token's exp), and CacheSize how many are kept. Either 0: no token
	// cache: every check verifies its token (concurrent checks of one token
	// share one verification), and the request dedup does not reuse an
	// allow once it is made.
	CacheTTL  time.Duration
	CacheSize int
	// NegativeCacheSize is how many rejected token hashes are remembered,
	// apart from the grants, and NegativeTTL for how long. Either 0: no
	// negative cache.
	NegativeCacheSize int
	NegativeTTL       time.Duration
	// DedupWindow is how long the checks of one request (same x-request-id,
	// token and route) reuse its decision, and DedupSize how many decisions
	// are kept. Either 0: no request dedup: each check decides alone.
	DedupWindow time.Duration
	DedupSize   int
	// MaxTokenSize is the size in bytes past which a token is refused
	// before any parsing or hashing. It must be positive.
	MaxTokenSize int
	// NetworkWait bounds every wait on the network inside a check (an
	// unknown kid's key set refresh, whether it starts a fetch or joins one
	// under way), on top of the request's own deadline. 0: a check never
	// waits: an unknown kid is refused at once, and the fetch it asked for
	// (if the cooldown allowed one) serves the checks after it.
	NetworkWait time.Duration

	Now func() time.Time // nil: time.Now
	// Observe, if set, is called after every check (metrics, decision logs),
	// before the check returns. The Request's strings and Headers may point
	// into the request's buffer, which is reused once the check returns:
	// copy what is kept beyond the call.
	Observe func(Observation)
	Logger  *slog.Logger // nil: no logs
	// Tracer, if set, is told when a check verifies a token and when it
	// waits for its provider's key set (traces); nil: nothing is called and
	// nothing is allocated for it.
	Tracer Tracer
	// SharedCache, if set, keeps introspection verdicts where every replica
	// reads them: a check whose opaque token neither the token cache nor
	// the negative cache holds asks it before the introspection endpoint,
	// and every verdict the endpoint gives is put there. nil: none.
	SharedCache SharedCache
}

// Tracer hears of the steps of a check worth a trace span of their own.
// Each Start returns the context the step runs under and a function called
// once the step ends. Its methods are called concurrently, on the check's
// goroutine; a step's ctx is the check's (or, for a verification shared by
// concurrent checks of one token, the first check's).
type Tracer interface {
	// StartVerify is called before a token's signature and claims are
	// checked for provider; end gets the reason of the outcome (ReasonOK
	// when the token is valid).
	StartVerify(ctx context.Context, provider string) (context.Context, func(Reason))
	// StartKeyWait is called before a check waits for provider's key set
	// to be refreshed (an unknown kid, a key replaced under its kid, a
	// kid-less token no key fits); the fetch itself runs apart from the
	// check. end is called when the wait is over.
	StartKeyWait(ctx context.Context, provider string) (context.Context, func())
	// StartIntrospect is called before provider's introspection endpoint
	// is asked about a token no cache (the shared one included) knew; end
	// gets ReasonOK for an answer (active or not), ReasonUnavailable or
	// ReasonIntrospectionFailed otherwise.
	StartIntrospect(ctx context.Context, provider string) (context.Context, func(Reason))
}

// DefaultConfig returns a Config with every limit at its default (the
// Default… constants) and nothing else set.
func DefaultConfig() Config {
	return Config{
		ClockSkew:         DefaultClockSkew,
		CacheTTL:          DefaultCacheTTL,
		CacheSize:         DefaultCacheSize,
		NegativeCacheSize: DefaultNegativeCacheSize,
		NegativeTTL:       DefaultNegativeTTL,
		DedupWindow:       DefaultDedupWindow,
		DedupSize:         DefaultDedupSize,
		MaxTokenSize:      DefaultMaxTokenSize,
		NetworkWait:       DefaultNetworkWait,
	}
}

// ErrConfig is wrapped by the errors New and Validate return for a limit of
// Config that is out of range.
var ErrConfig = errors.New("authz: invalid config")

// check reports every limit out of range, each by its field's name.
func (c *Config) check() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"ClockSkew", int64(c.ClockSkew)}, {"CacheTTL", int64(c.CacheTTL)}, {"CacheSize", int64(c.CacheSize)},
		{"NegativeCacheSize", int64(c.NegativeCacheSize)}, {"NegativeTTL", int64(c.NegativeTTL)},
		{"DedupWindow", int64(c.DedupWindow)}, {"DedupSize", int64(c.DedupSize)}, {"NetworkWait", int64(c.NetworkWait)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%w: %s must not be negative (0 turns it off)", ErrConfig, f.name))
		}
	}
	if c.MaxTokenSize <= 0 {
		errs = append(errs, fmt.Errorf("%w: MaxTokenSize must be positive (e.g. %d), got %d", ErrConfig, DefaultMaxTokenSize, c.MaxTokenSize))
	}
	return errors.Join(errs...)
}

// prepare checks c and sets what nil means (Now, Logger). A cache that one
// of its two limits turns off gets both at 0, so that the other does not
// keep it half on (a cache of size 0 whose entries would still live for
// the TTL in the dedup).
func (c *Config) prepare() error {
	if err := c.check(); err != nil {
		return err
	}
	off := func(d *time.Duration, n *int) {
		if *d == 0 || *n == 0 {
			*d, *n = 0, 0
		}
	}
	off(&c.CacheTTL, &c.CacheSize)
	off(&c.NegativeTTL, &c.NegativeCacheSize)
	off(&c.DedupWindow, &c.DedupSize)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Get implements Headers.
func (h MapHeaders) Get(name string) string { return h[name] }

// ErrNoProviders is returned by New when no provider is configured.
var ErrNoProviders = errors.New("authz: no provider configured")
