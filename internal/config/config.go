// Package config is the configuration of jwtauthz serve and dev: the settings
// (flags, JWTAUTHZ_* variables, the YAML file), their defaults, loading,
// validation and the Clerk preset, and what they build (the authz and jwks
// configurations).
package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/sharedcache"
)

// Config is every setting of `serve` and `dev`. Each field comes, in order
// of precedence, from its flag, its JWTAUTHZ_* variable, the YAML file, or
// the default.
type Config struct {
	GRPCAddr  string `yaml:"grpc_addr"`
	HTTPAddr  string `yaml:"http_addr"`
	AdminAddr string `yaml:"admin_addr"`

	Issuer     string   `yaml:"issuer"`
	JWKSURL    string   `yaml:"jwks_url"`
	Audiences  []string `yaml:"audiences"`
	Algorithms []string `yaml:"algorithms"`

	ClockSkew         time.Duration `yaml:"clock_skew"`
	CacheTTL          time.Duration `yaml:"cache_ttl"`
	CacheSize         int           `yaml:"cache_size"`
	NegativeCacheSize int           `yaml:"negative_cache_size"`
	MaxTokenSize      int           `yaml:"max_token_size"`
	NetworkWait       time.Duration `yaml:"network_wait"`

	JWKSRefresh     time.Duration `yaml:"jwks_refresh"`
	JWKSMinRefresh  time.Duration `yaml:"jwks_min_refresh"`
	JWKSTimeout     time.Duration `yaml:"jwks_timeout"`
	JWKSCacheDir    string        `yaml:"jwks_cache_dir"`
	JWKSCacheMaxAge time.Duration `yaml:"jwks_cache_max_age"`
	JWKSCA          string        `yaml:"jwks_ca"`

	LogLevel  string `yaml:"log_level"`
	LogFormat string `yaml:"log_format"`

	// AuditLog is where the audit log goes: stdout, stderr or a file
	// path; "" (the default): no audit log.
	AuditLog          string `yaml:"audit_log"`
	AuditSampleAllows int    `yaml:"audit_sample_allows"` // log 1 allow in N; 0: none
	AuditDenyRate     int    `yaml:"audit_deny_rate"`     // denials logged per second at most; 0: no limit

	// OTLPEndpoint is the OTLP collector spans are exported to
	// (http://host:port: plaintext, https://: TLS); "" (the default): the
	// OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variables, and with neither no
	// tracing. OTLPProtocol is grpc or http/protobuf; "": the
	// OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL variables, else grpc.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	OTLPProtocol string `yaml:"otlp_protocol"`

	// SharedCache is the Redis (or Valkey) URL where replicas share
	// introspection verdicts; "" (the default): none. SharedCacheKeyFile
	// holds the cluster secrets (sharedcache.LoadKeys), required with it;
	// SharedCacheTimeout bounds each Redis operation.
	SharedCache        string        `yaml:"shared_cache"`
	SharedCacheKeyFile string        `yaml:"shared_cache_key_file"`
	SharedCacheTimeout time.Duration `yaml:"shared_cache_timeout"`

	TLSCert     string `yaml:"tls_cert"`
	TLSKey      string `yaml:"tls_key"`
	TLSClientCA string `yaml:"tls_client_ca"`

	Pprof bool `yaml:"pprof"`

	GRPCReflection bool `yaml:"grpc_reflection"` // default false; dev: true

	ClerkPublishableKey    string   `yaml:"clerk_publishable_key"`
	ClerkDomain            string   `yaml:"clerk_domain"`
	ClerkSecretKey         string   `yaml:"clerk_secret_key"` // env CLERK_SECRET_KEY; never a flag, never logged
	ClerkAuthorizedParties []string `yaml:"clerk_authorized_parties"`

	ShutdownDelay   time.Duration `yaml:"shutdown_delay"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	Providers []ProviderConfig   `yaml:"providers"`
	Rules     []authz.RuleConfig `yaml:"rules"`
	PathCase  string             `yaml:"path_case"` // how the upstream compares paths, for rules: authz.PathCase
	// CORSPreflight is allow (a CORS preflight passes without a token,
	// before any rule: authz.Config.CORSPreflight) or off; "": off.
	CORSPreflight string `yaml:"cors_preflight"`

	path string   // the file it was read from, if any
	sum  [32]byte // SHA-256 of what was read, to notice a change

	// Where each value came from, for errors (Error): the flag or
	// variable that gave a setting, by YAML key, and the line of each key
	// of the file, by its path (providers[0].issuer).
	from  map[string]string
	lines map[string]int
}

// File is the path of the config file the settings were read from, "" if
// none was.
func (c *Config) File() string { return c.path }

// Sum is the SHA-256 of the config file's content as it was read, to
// notice a change.
func (c *Config) Sum() [32]byte { return c.sum }

// ProviderConfig is one entry of `providers:` in the file.
type ProviderConfig struct {
	Name              string              `yaml:"name"`
	Issuer            string              `yaml:"issuer"`
	JWKSURL           string              `yaml:"jwks_url"`
	JWKSFile          string              `yaml:"jwks_file"`
	JWKSHeaders       map[string]string   `yaml:"jwks_headers"`
	Audiences         []string            `yaml:"audiences"`
	Algorithms        []string            `yaml:"algorithms"`
	TokenSources      []authz.TokenSource `yaml:"token_sources"`
	ClaimHeaders      map[string]string   `yaml:"claim_headers"`
	PayloadHeader     string              `yaml:"payload_header"`
	ForwardToken      *bool               `yaml:"forward_token"`
	AuthorizedParties []string            `yaml:"authorized_parties"`
	// MetadataClaims are the claims an allow tells Envoy as dynamic
	// metadata besides sub, iss and provider; Metadata false sends none
	// (authz.Metadata).
	MetadataClaims []string `yaml:"metadata_claims"`
	Metadata       *bool    `yaml:"metadata"`
	// Introspection makes the provider decide opaque tokens by RFC 7662
	// (introspection.go); IntrospectJWTs lets it decide JWTs too.
	Introspection  IntrospectionConfig `yaml:"introspection"`
	IntrospectJWTs bool                `yaml:"introspect_jwts"`
	// The token checks (tokenchecks.go): tenants of an issuer template,
	// the JWS typ, the longest lifetime, the accepted subjects.
	Tenants     TenantList         `yaml:"tenants"`
	RequiredTyp string             `yaml:"required_typ"`
	MaxLifetime time.Duration      `yaml:"max_lifetime"`
	Subjects    authz.SubjectMatch `yaml:"subjects"`

	anyIssuer bool // the Clerk preset with the secret key alone
}

// Defaults are the settings of serve when no flag, variable or file gives
// them.
func Defaults() *Config {
	return &Config{
		GRPCAddr:           ":9001",
		HTTPAddr:           ":9002",
		AdminAddr:          ":9003",
		Algorithms:         authz.DefaultAlgorithms,
		ClockSkew:          authz.DefaultClockSkew,
		CacheTTL:           authz.DefaultCacheTTL,
		CacheSize:          authz.DefaultCacheSize,
		NegativeCacheSize:  authz.DefaultNegativeCacheSize,
		MaxTokenSize:       authz.DefaultMaxTokenSize,
		NetworkWait:        authz.DefaultNetworkWait,
		JWKSRefresh:        jwks.DefaultRefresh,
		JWKSMinRefresh:     jwks.DefaultMinRefresh,
		JWKSTimeout:        jwks.DefaultTimeout,
		JWKSCacheMaxAge:    jwks.DefaultCacheMaxAge,
		LogLevel:           "info",
		LogFormat:          "json",
		AuditSampleAllows:  100,
		AuditDenyRate:      100,
		SharedCacheTimeout: sharedcache.DefaultTimeout,
		ShutdownDelay:      5 * time.Second,
		ShutdownTimeout:    15 * time.Second,
	}
}

// setting is one flag with its environment variable and YAML key.
type setting struct {
	name, usage string
	apply       func(c *Config, v string) error
	reset       func(c *Config) // lists: a higher source replaces, not extends
	show        func(c *Config) string
	isBool      bool
	emptyOK     bool   // "" is a value, not a mistake: an address that disables its listener
	yaml        string // the YAML key, if not the name with "_" for "-"

	// eg is a good value, which every error about the setting shows,
	// whatever its source (a list's items comma-separated).
	eg string

	// A duration or a number is never negative, and 0 is either refused
	// (positive) or means what zeroMeans says: never a default in disguise.
	value func(c *Config) int64 // dur and num: the value, to check its range
	pos   bool                  // positive: 0 is an error
	zero  string                // zeroMeans: what 0 does
}

func (s setting) env() string {
	return "JWTAUTHZ_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

// key is the setting's YAML key.
func (s setting) key() string {
	if s.yaml != "" {
		return s.yaml
	}
	return strings.ReplaceAll(s.name, "-", "_")
}

// example gives the setting its good value, eg.
func (s setting) example(eg string) setting {
	s.eg = eg
	return s
}

// positive makes 0 an error, for a duration or number that 0 could not
// turn off but only break; eg is a good value.
func (s setting) positive(eg string) setting {
	s.eg, s.pos = eg, true
	return s
}

// zeroMeans says, in its usage too, what 0 does.
func (s setting) zeroMeans(what string) setting {
	s.zero = what
	s.usage += "; 0: " + what
	return s
}

// checkRange reports a duration or number out of its range: negative, or
// 0 where it means nothing.
func (s setting) checkRange(c *Config) error {
	if s.value == nil {
		return nil
	}
	switch v := s.value(c); {
	case s.pos && v <= 0:
		return fmt.Errorf("must be > 0, got %s", s.show(c))
	case !s.pos && s.zero == "":
		return fmt.Errorf("setting %s says neither what 0 means nor that it must be positive", s.name) // a mistake in settings
	case v < 0:
		return fmt.Errorf("must not be negative, got %s; 0 means %s", s.show(c), s.zero)
	}
	return nil
}

// checkRanges reports, by YAML key, every duration or number out of its
// range (those given by flag or variable were checked as they came).
func (c *Config) checkRanges() []error {
	var errs []error
	for _, s := range settings {
		if err := s.checkRange(c); err != nil {
			errs = append(errs, &Error{Key: s.key(), Err: err})
		}
	}
	return errs
}

func str(name, usage string, f func(*Config) *string) setting {
	return setting{name: name, usage: usage,
		apply: func(c *Config, v string) error { *f(c) = v; return nil },
		show:  func(c *Config) string { return *f(c) }}
}

// addr is a listener's address, which "" disables.
func addr(name, usage string, f func(*Config) *string) setting {
	s := str(name, usage, f)
	s.emptyOK = true
	return s
}

func dur(name, usage string, f func(*Config) *time.Duration) setting {
	return setting{name: name, usage: usage, value: func(c *Config) int64 { return int64(*f(c)) },
		apply: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q is not a duration", v)
			}
			*f(c) = d
			return nil
		},
		show: func(c *Config) string { return f(c).String() }}
}

func num(name, usage string, f func(*Config) *int) setting {
	return setting{name: name, usage: usage, value: func(c *Config) int64 { return int64(*f(c)) },
		apply: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", v)
			}
			*f(c) = n
			return nil
		},
		show: func(c *Config) string { return strconv.Itoa(*f(c)) }}
}

// withKey gives s the YAML key key.
func withKey(key string, s setting) setting {
	s.yaml = key
	return s
}

func boolean(name, usage string, f func(*Config) *bool) setting {
	return setting{name: name, usage: usage, isBool: true,
		apply: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			*f(c) = b
			return nil
		},
		show: func(c *Config) string { return strconv.FormatBool(*f(c)) }}
}

func list(name, usage string, f func(*Config) *[]string) setting {
	return setting{name: name, usage: usage,
		apply: func(c *Config, v string) error {
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					*f(c) = append(*f(c), item)
				}
			}
			return nil
		},
		reset: func(c *Config) { *f(c) = nil },
		show:  func(c *Config) string { return strings.Join(*f(c), ",") }}
}

var settings = []setting{
	addr("grpc-addr", "Envoy ext_authz gRPC listener, host:port or unix:///path; also serves grpc.health.v1 (and reflection with --grpc-reflection); empty disables", func(c *Config) *string { return &c.GRPCAddr }).example(":9001"),
	addr("http-addr", "HTTP forward-auth listener (nginx auth_request, Traefik forwardAuth, Envoy http_service); empty disables", func(c *Config) *string { return &c.HTTPAddr }).example(":9002"),
	addr("admin-addr", "admin listener: /healthz /readyz /cache/health /metrics; empty disables", func(c *Config) *string { return &c.AdminAddr }).example("127.0.0.1:9003"),
	str("issuer", "the expected iss, compared exactly", func(c *Config) *string { return &c.Issuer }).example("https://auth.example.com/"),
	str("jwks-url", "JWKS address; empty: discovered from {issuer}/.well-known/openid-configuration", func(c *Config) *string { return &c.JWKSURL }).example("https://auth.example.com/.well-known/jwks.json"),
	withKey("audiences", list("audience", "expected aud of the --issuer provider (repeatable, or comma-separated); not given: aud not checked", func(c *Config) *[]string { return &c.Audiences })).example("https://api.example.com"),
	list("algorithms", "accepted signing algorithms", func(c *Config) *[]string { return &c.Algorithms }).example("RS256,ES256"),
	dur("clock-skew", "leeway for exp, nbf and iat", func(c *Config) *time.Duration { return &c.ClockSkew }).zeroMeans("none, a token is refused from the second of its exp").example("30s"),
	dur("cache-ttl", "longest life of a cached verified token (never beyond its exp)", func(c *Config) *time.Duration { return &c.CacheTTL }).zeroMeans("no token cache, every check verifies its token").example("5m"),
	num("cache-size", "verified tokens kept", func(c *Config) *int { return &c.CacheSize }).zeroMeans("no token cache, every check verifies its token").example("100000"),
	num("negative-cache-size", "rejected tokens remembered, apart from the verified ones", func(c *Config) *int { return &c.NegativeCacheSize }).zeroMeans("no negative cache").example("10000"),
	num("max-token-size", "larger tokens are refused before any parsing, in bytes", func(c *Config) *int { return &c.MaxTokenSize }).positive("8192"),
	dur("network-wait", "longest a check waits on the network (an unknown kid's JWKS refresh, or the fetch under way it joins), besides the request's own deadline", func(c *Config) *time.Duration { return &c.NetworkWait }).zeroMeans("a check never waits, an unknown kid is refused at once while the fetch it asked for goes on").example("500ms"),
	dur("jwks-refresh", "background JWKS refresh period", func(c *Config) *time.Duration { return &c.JWKSRefresh }).positive("2h"),
	dur("jwks-min-refresh", "floor under the IdP's max-age, and the cooldown between the refreshes an unknown kid or a bad signature asks for", func(c *Config) *time.Duration { return &c.JWKSMinRefresh }).positive("30s"),
	dur("jwks-timeout", "timeout of one JWKS or discovery fetch", func(c *Config) *time.Duration { return &c.JWKSTimeout }).positive("5s"),
	str("jwks-cache-dir", "keep each good key set here, to start with it during an IdP outage", func(c *Config) *string { return &c.JWKSCacheDir }).example("/var/cache/jwtauthz"),
	dur("jwks-cache-max-age", "a saved key set older than this is not loaded at start", func(c *Config) *time.Duration { return &c.JWKSCacheMaxAge }).positive("168h"),
	str("jwks-ca", "PEM file of CAs for the IdP's certificate, instead of the system roots", func(c *Config) *string { return &c.JWKSCA }).example("/etc/jwtauthz/idp-ca.pem"),
	str("tls-cert", "PEM certificate (chain) for the gRPC and HTTP listeners; re-read when it changes", func(c *Config) *string { return &c.TLSCert }).example("/etc/jwtauthz/tls.crt"),
	str("tls-key", "PEM private key of --tls-cert", func(c *Config) *string { return &c.TLSKey }).example("/etc/jwtauthz/tls.key"),
	str("tls-client-ca", "PEM CAs whose client certificates the gRPC and HTTP listeners require (mTLS)", func(c *Config) *string { return &c.TLSClientCA }).example("/etc/jwtauthz/client-ca.pem"),
	str("clerk-publishable-key", "Clerk preset: pk_test_… or pk_live_… (env also NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY, CLERK_PUBLISHABLE_KEY); the secret key comes from env CLERK_SECRET_KEY", func(c *Config) *string { return &c.ClerkPublishableKey }).example("pk_live_Y2xlcmsuZXhhbXBsZS5jb20k"),
	str("clerk-domain", "Clerk preset: the Frontend API host, instead of the publishable key (env also NEXT_PUBLIC_CLERK_DOMAIN)", func(c *Config) *string { return &c.ClerkDomain }).example("clerk.example.com"),
	list("clerk-authorized-parties", "Clerk preset: accepted azp values, e.g. https://app.example.com", func(c *Config) *[]string { return &c.ClerkAuthorizedParties }).example("https://app.example.com"),
	boolean("pprof", "serve net/http/pprof under /debug/pprof/ on the admin listener", func(c *Config) *bool { return &c.Pprof }).example("true"),
	boolean("grpc-reflection", "serve gRPC server reflection on the gRPC listener, which lets anyone who reaches it list its services (default false; dev: true)", func(c *Config) *bool { return &c.GRPCReflection }).example("true"),
	str("log-level", "debug|info|warn|error", func(c *Config) *string { return &c.LogLevel }).example("info"),
	str("log-format", "json|text", func(c *Config) *string { return &c.LogFormat }).example("json"),
	str("audit-log", "write the audit log, one line per decision (as --log-format says), to stdout, stderr or this file (appended to, created 0600); not given: no audit log", func(c *Config) *string { return &c.AuditLog }).example("/var/log/jwtauthz/audit.log"),
	num("audit-sample-allows", "audit log: log 1 allow in N (1: every allow); every denial is logged", func(c *Config) *int { return &c.AuditSampleAllows }).zeroMeans("no allow is logged, only denials").example("100"),
	num("audit-deny-rate", "audit log: most denials logged per second; the rest are counted in one line a second", func(c *Config) *int { return &c.AuditDenyRate }).zeroMeans("no limit, every denial is logged").example("100"),
	str("otlp-endpoint", "export trace spans over OTLP to this collector URL (http:// plaintext, https:// TLS); not given: the OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT variable, and with neither no tracing", func(c *Config) *string { return &c.OTLPEndpoint }).example("http://otel-collector:4317"),
	str("otlp-protocol", "OTLP transport, grpc or http/protobuf; not given: the OTEL_EXPORTER_OTLP_PROTOCOL or OTEL_EXPORTER_OTLP_TRACES_PROTOCOL variable, else grpc", func(c *Config) *string { return &c.OTLPProtocol }).example("grpc"),
	str("shared-cache", "share introspection verdicts among replicas through this Redis or Valkey: redis://[:password@]host:6379[/db], rediss:// (TLS) or unix:///path; needs --shared-cache-key-file; not given: no shared cache", func(c *Config) *string { return &c.SharedCache }).example("redis://redis:6379/0"),
	str("shared-cache-key-file", "file of the cluster secret that keys and signs shared-cache entries (32 bytes or more a line, readable by its owner only; several lines: the first signs, all verify)", func(c *Config) *string { return &c.SharedCacheKeyFile }).example("/etc/jwtauthz/shared-cache/key"),
	dur("shared-cache-timeout", "longest wait for the shared cache on one operation; past it the check goes on to the IdP", func(c *Config) *time.Duration { return &c.SharedCacheTimeout }).positive("20ms"),
	str("cors-preflight", "allow: a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) passes without a token, before any rule; off: it is checked like any request", func(c *Config) *string { return &c.CORSPreflight }).example("allow"),
	dur("shutdown-delay", "on SIGTERM, time between going NOT_SERVING and closing the listeners", func(c *Config) *time.Duration { return &c.ShutdownDelay }).zeroMeans("the listeners close at once").example("5s"),
	dur("shutdown-timeout", "on SIGTERM, time in-flight checks get to finish", func(c *Config) *time.Duration { return &c.ShutdownTimeout }).positive("15s"),
}

// ErrNoIssuer: the configuration names no provider at all.
var ErrNoIssuer = errors.New("no provider: set --issuer (or JWTAUTHZ_ISSUER), or list providers in the config file")
