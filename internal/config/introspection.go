package config

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/internal/safefile"
)

// Defaults of a provider's introspection keys.
const (
	DefaultIntrospectionTimeout  = 2 * time.Second
	DefaultIntrospectionCacheTTL = 60 * time.Second
)

// IntrospectionConfig is a provider's `introspection` (RFC 7662): the
// provider decides opaque tokens by asking its authorization server.
type IntrospectionConfig struct {
	// URL is the introspection endpoint; empty: discovered from the
	// provider's issuer (introspection_endpoint of its OpenID or RFC 8414
	// metadata).
	URL      string `yaml:"url"`
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret (surrounding white space
	// ignored); else JWTAUTHZ_PROVIDERS_<NAME>_CLIENT_SECRET does.
	ClientSecretFile string `yaml:"client_secret_file"`
	AuthMethod       string `yaml:"auth_method"` // client_secret_basic (empty) or client_secret_post
	// Timeout bounds each call; nil: DefaultIntrospectionTimeout.
	Timeout *time.Duration `yaml:"timeout"`
	// CacheTTL is the longest an active answer without exp is cached; nil:
	// DefaultIntrospectionCacheTTL, 0: not cached.
	CacheTTL *time.Duration `yaml:"cache_ttl"`

	envSecret string // the variable's value
	envSet    bool   // the variable is set (perhaps empty)
}

// Set reports whether the provider has introspection keys.
func (ic IntrospectionConfig) Set() bool {
	return ic.URL != "" || ic.ClientID != "" || ic.ClientSecretFile != "" || ic.AuthMethod != "" || ic.Timeout != nil || ic.CacheTTL != nil
}

// TimeoutOrDefault is Timeout, or its default when not given.
func (ic IntrospectionConfig) TimeoutOrDefault() time.Duration {
	if ic.Timeout == nil {
		return DefaultIntrospectionTimeout
	}
	return *ic.Timeout
}

// CacheTTLOrDefault is CacheTTL, or its default when not given.
func (ic IntrospectionConfig) CacheTTLOrDefault() time.Duration {
	if ic.CacheTTL == nil {
		return DefaultIntrospectionCacheTTL
	}
	return *ic.CacheTTL
}

// SecretEnv is the variable that may hold provider name's client secret:
// JWTAUTHZ_PROVIDERS_<NAME>_CLIENT_SECRET, NAME upper-cased with every
// character other than A-Z and 0-9 as "_".
func SecretEnv(name string) string {
	b := []byte(strings.ToUpper(name))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return "JWTAUTHZ_PROVIDERS_" + string(b) + "_CLIENT_SECRET"
}

// introspectionEnv reads each introspection provider's secret variable.
func (c *Config) introspectionEnv(lookup func(string) (string, bool)) {
	for i := range c.Providers {
		ic := &c.Providers[i].Introspection
		if ic.Set() {
			ic.envSecret, ic.envSet = lookup(SecretEnv(c.Providers[i].Name))
		}
	}
}

// ClientSecret returns the provider's client secret: the file's content
// without surrounding white space, or the variable's value. It is never
// logged, shown or put in an error.
func (p ProviderConfig) ClientSecret(key string) (string, error) {
	ic := p.Introspection
	if ic.ClientSecretFile == "" {
		return ic.envSecret, nil
	}
	b, err := safefile.Read(ic.ClientSecretFile, safefile.MaxSecret)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is the value; the key and its line say which
		}
		return "", invalidHint(key+".introspection.client_secret_file", "%s cannot be read: %v", ic.ClientSecretFile, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", invalidHint(key+".introspection.client_secret_file", "%s is empty", ic.ClientSecretFile)
	}
	return s, nil
}

// checkIntrospection reports what is wrong with an introspection provider's
// keys, each by its key; nothing for a provider without them.
func (p *ProviderConfig) checkIntrospection(key string) []error {
	ic := p.Introspection
	if !ic.Set() {
		if p.IntrospectJWTs {
			return []error{invalidHint(key+".introspect_jwts", "needs introspection (its url, client_id and client secret)")}
		}
		return nil
	}
	var errs []error
	bad := func(sub, format string, a ...any) {
		errs = append(errs, invalidHint(key+"."+sub, format, a...))
	}
	switch {
	case ic.URL != "":
		if err := checkURL(key+".introspection.url", ic.URL); err != nil {
			errs = append(errs, err)
		}
	case p.Issuer == "":
		bad("introspection.url", "is required when the provider has no issuer to discover it from")
	default:
		if err := checkURL(key+".issuer", p.Issuer); err != nil {
			errs = append(errs, err) // discovery needs a URL
		}
	}
	if ic.ClientID == "" {
		bad("introspection.client_id", "is required")
	}
	switch env := SecretEnv(p.Name); {
	case ic.ClientSecretFile != "" && ic.envSet:
		bad("introspection.client_secret_file", "is given, and so is %s: keep one", env)
	case ic.ClientSecretFile == "" && !ic.envSet:
		bad("introspection.client_secret_file", "is required, or the client secret in %s", env)
	case ic.ClientSecretFile == "" && ic.envSecret == "":
		bad("introspection.client_secret_file", "is not set, and %s is set but empty", env)
	case ic.ClientSecretFile != "":
		if _, err := p.ClientSecret(key); err != nil {
			errs = append(errs, err)
		}
	}
	if m := ic.AuthMethod; m != "" && m != "client_secret_basic" && m != "client_secret_post" {
		bad("introspection.auth_method", "%q is not client_secret_basic or client_secret_post", m)
	}
	if ic.Timeout != nil && *ic.Timeout <= 0 {
		bad("introspection.timeout", "must be positive (e.g. 2s)")
	}
	if ic.CacheTTL != nil && *ic.CacheTTL < 0 {
		bad("introspection.cache_ttl", "must not be negative (0: an answer without exp is not cached; e.g. 60s)")
	}
	if p.JWKSURL != "" || p.JWKSFile != "" {
		bad("introspection", "is exclusive with jwks_url and jwks_file: an introspection provider verifies no signature")
	}
	if p.PayloadHeader != "" {
		bad("payload_header", "has no JWT payload to carry on an introspection provider")
	}
	return errs
}

// unchecked stands for a provider's introspection client when a
// configuration is checked, not run.
type unchecked struct{}

func (unchecked) Introspect(context.Context, string) (map[string]any, error) {
	return nil, fmt.Errorf("%w: not running", authz.ErrIntrospectionUnavailable)
}

// SummaryIntrospection is an introspection provider's endpoint and client
// in the --check-config summary: where the secret comes from, never the
// secret.
type SummaryIntrospection struct {
	URL            string `json:"url"` // "" : discovered from the issuer
	ClientID       string `json:"client_id"`
	AuthMethod     string `json:"auth_method"`
	SecretFrom     string `json:"secret_from"` // the file, or the variable's name
	Timeout        string `json:"timeout"`
	CacheTTL       string `json:"cache_ttl"`
	IntrospectJWTs bool   `json:"introspect_jwts"`
}

func summarizeIntrospection(p ProviderConfig) *SummaryIntrospection {
	ic := p.Introspection
	s := &SummaryIntrospection{URL: redactURL(ic.URL), ClientID: ic.ClientID, AuthMethod: cmp.Or(ic.AuthMethod, "client_secret_basic"),
		SecretFrom: ic.ClientSecretFile, Timeout: ic.TimeoutOrDefault().String(), CacheTTL: ic.CacheTTLOrDefault().String(), IntrospectJWTs: p.IntrospectJWTs}
	if ic.URL == "" {
		s.URL = ""
	}
	if s.SecretFrom == "" {
		s.SecretFrom = SecretEnv(p.Name)
	}
	return s
}

// String is the summary's text line.
func (s SummaryIntrospection) String() string {
	where := s.URL
	if where == "" {
		where = "discovered from the issuer"
	}
	out := fmt.Sprintf("%s, client %s (%s), secret from %s, timeout %s, answers without exp cached %s", where, s.ClientID, s.AuthMethod, s.SecretFrom, s.Timeout, s.CacheTTL)
	if s.IntrospectJWTs {
		out += ", JWTs no JWT provider has too"
	}
	return out
}

// String describes the settings without the secret (a file's name is
// shown, a variable's value never), so that printing a ProviderConfig
// shows no secret.
func (ic IntrospectionConfig) String() string {
	if !ic.Set() {
		return "{}"
	}
	secret := ic.ClientSecretFile
	if secret == "" && ic.envSet {
		secret = "(from the environment)"
	}
	return fmt.Sprintf("{url:%s client_id:%s secret:%s auth_method:%s timeout:%s cache_ttl:%s}",
		redactURL(ic.URL), ic.ClientID, secret, ic.AuthMethod, ic.TimeoutOrDefault(), ic.CacheTTLOrDefault())
}

// GoString is String, for %#v.
func (ic IntrospectionConfig) GoString() string { return ic.String() }
