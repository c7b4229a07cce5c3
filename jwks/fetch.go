package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Errors of fetching.
var (
	// ErrHTTPStatus means the IdP answered with a status other than 200.
	ErrHTTPStatus = errors.New("jwks: unexpected HTTP status")
	// ErrDiscovery means the discovery document was unusable.
	ErrDiscovery = errors.New("jwks: discovery failed")
)

// fetch gets, parses and publishes a key set, and records the attempt. fl
// takes joiners until the set is published, so that a check that missed a
// kid just before the publish joins it and then finds the kid, instead of
// meeting the cooldown. The disk is written after.
func (s *Source) fetch(ctx context.Context, fl *inflight) error {
	start := s.cfg.Now()
	var status int
	set, maxAge, body, err := s.get(withStatus(ctx, &status))
	changed := err == nil && set != s.cur.Load()
	if changed {
		s.publish(set)
		s.setLastBody(body)
	}
	s.mu.Lock()
	if s.inflight == fl {
		s.inflight = nil
	}
	s.mu.Unlock()
	var saveErr error
	if changed {
		saveErr = s.saveCached(body)
	}
	r := s.record(start, maxAge, err, saveErr)
	r.Status = status
	if fl != nil {
		r.Triggered = fl.triggered
	}
	if s.cfg.Observe != nil {
		s.cfg.Observe(r)
	}
	if fl != nil && fl.trace != nil {
		fl.trace.End(r) // no joiner comes after: inflight is taken back
	}
	return err
}

// get reads the key set from the file or the URL. When the URL came from
// discovery, any failure (no answer, a bad status, a body that is not a
// usable set) forgets it, so that discovery is done again next time.
func (s *Source) get(ctx context.Context) (*Set, time.Duration, []byte, error) {
	if s.cfg.File != "" {
		return s.getFile()
	}
	set, maxAge, body, err := s.getURL(ctx)
	if err != nil && s.cfg.URL == "" {
		s.forgetDiscovered()
	}
	return set, maxAge, body, err
}

func (s *Source) getURL(ctx context.Context) (*Set, time.Duration, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	u, err := s.jwksURL(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	body, h, err := s.httpGet(ctx, u)
	if err != nil {
		return nil, 0, nil, err
	}
	set, err := Parse(body, s.cfg.Now())
	if err != nil {
		return nil, 0, nil, err
	}
	return set, cacheMaxAge(h), body, nil
}

func (s *Source) getFile() (*Set, time.Duration, []byte, error) {
	body, err := readFile(s.cfg.File)
	if err != nil {
		return nil, 0, nil, err
	}
	if cur := s.cur.Load(); cur != nil && string(body) == string(s.lastBody()) {
		return cur, 0, body, nil // unchanged file: keep the snapshot
	}
	set, err := Parse(body, s.cfg.Now())
	if err != nil {
		return nil, 0, nil, err
	}
	return set, 0, body, nil
}

// record stores the outcome of an attempt and logs failures and recoveries;
// saveErr is that of saving the set to the cache dir. It returns what the
// attempt did, to observe.
func (s *Source) record(start time.Time, maxAge time.Duration, err, saveErr error) FetchResult {
	s.mu.Lock()
	prev := s.lastErr
	s.lastTry, s.lastErr = start, err
	s.fetches++
	if err == nil {
		s.maxAge, s.good = maxAge, s.cfg.Now()
	}
	s.mu.Unlock()
	switch {
	case err != nil:
		s.cfg.Logger.Warn("jwks: fetch failed", "error", err, "keys_in_use", s.cur.Load().Len())
	case prev != nil:
		s.cfg.Logger.Info("jwks: fetch recovered", "keys", s.cur.Load().Len())
	}
	return FetchResult{Provider: s.cfg.Name, Err: err, Duration: s.cfg.Now().Sub(start), Keys: s.cur.Load().Len(), CacheErr: saveErr}
}

// httpGet GETs u with the configured headers and returns a body of at most
// MaxBody bytes from a 200 answer.
func (s *Source) httpGet(ctx context.Context, u string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, redactErr(err)
	}
	for k, v := range s.cfg.Header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return nil, nil, redactErr(err)
	}
	defer resp.Body.Close()
	noteStatus(ctx, resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, nil, fmt.Errorf("%w %d from %s", ErrHTTPStatus, resp.StatusCode, redact(u))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("jwks: reading %s: %w", redact(u), err)
	}
	if len(body) > MaxBody {
		return nil, nil, fmt.Errorf("%w: body from %s exceeds %d bytes", ErrMalformed, redact(u), MaxBody)
	}
	return body, resp.Header, nil
}

// jwksURL returns the configured URL or the one discovery gives.
func (s *Source) jwksURL(ctx context.Context) (string, error) {
	s.mu.Lock()
	u := s.urlLocked()
	s.mu.Unlock()
	if u != "" {
		return u, nil
	}
	u, err := s.discover(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.discovered = u
	s.mu.Unlock()
	return u, nil
}

func (s *Source) urlLocked() string {
	switch {
	case s.cfg.File != "":
		return "file://" + s.cfg.File
	case s.cfg.URL != "":
		return s.cfg.URL
	}
	return s.discovered
}

func (s *Source) forgetDiscovered() {
	s.mu.Lock()
	s.discovered = ""
	s.mu.Unlock()
}

// discover reads {issuer}/.well-known/openid-configuration (or
// Config.Discovery) and returns its jwks_uri; the document must name the
// configured issuer exactly.
func (s *Source) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(s.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	if s.cfg.Discovery != "" {
		u = s.cfg.Discovery
	}
	body, _, err := s.httpGet(ctx, u)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrDiscovery, err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrDiscovery, redact(u), err)
	}
	if doc.Issuer != s.cfg.Issuer {
		return "", fmt.Errorf("%w: %s names issuer %q, want %q", ErrDiscovery, redact(u), doc.Issuer, s.cfg.Issuer)
	}
	p, err := url.Parse(doc.JWKSURI)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return "", fmt.Errorf("%w: %s has no usable jwks_uri (%q)", ErrDiscovery, redact(u), doc.JWKSURI)
	}
	if p.Scheme == "http" && strings.HasPrefix(u, "https:") {
		// The keys would come unprotected where the issuer is not.
		return "", fmt.Errorf("%w: %s names a plain-http jwks_uri (%q) for an https issuer", ErrDiscovery, redact(u), redact(doc.JWKSURI))
	}
	return doc.JWKSURI, nil
}

// maxMaxAge caps a max-age, whose seconds could overflow a Duration; any
// value this long is longer than a refresh period and so ignored.
const maxMaxAge = 365 * 24 * time.Hour

// cacheMaxAge returns Cache-Control's max-age, at most maxMaxAge, or 0.
func cacheMaxAge(h http.Header) time.Duration {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.TrimSpace(d)
			if rest, ok := strings.CutPrefix(strings.ToLower(d), "max-age="); ok {
				if n, err := strconv.ParseInt(rest, 10, 64); err == nil && n > 0 {
					return time.Duration(min(n, int64(maxMaxAge/time.Second))) * time.Second
				}
			}
		}
	}
	return 0
}

// redact drops a URL's query and user info, which may carry secrets.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User, p.RawQuery, p.Fragment = nil, "", ""
	return p.String()
}

// redactErr redacts the URL that net/http quotes in its errors (a refused
// connection, a timeout, a DNS failure, an unparsable URL); the cause stays
// for errors.Is.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: redact(ue.URL), Err: ue.Err}
	}
	return err
}

// readFile reads a key file of at most MaxBody bytes. It must be a regular
// file (a symbolic link to one is followed): a FIFO is opened without
// waiting for a writer, and refused, so that it holds up neither a fetch
// nor the stop that waits for it.
func readFile(name string) ([]byte, error) {
	f, err := openNonBlock(name)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		if err == nil {
			err = fmt.Errorf("%s is not a regular file (%v)", name, fi.Mode().Type())
		}
		return nil, fmt.Errorf("jwks: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(f, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: reading %s: %w", name, err)
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrMalformed, name, MaxBody)
	}
	return body, nil
}
