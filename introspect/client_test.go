package introspect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
	"github.com/jwtauthz/jwtauthz/introspect"
	"github.com/jwtauthz/jwtauthz/introspect/introspecttest"
)

// newClock is a settable clock for the breaker.
func newClock() *testutil.Clock { return testutil.NewClock(time.Unix(1_800_000_000, 0)) }

// observed records Observe's calls.
type observed struct {
	mu  sync.Mutex
	out []introspect.Outcome
}

func (o *observed) observe(oc introspect.Outcome, _ time.Duration) {
	o.mu.Lock()
	o.out = append(o.out, oc)
	o.mu.Unlock()
}

func (o *observed) last() introspect.Outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.out) == 0 {
		return ""
	}
	return o.out[len(o.out)-1]
}

func clientFor(t *testing.T, s *introspecttest.Server, edit func(*introspect.Config)) *introspect.Client {
	t.Helper()
	cfg := introspect.Config{
		URL: s.Endpoint(), ClientID: s.ClientID, ClientSecret: s.ClientSecret,
		Timeout: 5 * time.Second, HTTPClient: s.Client(),
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := introspect.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIntrospectBothAuthMethods(t *testing.T) {
	for _, m := range []introspecttest.Method{introspecttest.MethodBasic, introspecttest.MethodPost} {
		t.Run(string(m), func(t *testing.T) {
			s := introspecttest.New(t, introspecttest.Options{Method: m})
			c := clientFor(t, s, func(c *introspect.Config) { c.AuthMethod = introspect.AuthMethod(m) })
			tok := s.Issue(map[string]any{"sub": "u1", "exp": 1_900_000_000, "scope": "read write"})
			got, err := c.Introspect(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if got["active"] != true || got["sub"] != "u1" || got["exp"] != json.Number("1900000000") {
				t.Fatalf("answer %v", got)
			}
			got, err = c.Introspect(context.Background(), "never-issued")
			if err != nil || got["active"] != false || len(got) != 1 {
				t.Fatalf("unknown token: %v, %v", got, err)
			}
			s.Revoke(tok)
			if got, err = c.Introspect(context.Background(), tok); err != nil || introspect.Active(got) {
				t.Fatalf("revoked token: %v, %v", got, err)
			}
			if s.CallsFor(tok) != 2 || s.Calls() != 3 {
				t.Fatalf("calls %d for the token, %d in all", s.CallsFor(tok), s.Calls())
			}
		})
	}
}

func TestIntrospectWrongCredentialsOrMethod(t *testing.T) {
	tests := []struct {
		name   string
		server introspecttest.Method
		edit   func(*introspect.Config)
	}{
		{name: "wrong secret, basic", edit: func(c *introspect.Config) { c.ClientSecret += "x" }},
		{name: "wrong secret, post", edit: func(c *introspect.Config) { c.ClientSecret = "nope"; c.AuthMethod = introspect.ClientSecretPost }},
		{name: "wrong id", edit: func(c *introspect.Config) { c.ClientID = "other" }},
		{name: "basic to a post-only client", server: introspecttest.MethodPost},
		{name: "post to a basic-only client", server: introspecttest.MethodBasic, edit: func(c *introspect.Config) { c.AuthMethod = introspect.ClientSecretPost }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := introspecttest.New(t, introspecttest.Options{Method: tt.server})
			c := clientFor(t, s, tt.edit)
			tok := s.Issue(nil)
			got, err := c.Introspect(context.Background(), tok)
			if !errors.Is(err, introspect.ErrFailed) || got != nil {
				t.Fatalf("got %v, %v; want ErrFailed", got, err)
			}
			if !strings.Contains(err.Error(), "status 401") {
				t.Errorf("error %q does not say 401", err)
			}
			noSecrets(t, err, tok, s.ClientSecret)
		})
	}
}

// noSecrets fails if err's text holds the token or the secret.
func noSecrets(t *testing.T, err error, token, secret string) {
	t.Helper()
	if msg := err.Error(); strings.Contains(msg, token) || strings.Contains(msg, secret) {
		t.Errorf("error %q shows the token or the secret", msg)
	}
}

func TestIntrospectFailureModes(t *testing.T) {
	tests := []struct {
		name    string
		fault   introspecttest.Fault
		status  int
		want    error
		outcome introspect.Outcome
	}{
		{name: "not JSON", fault: introspecttest.FaultNotJSON, want: introspect.ErrFailed, outcome: introspect.OutcomeFailed},
		{name: "text/html", fault: introspecttest.FaultContentType, want: introspect.ErrFailed, outcome: introspect.OutcomeFailed},
		{name: `"active":"true"`, fault: introspecttest.FaultActiveString, want: introspect.ErrFailed, outcome: introspect.OutcomeFailed},
		{name: "no active", fault: introspecttest.FaultNoActive, want: introspect.ErrFailed, outcome: introspect.OutcomeFailed},
		{name: "oversize", fault: introspecttest.FaultOversize, want: introspect.ErrFailed, outcome: introspect.OutcomeFailed},
		{name: "truncated", fault: introspecttest.FaultTruncated, want: introspect.ErrFailed, outcome: introspect.OutcomeFailed},
		{name: "trailing data", fault: introspecttest.FaultTrailingData, want: introspect.ErrFailed, outcome: introspect.OutcomeFailed},
		{name: "duplicate active", fault: introspecttest.FaultDuplicateActive, want: introspect.ErrFailed, outcome: introspect.OutcomeFailed},
		{name: "array", fault: introspecttest.FaultArray, want: introspect.ErrFailed, outcome: introspect.OutcomeFailed},
		{name: "cut short", fault: introspecttest.FaultCutShort, want: introspect.ErrUnavailable, outcome: introspect.OutcomeUnavailable},
		{name: "500", status: 500, want: introspect.ErrFailed, outcome: introspect.OutcomeFailed},
		{name: "400", status: 400, want: introspect.ErrFailed, outcome: introspect.OutcomeFailed},
		{name: "404", status: 404, want: introspect.ErrFailed, outcome: introspect.OutcomeFailed},
		{name: "429", status: 429, want: introspect.ErrUnavailable, outcome: introspect.OutcomeUnavailable},
		{name: "502", status: 502, want: introspect.ErrUnavailable, outcome: introspect.OutcomeUnavailable},
		{name: "503", status: 503, want: introspect.ErrUnavailable, outcome: introspect.OutcomeUnavailable},
		{name: "504", status: 504, want: introspect.ErrUnavailable, outcome: introspect.OutcomeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := introspecttest.New(t, introspecttest.Options{})
			var obs observed
			c := clientFor(t, s, func(c *introspect.Config) { c.Observe = obs.observe })
			tok := s.Issue(map[string]any{"sub": "u1"})
			s.SetFault(tt.fault)
			s.Fail(tt.status)
			got, err := c.Introspect(context.Background(), tok)
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			if other := map[error]error{introspect.ErrFailed: introspect.ErrUnavailable, introspect.ErrUnavailable: introspect.ErrFailed}[tt.want]; errors.Is(err, other) {
				t.Fatalf("%v is both kinds", err)
			}
			if obs.last() != tt.outcome {
				t.Errorf("observed %q, want %q", obs.last(), tt.outcome)
			}
			noSecrets(t, err, tok, s.ClientSecret)
		})
	}
}

func TestIntrospectUnreachable(t *testing.T) {
	s := introspecttest.New(t, introspecttest.Options{})
	c := clientFor(t, s, nil)
	tok := s.Issue(nil)
	s.Close()
	got, err := c.Introspect(context.Background(), tok)
	if !errors.Is(err, introspect.ErrUnavailable) || got != nil {
		t.Fatalf("got %v, %v; want ErrUnavailable", got, err)
	}
	noSecrets(t, err, tok, s.ClientSecret)
}

func TestIntrospectSlowServer(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  bool // the caller cancels, instead of a deadline
	}{
		{name: "the client's Timeout", timeout: 20 * time.Millisecond},
		{name: "the caller's cancel", timeout: time.Minute, cancel: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := introspecttest.New(t, introspecttest.Options{})
			clk := newClock()
			c := clientFor(t, s, func(c *introspect.Config) { c.Timeout, c.BreakerThreshold, c.Now = tt.timeout, 1, clk.Now })
			arrived := s.Hold()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				go func() { <-arrived; cancel() }()
			}
			got, err := c.Introspect(ctx, s.Issue(nil))
			if !errors.Is(err, introspect.ErrUnavailable) || got != nil {
				t.Fatalf("got %v, %v; want ErrUnavailable", got, err)
			}
			// With a threshold of 1, a timeout opens the breaker; the
			// caller going away says nothing of the server.
			if c.BreakerOpen() == tt.cancel {
				t.Fatalf("breaker open: %v after %s", c.BreakerOpen(), tt.name)
			}
		})
	}
}

func TestIntrospectFollowsNoRedirect(t *testing.T) {
	s := introspecttest.New(t, introspecttest.Options{})
	redirect := httptest.NewServer(http.RedirectHandler(s.Endpoint(), http.StatusTemporaryRedirect))
	defer redirect.Close()
	c := clientFor(t, s, func(c *introspect.Config) { c.URL = redirect.URL })
	got, err := c.Introspect(context.Background(), s.Issue(nil))
	if !errors.Is(err, introspect.ErrFailed) || got != nil || s.Calls() != 0 {
		t.Fatalf("got %v, %v, %d calls at the target; want ErrFailed and none", got, err, s.Calls())
	}
}

func TestSecretNeverShown(t *testing.T) {
	const secret = "very-secret-value"
	cfg := introspect.Config{URL: "https://user:pw@idp.example/introspect?k=v", ClientID: "id", ClientSecret: secret, Timeout: time.Second}
	c, err := introspect.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "cfg", cfg, "client", c)
	for _, s := range []string{
		fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), fmt.Sprintf("%v %+v %#v %s", &cfg, &cfg, &cfg, &cfg),
		fmt.Sprintf("%v %+v %#v %s", c, c, c, c), buf.String(),
	} {
		if strings.Contains(s, secret) || strings.Contains(s, "pw") || strings.Contains(s, "k=v") {
			t.Errorf("shows a secret: %s", s)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	ok := introspect.Config{URL: "https://idp.example/introspect", ClientID: "id", ClientSecret: "s", Timeout: time.Second}
	tests := []struct {
		name string
		edit func(*introspect.Config)
	}{
		{name: "no URL, no issuer", edit: func(c *introspect.Config) { c.URL = "" }},
		{name: "not http", edit: func(c *introspect.Config) { c.URL = "ftp://idp.example/x" }},
		{name: "no host", edit: func(c *introspect.Config) { c.URL = "https:///x" }},
		{name: "issuer not a URL", edit: func(c *introspect.Config) { c.URL, c.Issuer = "", "accounts.example" }},
		{name: "no client ID", edit: func(c *introspect.Config) { c.ClientID = "" }},
		{name: "no secret", edit: func(c *introspect.Config) { c.ClientSecret = "" }},
		{name: "unknown method", edit: func(c *introspect.Config) { c.AuthMethod = "private_key_jwt" }},
		{name: "no timeout", edit: func(c *introspect.Config) { c.Timeout = 0 }},
		{name: "negative cool-down", edit: func(c *introspect.Config) { c.BreakerCooldown = -1 }},
		{name: "cap under the cool-down", edit: func(c *introspect.Config) { c.BreakerCooldown, c.BreakerMaxCooldown = time.Minute, time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			if _, err := introspect.New(cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := introspect.New(ok); err != nil {
		t.Fatal(err)
	}
}

func TestEmptyTokenIsNotAsked(t *testing.T) {
	s := introspecttest.New(t, introspecttest.Options{})
	c := clientFor(t, s, nil)
	if _, err := c.Introspect(context.Background(), ""); !errors.Is(err, introspect.ErrFailed) || s.Calls() != 0 {
		t.Fatalf("%v, %d calls", err, s.Calls())
	}
}

func TestStringNamesTheEndpoint(t *testing.T) {
	for _, tt := range []struct {
		cfg  introspect.Config
		want string
	}{
		{cfg: introspect.Config{URL: "https://idp.example/i?x=1", ClientID: "id", ClientSecret: "s", Timeout: time.Second}, want: "URL: https://idp.example/i, ClientID: \"id\""},
		{cfg: introspect.Config{Issuer: "https://idp.example/t", ClientID: "id", ClientSecret: "s", Timeout: time.Second, AuthMethod: introspect.ClientSecretPost}, want: "URL: discovered from https://idp.example/t, ClientID: \"id\", ClientSecret: [redacted], AuthMethod: client_secret_post"},
	} {
		c, err := introspect.New(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.String(); !strings.HasPrefix(got, "introspect.Client{") || !strings.Contains(got, tt.want) {
			t.Errorf("String() = %s, want it to hold %s", got, tt.want)
		}
	}
}
