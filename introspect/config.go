package introspect

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// AuthMethod is how the client authenticates to the endpoint (RFC 6749
// §2.3.1; the names are those of RFC 7591's token_endpoint_auth_method).
type AuthMethod string

// The supported methods.
const (
	// ClientSecretBasic sends HTTP Basic authentication with the client ID
	// and secret each form-urlencoded first, as RFC 6749 §2.3.1 says.
	ClientSecretBasic AuthMethod = "client_secret_basic"
	// ClientSecretPost sends client_id and client_secret as form fields.
	ClientSecretPost AuthMethod = "client_secret_post"
)

// Outcome labels a call for Observe.
type Outcome string

// The outcomes.
const (
	OutcomeActive      Outcome = "active"       // an answer, Active
	OutcomeInactive    Outcome = "inactive"     // an answer, not Active
	OutcomeFailed      Outcome = "failed"       // ErrFailed
	OutcomeUnavailable Outcome = "unavailable"  // ErrUnavailable, the server asked
	OutcomeBreakerOpen Outcome = "breaker_open" // ErrBreakerOpen, not asked
)

// Outcomes lists every Outcome, for pre-creating metric series.
var Outcomes = []Outcome{OutcomeActive, OutcomeInactive, OutcomeFailed, OutcomeUnavailable, OutcomeBreakerOpen}

// Config configures a Client.
type Config struct {
	// URL is the introspection endpoint, http(s) with a host. Empty:
	// found by Discover from Issuer at the first call (and again after a
	// failure with it).
	URL string
	// Issuer is the authorization server's issuer, for discovery when URL
	// is empty; otherwise unused.
	Issuer string
	// ClientID and ClientSecret authenticate the client; both required.
	// The secret never appears in an error, String, GoString or LogValue.
	ClientID     string
	ClientSecret string
	// AuthMethod is ClientSecretBasic or ClientSecretPost; empty means
	// ClientSecretBasic (which RFC 6749 requires servers to support).
	AuthMethod AuthMethod
	// Timeout bounds each call (discovery included), as the caller's
	// context does too; required (> 0).
	Timeout time.Duration
	// HTTPClient makes the requests; nil: one with http.DefaultTransport.
	// Introspect follows no redirect (a 3xx is ErrFailed: following a 307
	// would send the token and the secret on) and sends no cookies, whatever
	// this client's CheckRedirect and Jar.
	HTTPClient *http.Client
	// BreakerThreshold consecutive unavailable calls open the circuit
	// breaker for BreakerCooldown, doubled on each failed probe up to
	// BreakerMaxCooldown. 0: the Default… constants.
	BreakerThreshold   int
	BreakerCooldown    time.Duration
	BreakerMaxCooldown time.Duration
	// Now is the clock of the breaker and of Observe's latency; nil:
	// time.Now.
	Now func() time.Time
	// Observe, if set, is called once per Introspect with its outcome and
	// how long it took (0 for breaker_open). It must not block.
	Observe func(o Outcome, latency time.Duration)
}

// String describes the configuration without the secret.
func (c Config) String() string {
	u := redact(c.URL)
	if c.URL == "" {
		u = "discovered from " + redact(c.Issuer)
	}
	return fmt.Sprintf("introspect.Config{URL: %s, ClientID: %q, ClientSecret: [redacted], AuthMethod: %s}", u, c.ClientID, c.method())
}

// GoString is String, so that %#v shows no secret either.
func (c Config) GoString() string { return c.String() }

// LogValue is what log/slog logs for a Config: no secret.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c Config) method() AuthMethod {
	if c.AuthMethod == "" {
		return ClientSecretBasic
	}
	return c.AuthMethod
}

func check(cfg *Config) error {
	switch {
	case cfg.URL == "" && cfg.Issuer == "":
		return errors.New("introspect: URL or Issuer is required")
	case cfg.URL != "" && !httpURL(cfg.URL):
		return fmt.Errorf("introspect: URL %s is not an http(s) URL with a host", redact(cfg.URL))
	case cfg.URL == "" && !httpURL(cfg.Issuer):
		return fmt.Errorf("introspect: Issuer %s is not an http(s) URL with a host, for discovery", redact(cfg.Issuer))
	case cfg.ClientID == "":
		return errors.New("introspect: ClientID is required")
	case cfg.ClientSecret == "":
		return errors.New("introspect: ClientSecret is required")
	case cfg.method() != ClientSecretBasic && cfg.method() != ClientSecretPost:
		return fmt.Errorf("introspect: AuthMethod %q is not %s or %s", cfg.AuthMethod, ClientSecretBasic, ClientSecretPost)
	case cfg.Timeout <= 0:
		return errors.New("introspect: Timeout must be positive")
	case cfg.BreakerThreshold < 0 || cfg.BreakerCooldown < 0 || cfg.BreakerMaxCooldown < 0:
		return errors.New("introspect: breaker settings must not be negative")
	case cfg.BreakerMaxCooldown != 0 && cfg.BreakerMaxCooldown < max(cfg.BreakerCooldown, 1):
		return errors.New("introspect: BreakerMaxCooldown must not be shorter than BreakerCooldown")
	}
	cfg.AuthMethod = cfg.method()
	if cfg.BreakerThreshold == 0 {
		cfg.BreakerThreshold = DefaultBreakerThreshold
	}
	if cfg.BreakerCooldown == 0 {
		cfg.BreakerCooldown = DefaultBreakerCooldown
	}
	if cfg.BreakerMaxCooldown == 0 {
		cfg.BreakerMaxCooldown = max(DefaultBreakerMaxCooldown, cfg.BreakerCooldown)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
