package config

import (
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/internal/testutil"
)

// The helpers these tests share with those of cmd/jwtauthz and
// internal/server live in internal/testutil.
var (
	writeFile      = testutil.WriteFile      // a config file in a temporary directory
	envOf          = testutil.EnvOf          // an os.LookupEnv over name, value pairs
	checkErr       = testutil.CheckErr       // the error a table case wants, or none
	publishableKey = testutil.PublishableKey // a Clerk publishable key
)

func load(t *testing.T, args []string, lookup func(string) (string, bool)) (*Config, error) {
	t.Helper()
	c, _, err := Load("serve", args, lookup, io.Discard, Defaults())
	return c, err
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "issuer: https://file.example.com\ncache_ttl: 1m\nclock_skew: 10s\naudiences: [file]\njwks_refresh: 3h\n")
	c, err := load(t,
		[]string{"--config", file, "--cache-ttl", "3m", "--audience", "flag-a", "--audience", "flag-b,flag-c"},
		envOf("JWTAUTHZ_CACHE_TTL", "2m", "JWTAUTHZ_CLOCK_SKEW", "20s", "JWTAUTHZ_AUDIENCE", "env"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"flag beats env and file", c.CacheTTL, 3 * time.Minute},
		{"env beats file", c.ClockSkew, 20 * time.Second},
		{"file beats default", c.JWKSRefresh, 3 * time.Hour},
		{"default", c.CacheSize, 100000},
		{"file only", c.Issuer, "https://file.example.com"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if !slices.Equal(c.Audiences, []string{"flag-a", "flag-b", "flag-c"}) {
		t.Errorf("audiences %v: a flag list replaces the env's and the file's", c.Audiences)
	}
}

func TestConfigFromEnvAlone(t *testing.T) {
	c, err := load(t, nil, envOf("JWTAUTHZ_CONFIG", writeFile(t, "issuer: https://a.example.com\n"), "JWTAUTHZ_JWKS_URL", "https://a.example.com/keys", "JWTAUTHZ_GRPC_ADDR", ""))
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://a.example.com" || c.JWKSURL != "https://a.example.com/keys" {
		t.Fatalf("%+v", c)
	}
}

func TestIssuerNeedNotBeAURLWithKeysGiven(t *testing.T) {
	file := writeFile(t, "providers:\n  - {name: google-legacy, issuer: accounts.google.com, jwks_url: https://www.googleapis.com/oauth2/v3/certs}\n")
	if _, err := load(t, []string{"--config", file}, envOf()); err != nil {
		t.Fatalf("a scheme-less issuer with jwks_url: %v", err)
	}
	file = writeFile(t, "providers:\n  - {name: google-legacy, issuer: accounts.google.com}\n")
	if _, err := load(t, []string{"--config", file}, envOf()); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Fatalf("discovery from a scheme-less issuer: %v", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		file string
		args []string
		env  []string
		want string
	}{
		{name: "unknown key", file: "issuer: https://a\ncache_tll: 5m\n", want: ":2: cache_tll: unknown key; did you mean cache_ttl?"},
		{name: "unknown nested key", file: "providers:\n  - name: a\n    issuer: https://a\n    jwks_ur: https://a/k\n", want: ":4: providers[0].jwks_ur: unknown key; did you mean jwks_url?"},
		{name: "key twice", file: "issuer: https://a\nissuer: https://b\n", want: ":2: issuer: key given twice"},
		{name: "bad duration", file: "issuer: https://a\ncache_ttl: 5 minutes\n", want: `:2: cache_ttl: "5 minutes" is not a duration (e.g. 5m)`},
		{name: "bad number", file: "issuer: https://a\ncache_size: lots\n", want: `:2: cache_size: "lots" is not a whole number (e.g. 100000)`},
		{name: "list where a mapping goes", file: "issuer: https://a\nrules: {match: x}\n", want: ":2: rules: must be a list, not a mapping"},
		{name: "negative size", file: "issuer: https://a\ncache_size: -1\n", want: ":2: cache_size: must not be negative, got -1; 0 means no token cache"},
		{name: "zero timeout", file: "issuer: https://a\njwks_timeout: 0s\n", want: ":2: jwks_timeout: must be > 0, got 0s (e.g. 5s)"},
		{name: "negative flag", args: []string{"--issuer", "https://a", "--clock-skew", "-1s"}, want: "--clock-skew: must not be negative, got -1s; 0 means none"},
		{name: "zero variable", args: []string{"--issuer", "https://a"}, env: []string{"JWTAUTHZ_MAX_TOKEN_SIZE", "0"}, want: "JWTAUTHZ_MAX_TOKEN_SIZE: must be > 0, got 0 (e.g. 8192)"},
		{name: "not a URL", args: []string{"--issuer", "clerk.example.com"}, want: `issuer: "clerk.example.com" is not an http(s) URL`},
		{name: "HMAC", args: []string{"--issuer", "https://a", "--algorithms", "RS256,HS256"}, want: `algorithms: "HS256" is not allowed`},
		{name: "log level", args: []string{"--issuer", "https://a", "--log-level", "loud"}, want: "--log-level: "},
		{name: "address", args: []string{"--issuer", "https://a", "--grpc-addr", "9001"}, want: "--grpc-addr: "},
		{name: "unix socket on http", args: []string{"--issuer", "https://a", "--http-addr", "unix:///tmp/x.sock"}, want: "--http-addr: "},
		{name: "flag value", args: []string{"--cache-ttl", "soon"}, want: `--cache-ttl: "soon" is not a duration`},
		{name: "provider without issuer", file: "providers:\n  - name: a\n", want: "providers[0].issuer: is required"},
		{name: "two providers with a name", file: "providers:\n  - {name: a, issuer: https://a}\n  - {name: a, issuer: https://b}\n", want: `providers[1].name: "a" is used twice`},
		{name: "token source with two places", file: "providers:\n  - {name: a, issuer: https://a, token_sources: [{header: x, cookie: y}]}\n", want: "token_sources[0]: set exactly one"},
		{name: "jwks_url and jwks_file", file: "providers:\n  - {name: a, issuer: https://a, jwks_url: https://a/k, jwks_file: /k}\n", want: "jwks_file: is exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, tt.file))
			}
			_, err := load(t, args, envOf(tt.env...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestClerkPublishableKey(t *testing.T) {
	tests := []struct {
		name     string
		key      string
		wantHost string
		wantErr  string
	}{
		{name: "test key", key: publishableKey("pk_test_", "happy-cat-12.clerk.accounts.dev"), wantHost: "happy-cat-12.clerk.accounts.dev"},
		{name: "live key", key: publishableKey("pk_live_", "clerk.example.com"), wantHost: "clerk.example.com"},
		{name: "unpadded base64", key: "pk_test_" + base64.RawStdEncoding.EncodeToString([]byte("clerk.example.com$")), wantHost: "clerk.example.com"},
		{name: "secret key given instead", key: "sk_test_abc", wantErr: "prefix is missing"},
		{name: "not base64", key: "pk_test_%%%", wantErr: "not base64"},
		{name: "no dollar", key: "pk_test_" + base64.StdEncoding.EncodeToString([]byte("clerk.example.com")), wantErr: "does not end in $"},
		{name: "not a host", key: publishableKey("pk_test_", "https://x/y"), wantErr: "not a host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, err := clerkHost(tt.key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || host != tt.wantHost {
				t.Fatalf("host %q, err %v; want %q", host, err, tt.wantHost)
			}
		})
	}
}

func TestClerkPreset(t *testing.T) {
	pk := publishableKey("pk_test_", "happy-cat-12.clerk.accounts.dev")
	tests := []struct {
		name        string
		args        []string
		env         []string
		wantIssuer  string
		wantJWKS    string
		wantAny     bool
		wantSecret  bool
		wantParties []string
		wantErr     string
	}{
		{name: "publishable key flag", args: []string{"--clerk-publishable-key", pk},
			wantIssuer: "https://happy-cat-12.clerk.accounts.dev", wantJWKS: "https://happy-cat-12.clerk.accounts.dev/.well-known/jwks.json"},
		{name: "Next.js env name", env: []string{"NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY", pk}, wantIssuer: "https://happy-cat-12.clerk.accounts.dev", wantJWKS: "https://happy-cat-12.clerk.accounts.dev/.well-known/jwks.json"},
		{name: "domain", env: []string{"NEXT_PUBLIC_CLERK_DOMAIN", "https://clerk.example.com"}, wantIssuer: "https://clerk.example.com", wantJWKS: "https://clerk.example.com/.well-known/jwks.json"},
		{name: "key and secret: keys from the Backend API", env: []string{"CLERK_PUBLISHABLE_KEY", pk, "CLERK_SECRET_KEY", "sk_test_s3cret"},
			wantIssuer: "https://happy-cat-12.clerk.accounts.dev", wantJWKS: clerkBackendJWKS, wantSecret: true},
		{name: "secret alone: any iss of the instance", env: []string{"CLERK_SECRET_KEY", "sk_test_s3cret"}, wantJWKS: clerkBackendJWKS, wantAny: true, wantSecret: true},
		{name: "authorized parties", args: []string{"--clerk-publishable-key", pk, "--clerk-authorized-parties", "https://app.example.com,https://admin.example.com"},
			wantIssuer: "https://happy-cat-12.clerk.accounts.dev", wantJWKS: "https://happy-cat-12.clerk.accounts.dev/.well-known/jwks.json", wantParties: []string{"https://app.example.com", "https://admin.example.com"}},
		{name: "malformed key", args: []string{"--clerk-publishable-key", "pk_test_bm9wZQ=="}, wantErr: "--clerk-publishable-key: a publishable key is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, envOf(tt.env...))
			if checkErr(t, err, tt.wantErr) {
				return
			}
			ps := c.AllProviders()
			if len(ps) != 1 || ps[0].Name != "clerk" {
				t.Fatalf("providers %+v", ps)
			}
			p := ps[0]
			if p.Issuer != tt.wantIssuer || p.JWKSURL != tt.wantJWKS || p.anyIssuer != tt.wantAny || !slices.Equal(p.AuthorizedParties, tt.wantParties) {
				t.Fatalf("provider %+v", p)
			}
			if got := p.JWKSHeaders["Authorization"] == "Bearer sk_test_s3cret"; got != tt.wantSecret {
				t.Fatalf("jwks_headers %v", p.JWKSHeaders)
			}
			if len(p.TokenSources) != 2 || p.TokenSources[1].Cookie != "__session" {
				t.Fatalf("token sources %+v", p.TokenSources)
			}
			if err := c.Check(); err != nil {
				t.Fatalf("check: %v", err)
			}
		})
	}
}

// TestZeroOfEverySetting gives each setting its zero ("" for text and
// lists, 0 for numbers and durations, false for a switch) by flag, by
// variable and in the file. Each form is refused with an error that names
// the setting as that form does, or the zero is kept as given (never
// replaced by the default) and builds an engine. A setting without a case
// fails the test: a new one must say what its zero does.
func TestZeroOfEverySetting(t *testing.T) {
	type outcome int
	const (
		kept    outcome = iota + 1 // a value: kept, and meaning what the usage says
		refused                    // an error naming the setting
	)
	type forms struct{ flag, env, file outcome }
	var (
		value = forms{kept, kept, kept}          // 0 means something
		never = forms{refused, refused, refused} // 0 is an error everywhere
		// An empty flag or variable is refused (a template's missing value
		// must not turn a check off); the file's "" or [] is the same as
		// leaving the key out.
		unset = forms{refused, refused, kept}
	)
	engine := func(f func(ac authz.Config) bool) func(t *testing.T, c *Config) {
		return func(t *testing.T, c *Config) {
			if ac := c.EngineConfig(map[string]authz.KeySource{}); !f(ac) {
				t.Errorf("engine config %+v", ac)
			}
		}
	}
	tests := map[string]struct {
		forms forms
		means func(t *testing.T, c *Config) // what a kept zero does, where the config shows it
	}{
		"grpc-addr":                {forms: value}, // the listener is off
		"http-addr":                {forms: value},
		"admin-addr":               {forms: value},
		"issuer":                   {forms: unset},
		"jwks-url":                 {forms: unset},
		"audience":                 {forms: unset},
		"algorithms":               {forms: never},
		"clock-skew":               {forms: value, means: engine(func(ac authz.Config) bool { return ac.ClockSkew == 0 })},
		"cache-ttl":                {forms: value, means: engine(func(ac authz.Config) bool { return ac.CacheTTL == 0 && ac.CacheSize == authz.DefaultCacheSize })},
		"cache-size":               {forms: value, means: engine(func(ac authz.Config) bool { return ac.CacheSize == 0 && ac.CacheTTL == authz.DefaultCacheTTL })},
		"negative-cache-size":      {forms: value, means: engine(func(ac authz.Config) bool { return ac.NegativeCacheSize == 0 })},
		"max-token-size":           {forms: never},
		"network-wait":             {forms: value, means: engine(func(ac authz.Config) bool { return ac.NetworkWait == 0 })},
		"jwks-refresh":             {forms: never},
		"jwks-min-refresh":         {forms: never},
		"jwks-timeout":             {forms: never},
		"jwks-cache-dir":           {forms: unset},
		"jwks-cache-max-age":       {forms: never},
		"jwks-ca":                  {forms: unset},
		"tls-cert":                 {forms: unset},
		"tls-key":                  {forms: unset},
		"tls-client-ca":            {forms: unset},
		"clerk-publishable-key":    {forms: unset},
		"clerk-domain":             {forms: unset},
		"clerk-authorized-parties": {forms: unset},
		"pprof":                    {forms: value},
		"grpc-reflection":          {forms: value},
		"log-level":                {forms: never},
		"log-format":               {forms: never},
		"otlp-endpoint": {forms: unset, means: func(t *testing.T, c *Config) {
			if c.OTLPEndpoint != "" {
				t.Errorf("otlp_endpoint %q, want none (the OTEL_* variables, else no tracing)", c.OTLPEndpoint)
			}
		}},
		"otlp-protocol": {forms: unset, means: func(t *testing.T, c *Config) {
			if c.OTLPProtocol != "" {
				t.Errorf("otlp_protocol %q, want none (the OTEL_* variables, else grpc)", c.OTLPProtocol)
			}
		}},
		"audit-log": {forms: unset, means: func(t *testing.T, c *Config) {
			if c.AuditLog != "" {
				t.Errorf("audit_log %q, want no audit log", c.AuditLog)
			}
		}},
		"audit-sample-allows": {forms: value, means: func(t *testing.T, c *Config) {
			if c.AuditSampleAllows != 0 {
				t.Errorf("audit_sample_allows %d, want 0 (no allow logged)", c.AuditSampleAllows)
			}
		}},
		"audit-deny-rate": {forms: value, means: func(t *testing.T, c *Config) {
			if c.AuditDenyRate != 0 {
				t.Errorf("audit_deny_rate %d, want 0 (no limit)", c.AuditDenyRate)
			}
		}},
		"cors-preflight":   {forms: unset, means: engine(func(ac authz.Config) bool { return !ac.CORSPreflight })},
		"shutdown-delay":   {forms: value},
		"shutdown-timeout": {forms: never},
		"shared-cache": {forms: unset, means: func(t *testing.T, c *Config) {
			if c.SharedCache != "" || c.Summary().SharedCache != nil {
				t.Errorf("shared_cache %q, want none", c.SharedCache)
			}
		}},
		"shared-cache-key-file": {forms: unset},
		"shared-cache-timeout":  {forms: never},
	}
	const provider = "providers:\n  - {name: p, issuer: https://p.example.com, jwks_url: https://p.example.com/keys}\n"
	blank := &Config{} // every field at Go's zero, to show a setting's zero
	for _, s := range settings {
		tt, ok := tests[s.name]
		if !ok {
			t.Errorf("--%s: no case: say what its zero does", s.name)
			continue
		}
		delete(tests, s.name)
		zero, inFile := s.show(blank), s.show(blank)
		switch {
		case s.isBool:
			zero, inFile = "false", "false"
		case s.reset != nil:
			inFile = "[]"
		case s.value == nil:
			inFile = `""`
		}
		for _, form := range []struct {
			name string
			want outcome
			args []string
			env  []string
			file string
			says string // how the error names the setting
		}{
			{name: "flag", want: tt.forms.flag, args: []string{"--" + s.name + "=" + zero}, says: "--" + s.name + ":"},
			{name: "env", want: tt.forms.env, env: []string{s.env(), zero}, says: s.env() + ":"},
			{name: "file", want: tt.forms.file, file: s.key() + ": " + inFile + "\n", says: s.key() + ":"},
		} {
			t.Run(s.name+"/"+form.name, func(t *testing.T) {
				args := append([]string{"--config", writeFile(t, provider+form.file)}, form.args...)
				c, err := load(t, args, envOf(form.env...))
				if form.want == refused {
					if err == nil || !strings.Contains(err.Error(), form.says) {
						t.Fatalf("err = %v, want an error naming %s", err, form.says)
					}
					return
				}
				if err != nil {
					t.Fatalf("err = %v, want %q kept", err, zero)
				}
				if got := s.show(c); got != s.show(blank) {
					t.Fatalf("--%s is %q, want the zero given, %q", s.name, got, s.show(blank))
				}
				if err := c.Check(); err != nil {
					t.Fatalf("check: %v", err)
				}
				if tt.means != nil {
					tt.means(t, c)
				}
			})
		}
	}
	for name := range tests {
		t.Errorf("case %q names no setting", name)
	}
}

// An empty document (the file truncated, or read just after being opened
// for a rewrite) is an error that names the file, and a whole file that
// sets nothing is not mistaken for one.
func TestEmptyConfigIsRefused(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr bool
	}{
		{name: "0 bytes", doc: "", wantErr: true},
		{name: "blank lines", doc: "\n   \n\t\n", wantErr: true},
		{name: "only comments", doc: "# rules:\n#   - {action: allow}\n", wantErr: true},
		{name: "document marker alone", doc: "---\n", wantErr: true},
		{name: "null", doc: "null\n", wantErr: true},
		{name: "an empty mapping, written on purpose", doc: "{}\n"},
		{name: "one setting", doc: "log_level: warn\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.doc)
			_, err := load(t, []string{"--config", path, "--issuer", "https://issuer.example.com"}, envOf())
			if tt.wantErr && (!errors.Is(err, ErrEmptyConfig) || !strings.Contains(err.Error(), path)) {
				t.Fatalf("error %v: want ErrEmptyConfig naming %s", err, path)
			}
			if !tt.wantErr && err != nil {
				t.Fatalf("error %v, want none", err)
			}
		})
	}
}
