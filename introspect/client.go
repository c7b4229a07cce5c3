// Package introspect asks an OAuth 2.0 authorization server about a token
// (RFC 7662 token introspection), for tokens jwtauthz cannot verify itself:
// opaque access tokens, or JWTs a provider wants introspected.
//
// A Client POSTs the token to one endpoint with its client credentials and
// returns the answer's members; it never decides whether the token is
// good (the engine, authz, does: "active" must be the JSON boolean true,
// then exp, nbf, iss, aud). What it decides is whether there is an answer
// (a body whose "active" is not a JSON boolean is none):
//
//   - an error wrapping ErrUnavailable: the server could not be asked in
//     time. A refused or reset connection, a body cut short, the call's
//     Timeout or the caller's deadline, a 429, 502, 503 or 504, a failed
//     discovery, or the circuit breaker open (also ErrBreakerOpen).
//   - an error wrapping ErrFailed: the server answered, but not with a
//     usable answer. Any other status (a 401 for wrong client
//     credentials, a 500), a Content-Type other than application/json
//     (parameters are ignored), a body over MaxBody, or a body
//     ParseResponse refuses.
//
// A circuit breaker per Client counts unavailable calls in a row (not those
// whose caller cancelled: that says nothing of the server). At
// BreakerThreshold it opens: calls fail at once for BreakerCooldown, then
// one probe at a time is let through; any answer closes it, another
// unavailable one opens it for twice as long, up to BreakerMaxCooldown.
//
// Errors name the endpoint (without user info, query or fragment) and
// never hold the token or the client secret.
package introspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Errors of Introspect; see the package comment.
var (
	// ErrUnavailable means the server could not be asked in time.
	ErrUnavailable = errors.New("introspect: endpoint unavailable")
	// ErrFailed means the server answered, but not with a usable answer.
	ErrFailed = errors.New("introspect: introspection failed")
	// ErrBreakerOpen is wrapped, beside ErrUnavailable, by a call the open
	// circuit breaker refused without asking.
	ErrBreakerOpen = errors.New("introspect: circuit breaker open")
)

// Client asks one introspection endpoint. It is safe for concurrent use.
type Client struct {
	cfg      Config
	http     *http.Client // no redirects, no jar
	discover *http.Client // the configured client, for discovery
	br       *breaker

	mu       sync.Mutex
	endpoint string        // cfg.URL, or the discovered one
	finding  chan struct{} // closed when the discovery under way ends
}

// New checks cfg and returns its Client.
func New(cfg Config) (*Client, error) {
	if err := check(&cfg); err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	noRedirect := *hc
	noRedirect.Jar = nil
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{
		cfg: cfg, http: &noRedirect, discover: hc, endpoint: cfg.URL,
		br: newBreaker(cfg.BreakerThreshold, cfg.BreakerCooldown, cfg.BreakerMaxCooldown),
	}, nil
}

// String describes the client without the secret.
func (c *Client) String() string { return strings.Replace(c.cfg.String(), "Config", "Client", 1) }

// GoString is String.
func (c *Client) GoString() string { return c.String() }

// LogValue is String for log/slog.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// BreakerOpen reports whether the circuit breaker refuses calls now.
func (c *Client) BreakerOpen() bool { return c.br.isOpen(c.cfg.Now()) }

// Introspect asks the endpoint about token and returns the answer's members
// (see ParseResponse), or an error wrapping ErrUnavailable or ErrFailed. It
// returns by the time ctx ends or Timeout passes. An empty token is
// ErrFailed, not asked.
func (c *Client) Introspect(ctx context.Context, token string) (map[string]any, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: empty token", ErrFailed)
	}
	start := c.cfg.Now()
	ok, probe := c.br.allow(start)
	if !ok {
		c.observe(OutcomeBreakerOpen, 0)
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, ErrBreakerOpen)
	}
	m, err := c.call(ctx, token)
	unavailable := errors.Is(err, ErrUnavailable)
	// The caller giving up says nothing of the server; its deadline does.
	inconclusive := unavailable && errors.Is(ctx.Err(), context.Canceled)
	c.br.result(c.cfg.Now(), probe, unavailable, inconclusive)
	switch {
	case unavailable:
		c.observe(OutcomeUnavailable, c.cfg.Now().Sub(start))
	case err != nil:
		c.observe(OutcomeFailed, c.cfg.Now().Sub(start))
	case Active(m):
		c.observe(OutcomeActive, c.cfg.Now().Sub(start))
	default:
		c.observe(OutcomeInactive, c.cfg.Now().Sub(start))
	}
	return m, err
}

func (c *Client) observe(o Outcome, d time.Duration) {
	if c.cfg.Observe != nil {
		c.cfg.Observe(o, d)
	}
}

// call makes one request within Timeout.
func (c *Client) call(ctx context.Context, token string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u, err := c.url(ctx)
	if err != nil {
		return nil, err
	}
	body, err := c.post(ctx, u, token)
	if err != nil {
		if c.cfg.URL == "" && errors.Is(err, ErrUnavailable) {
			c.forget(u)
		}
		return nil, err
	}
	return ParseResponse(body)
}

func (c *Client) post(ctx context.Context, u, token string) ([]byte, error) {
	resp, err := c.http.Do(c.request(ctx, u, token))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, redactErr(err))
	}
	defer resp.Body.Close()
	return c.read(resp, u)
}

// request builds the POST; it cannot fail, since the URL was checked.
func (c *Client) request(ctx context.Context, u, token string) *http.Request {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if c.cfg.AuthMethod == ClientSecretPost {
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", c.cfg.ClientSecret)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.cfg.AuthMethod == ClientSecretBasic {
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret))
	}
	return req
}

// read returns the body of a 200 JSON answer of at most MaxBody bytes.
func (c *Client) read(resp *http.Response, u string) ([]byte, error) {
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		drain(resp.Body)
		return nil, fmt.Errorf("%w: status %d from %s", ErrUnavailable, resp.StatusCode, redact(u))
	default:
		drain(resp.Body)
		return nil, fmt.Errorf("%w: status %d from %s", ErrFailed, resp.StatusCode, redact(u))
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		drain(resp.Body)
		return nil, fmt.Errorf("%w: Content-Type %q from %s is not application/json", ErrFailed, resp.Header.Get("Content-Type"), redact(u))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	switch {
	case err != nil: // cut short, reset, or the deadline
		return nil, fmt.Errorf("%w: reading the answer from %s: %w", ErrUnavailable, redact(u), redactErr(err))
	case len(body) > MaxBody:
		return nil, fmt.Errorf("%w: answer from %s %w", ErrFailed, redact(u), errTooLarge)
	}
	return body, nil
}

func drain(r io.Reader) { io.Copy(io.Discard, io.LimitReader(r, 4096)) }

// url returns the endpoint: the configured one, the one discovered before,
// or one discovered now. Concurrent calls share one discovery; each waits
// for it only as long as its own ctx lasts.
func (c *Client) url(ctx context.Context) (string, error) {
	for {
		c.mu.Lock()
		if c.endpoint != "" {
			u := c.endpoint
			c.mu.Unlock()
			return u, nil
		}
		if ch := c.finding; ch != nil {
			c.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return "", fmt.Errorf("%w: waiting for discovery: %w", ErrUnavailable, ctx.Err())
			}
		}
		ch := make(chan struct{})
		c.finding = ch
		c.mu.Unlock()
		u, err := Discover(ctx, c.discover, c.cfg.Issuer)
		c.mu.Lock()
		c.endpoint, c.finding = u, nil
		c.mu.Unlock()
		close(ch)
		if err != nil {
			// A discovery that failed is the server not ready to be
			// asked: the breaker counts it, and the next call tries again.
			return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return u, nil
	}
}

// forget drops a discovered endpoint that did not answer, so that the next
// call discovers again (the document may have moved it).
func (c *Client) forget(u string) {
	c.mu.Lock()
	if c.endpoint == u {
		c.endpoint = ""
	}
	c.mu.Unlock()
}

// redact drops a URL's user info, query and fragment, which may carry
// secrets.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User, p.RawQuery, p.ForceQuery, p.Fragment, p.RawFragment = nil, "", false, "", ""
	return p.String()
}

// redactErr redacts the URL net/http quotes in its errors; the cause stays
// for errors.Is.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: redact(ue.URL), Err: ue.Err}
	}
	return err
}
