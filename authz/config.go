package authz

import (
	"errors"
	"log/slog"
	"time"
)

// Defaults of Config.
const (
	DefaultClockSkew         = 60 * time.Second
	DefaultCacheTTL          = 5 * time.Minute
	DefaultCacheSize         = 100_000
	DefaultNegativeCacheSize = 10_000
	DefaultNegativeTTL       = 30 * time.Second
	DefaultDedupWindow       = 10 * time.Second
	DefaultDedupSize         = 10_000
	DefaultMaxTokenSize      = 8 << 10
	// DefaultRefreshWait bounds the wait for an unknown-kid refresh when the
	// request carries no deadline (HTTP forward-auth).
	DefaultRefreshWait = 500 * time.Millisecond
)

// Config configures an Engine. Zero values take the defaults above.
type Config struct {
	Providers []ProviderConfig
	Rules     []RuleConfig

	ClockSkew         time.Duration // leeway for exp, nbf, iat
	CacheTTL          time.Duration // longest life of a cached grant
	CacheSize         int
	NegativeCacheSize int           // rejected token hashes, kept apart
	NegativeTTL       time.Duration // how long a rejection is remembered
	DedupWindow       time.Duration // how long a request's decision is reused
	DedupSize         int
	MaxTokenSize      int // larger tokens are refused before any parsing or hashing

	Now func() time.Time
	// Observe, if set, is called after every check (metrics, decision logs),
	// before the check returns. The Request's strings and Headers may point
	// into the request's buffer, which is reused once the check returns:
	// copy what is kept beyond the call.
	Observe func(Observation)
	Logger  *slog.Logger
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ClockSkew, DefaultClockSkew)
	def(&c.CacheTTL, DefaultCacheTTL)
	def(&c.NegativeTTL, DefaultNegativeTTL)
	def(&c.DedupWindow, DefaultDedupWindow)
	defInt(&c.CacheSize, DefaultCacheSize)
	defInt(&c.NegativeCacheSize, DefaultNegativeCacheSize)
	defInt(&c.DedupSize, DefaultDedupSize)
	defInt(&c.MaxTokenSize, DefaultMaxTokenSize)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Request is what the core needs of one HTTP request.
type Request struct {
	Method string
	Host   string
	Path   string // as sent, query included
	// RequestID is the x-request-id header: checks with the same one, the
	// same token and the same route share a decision.
	RequestID string
	Headers   Headers
	// Oversize says the adapter could not read every header (more than it
	// takes): the check is denied, since a token might be among the rest.
	Oversize bool
	// Ambiguous says the adapter could not tell the original request for
	// sure (forward-auth headers that disagree): the check is denied.
	Ambiguous bool
}

func (r *Request) header(name string) string {
	if r.Headers == nil {
		return ""
	}
	return r.Headers.Get(name)
}

// Headers gives a request's headers by lower-case name; several values of
// one header come joined with ",", as Envoy joins them.
type Headers interface {
	Get(name string) string
}

// MapHeaders are headers keyed by lower-case name, as in Envoy's CheckRequest.
type MapHeaders map[string]string

// Get implements Headers.
func (h MapHeaders) Get(name string) string { return h[name] }

// ErrNoProviders is returned by New when no provider is configured.
var ErrNoProviders = errors.New("authz: no provider configured")
