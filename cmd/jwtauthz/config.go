package main

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
)

// config is every setting of `serve` and `dev`. Each field comes, in order
// of precedence, from its flag, its JWTAUTHZ_* variable, the YAML file, or
// the default.
type config struct {
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

	Providers []providerConfig   `yaml:"providers"`
	Rules     []authz.RuleConfig `yaml:"rules"`
	PathCase  string             `yaml:"path_case"` // how the upstream compares paths, for rules: authz.PathCase

	path string           // the file it was read from, if any
	sum  [32]byte         // SHA-256 of what was read, to notice a change
	now  func() time.Time // the engine's clock; nil: time.Now (tests set it)
}

// providerConfig is one entry of `providers:` in the file.
type providerConfig struct {
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

	anyIssuer bool // the Clerk preset with the secret key alone
}

func defaults() *config {
	return &config{
		GRPCAddr:          ":9001",
		HTTPAddr:          ":9002",
		AdminAddr:         ":9003",
		Algorithms:        authz.DefaultAlgorithms,
		ClockSkew:         authz.DefaultClockSkew,
		CacheTTL:          authz.DefaultCacheTTL,
		CacheSize:         authz.DefaultCacheSize,
		NegativeCacheSize: authz.DefaultNegativeCacheSize,
		MaxTokenSize:      authz.DefaultMaxTokenSize,
		NetworkWait:       authz.DefaultNetworkWait,
		JWKSRefresh:       jwks.DefaultRefresh,
		JWKSMinRefresh:    jwks.DefaultMinRefresh,
		JWKSTimeout:       jwks.DefaultTimeout,
		JWKSCacheMaxAge:   jwks.DefaultCacheMaxAge,
		LogLevel:          "info",
		LogFormat:         "json",
		ShutdownDelay:     5 * time.Second,
		ShutdownTimeout:   15 * time.Second,
	}
}

// setting is one flag with its environment variable and YAML key.
type setting struct {
	name, usage string
	apply       func(c *config, v string) error
	reset       func(c *config) // lists: a higher source replaces, not extends
	show        func(c *config) string
	isBool      bool
	emptyOK     bool   // "" is a value, not a mistake: an address that disables its listener
	yaml        string // the YAML key, if not the name with "_" for "-"

	// A duration or a number is never negative, and 0 is either refused
	// (positive) or means what zeroMeans says: never a default in disguise.
	value func(c *config) int64 // dur and num: the value, to check its range
	eg    string                // positive: a sound value, for the error
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

// positive makes 0 an error, for a duration or number that 0 could not
// turn off but only break; eg is a sound value, for the error.
func (s setting) positive(eg string) setting {
	s.eg = eg
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
func (s setting) checkRange(c *config) error {
	if s.value == nil {
		return nil
	}
	switch v := s.value(c); {
	case s.eg != "" && v <= 0:
		return fmt.Errorf("must be > 0 (e.g. %s), got %s", s.eg, s.show(c))
	case s.eg == "" && s.zero == "":
		return fmt.Errorf("setting %s says neither what 0 means nor that it must be positive", s.name) // a mistake in settings
	case v < 0:
		return fmt.Errorf("must not be negative (0: %s), got %s", s.zero, s.show(c))
	}
	return nil
}

// checkRanges reports, by YAML key, every duration or number out of its
// range (those given by flag or variable were checked as they came).
func (c *config) checkRanges() []error {
	var errs []error
	for _, s := range settings {
		if err := s.checkRange(c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.key(), err))
		}
	}
	return errs
}

func str(name, usage string, f func(*config) *string) setting {
	return setting{name: name, usage: usage,
		apply: func(c *config, v string) error { *f(c) = v; return nil },
		show:  func(c *config) string { return *f(c) }}
}

// addr is a listener's address, which "" disables.
func addr(name, usage string, f func(*config) *string) setting {
	s := str(name, usage, f)
	s.emptyOK = true
	return s
}

func dur(name, usage string, f func(*config) *time.Duration) setting {
	return setting{name: name, usage: usage, value: func(c *config) int64 { return int64(*f(c)) },
		apply: func(c *config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q is not a duration (e.g. 30s, 5m, 2h)", v)
			}
			*f(c) = d
			return nil
		},
		show: func(c *config) string { return f(c).String() }}
}

func num(name, usage string, f func(*config) *int) setting {
	return setting{name: name, usage: usage, value: func(c *config) int64 { return int64(*f(c)) },
		apply: func(c *config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", v)
			}
			*f(c) = n
			return nil
		},
		show: func(c *config) string { return strconv.Itoa(*f(c)) }}
}

// withKey gives s the YAML key key.
func withKey(key string, s setting) setting {
	s.yaml = key
	return s
}

func boolean(name, usage string, f func(*config) *bool) setting {
	return setting{name: name, usage: usage, isBool: true,
		apply: func(c *config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			*f(c) = b
			return nil
		},
		show: func(c *config) string { return strconv.FormatBool(*f(c)) }}
}

func list(name, usage string, f func(*config) *[]string) setting {
	return setting{name: name, usage: usage,
		apply: func(c *config, v string) error {
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					*f(c) = append(*f(c), item)
				}
			}
			return nil
		},
		reset: func(c *config) { *f(c) = nil },
		show:  func(c *config) string { return strings.Join(*f(c), ",") }}
}

var settings = []setting{
	addr("grpc-addr", "Envoy ext_authz gRPC listener, host:port or unix:///path; also serves grpc.health.v1 (and reflection with --grpc-reflection); empty disables", func(c *config) *string { return &c.GRPCAddr }),
	addr("http-addr", "HTTP forward-auth listener (nginx auth_request, Traefik forwardAuth, Envoy http_service); empty disables", func(c *config) *string { return &c.HTTPAddr }),
	addr("admin-addr", "admin listener: /healthz /readyz /cache/health /metrics; empty disables", func(c *config) *string { return &c.AdminAddr }),
	str("issuer", "the expected iss, compared exactly", func(c *config) *string { return &c.Issuer }),
	str("jwks-url", "JWKS address; empty: discovered from {issuer}/.well-known/openid-configuration", func(c *config) *string { return &c.JWKSURL }),
	withKey("audiences", list("audience", "expected aud of the --issuer provider (repeatable, or comma-separated); not given: aud not checked", func(c *config) *[]string { return &c.Audiences })),
	list("algorithms", "accepted signing algorithms", func(c *config) *[]string { return &c.Algorithms }),
	dur("clock-skew", "leeway for exp, nbf and iat", func(c *config) *time.Duration { return &c.ClockSkew }).zeroMeans("none, a token is refused from the second of its exp"),
	dur("cache-ttl", "longest life of a cached verified token (never beyond its exp)", func(c *config) *time.Duration { return &c.CacheTTL }).zeroMeans("no token cache, every check verifies its token"),
	num("cache-size", "verified tokens kept", func(c *config) *int { return &c.CacheSize }).zeroMeans("no token cache, every check verifies its token"),
	num("negative-cache-size", "rejected tokens remembered, apart from the verified ones", func(c *config) *int { return &c.NegativeCacheSize }).zeroMeans("no negative cache"),
	num("max-token-size", "larger tokens are refused before any parsing, in bytes", func(c *config) *int { return &c.MaxTokenSize }).positive("8192"),
	dur("network-wait", "longest a check waits on the network (an unknown kid's JWKS refresh, or the fetch under way it joins), besides the request's own deadline", func(c *config) *time.Duration { return &c.NetworkWait }).zeroMeans("a check never waits, an unknown kid is refused at once while the fetch it asked for goes on"),
	dur("jwks-refresh", "background JWKS refresh period", func(c *config) *time.Duration { return &c.JWKSRefresh }).positive("2h"),
	dur("jwks-min-refresh", "floor under the IdP's max-age, and the cooldown between the refreshes an unknown kid or a bad signature asks for", func(c *config) *time.Duration { return &c.JWKSMinRefresh }).positive("30s"),
	dur("jwks-timeout", "timeout of one JWKS or discovery fetch", func(c *config) *time.Duration { return &c.JWKSTimeout }).positive("5s"),
	str("jwks-cache-dir", "keep each good key set here, to start with it during an IdP outage", func(c *config) *string { return &c.JWKSCacheDir }),
	dur("jwks-cache-max-age", "a saved key set older than this is not loaded at start", func(c *config) *time.Duration { return &c.JWKSCacheMaxAge }).positive("168h"),
	str("jwks-ca", "PEM file of CAs for the IdP's certificate, instead of the system roots", func(c *config) *string { return &c.JWKSCA }),
	str("tls-cert", "PEM certificate (chain) for the gRPC and HTTP listeners; re-read when it changes", func(c *config) *string { return &c.TLSCert }),
	str("tls-key", "PEM private key of --tls-cert", func(c *config) *string { return &c.TLSKey }),
	str("tls-client-ca", "PEM CAs whose client certificates the gRPC and HTTP listeners require (mTLS)", func(c *config) *string { return &c.TLSClientCA }),
	str("clerk-publishable-key", "Clerk preset: pk_test_… or pk_live_… (env also NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY, CLERK_PUBLISHABLE_KEY); the secret key comes from env CLERK_SECRET_KEY", func(c *config) *string { return &c.ClerkPublishableKey }),
	str("clerk-domain", "Clerk preset: the Frontend API host, instead of the publishable key (env also NEXT_PUBLIC_CLERK_DOMAIN)", func(c *config) *string { return &c.ClerkDomain }),
	list("clerk-authorized-parties", "Clerk preset: accepted azp values, e.g. https://app.example.com", func(c *config) *[]string { return &c.ClerkAuthorizedParties }),
	boolean("pprof", "serve net/http/pprof under /debug/pprof/ on the admin listener", func(c *config) *bool { return &c.Pprof }),
	boolean("grpc-reflection", "serve gRPC server reflection on the gRPC listener, which lets anyone who reaches it list its services (default false; dev: true)", func(c *config) *bool { return &c.GRPCReflection }),
	str("log-level", "debug|info|warn|error", func(c *config) *string { return &c.LogLevel }),
	str("log-format", "json|text", func(c *config) *string { return &c.LogFormat }),
	dur("shutdown-delay", "on SIGTERM, time between going NOT_SERVING and closing the listeners", func(c *config) *time.Duration { return &c.ShutdownDelay }).zeroMeans("the listeners close at once"),
	dur("shutdown-timeout", "on SIGTERM, time in-flight checks get to finish", func(c *config) *time.Duration { return &c.ShutdownTimeout }).positive("15s"),
}

// recorder is a flag.Value that keeps the raw values given on the command
// line, to apply them after the file and the environment.
type recorder struct {
	def    string
	vals   *[]string
	isBool bool
}

func (r recorder) String() string     { return r.def }
func (r recorder) Set(v string) error { *r.vals = append(*r.vals, v); return nil }
func (r recorder) IsBoolFlag() bool   { return r.isBool }

// cliFlags are the flags that are not settings.
type cliFlags struct {
	configPath  string
	checkConfig bool
}

var errHelp = flag.ErrHelp

// loadConfig reads the settings of a `serve` or `dev` command line, with
// the variables lookup finds.
func loadConfig(cmd string, args []string, lookup func(string) (string, bool), stderr io.Writer, def *config) (*config, cliFlags, error) {
	getenv := getenvOf(lookup)
	var cf cliFlags
	fs := flag.NewFlagSet("jwtauthz "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cf.configPath, "config", "", "YAML config file (env JWTAUTHZ_CONFIG)")
	if cmd == "serve" {
		fs.BoolVar(&cf.checkConfig, "check-config", false, "validate the configuration and exit 0 (valid) or 1")
	}
	given := map[string]*[]string{}
	for _, s := range settings {
		vals := new([]string)
		given[s.name] = vals
		fs.Var(recorder{def: s.show(def), vals: vals, isBool: s.isBool}, s.name, s.usage+" (env "+s.env()+")")
	}
	if err := fs.Parse(args); err != nil {
		return nil, cf, err
	}
	if fs.NArg() > 0 {
		return nil, cf, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c := def
	if cf.configPath == "" {
		cf.configPath = getenv("JWTAUTHZ_CONFIG")
	}
	if cf.configPath != "" {
		if err := readConfigFile(cf.configPath, c); err != nil {
			return nil, cf, err
		}
	}
	c.clerkEnv(getenv)
	if err := applyEnv(c, lookup); err != nil {
		return nil, cf, err
	}
	for _, s := range settings {
		if vals := *given[s.name]; len(vals) > 0 {
			if slices.Contains(vals, "") && !s.emptyOK {
				return nil, cf, fmt.Errorf("--%s: is empty; leave it out to keep the file's value or the default (an empty value disables only an address)", s.name)
			}
			if err := applyAll(c, s, vals); err != nil {
				return nil, cf, fmt.Errorf("--%s: %w", s.name, err)
			}
		}
	}
	return c, cf, c.validate()
}

// applyEnv applies the JWTAUTHZ_* variables that are set. A set but empty
// one is a value only for an address (it disables the listener); for any
// other setting it is an error, not a silent reset of the file's value: an
// empty JWTAUTHZ_AUDIENCE or JWTAUTHZ_TLS_CLIENT_CA, say from a template
// whose variable is missing, would turn a check off.
func applyEnv(c *config, lookup func(string) (string, bool)) error {
	for _, s := range settings {
		v, ok := lookup(s.env())
		switch {
		case !ok:
			continue
		case v == "" && !s.emptyOK:
			return fmt.Errorf("%s: is set but empty; unset it to keep the file's value or the default (an empty value disables only an address)", s.env())
		}
		if err := applyAll(c, s, []string{v}); err != nil {
			return fmt.Errorf("%s: %w", s.env(), err)
		}
	}
	return nil
}

// applyAll applies the values one source gives a setting.
func applyAll(c *config, s setting, vals []string) error {
	if s.reset != nil {
		s.reset(c)
	}
	for _, v := range vals {
		if err := s.apply(c, v); err != nil {
			return err
		}
	}
	return s.checkRange(c)
}

// readConfigFile decodes a YAML file strictly into c. A document with no
// settings (empty, or only blanks, comments or null) is an error: it is
// what a file truncated or read in the middle of a rewrite looks like.
func readConfigFile(path string, c *config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	c.path, c.sum = path, sha256.Sum256(b)
	if emptyDocument(b) {
		return fmt.Errorf("config %s: %w", path, errEmptyConfig)
	}
	if err := decodeYAML(b, c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

var errNoIssuer = errors.New("no provider: set --issuer (or JWTAUTHZ_ISSUER), or list providers in the config file")
