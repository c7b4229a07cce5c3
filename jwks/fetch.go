package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
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
// stops taking joiners before the set is published, so that nobody joins a
// fetch whose answer is already in.
func (s *Source) fetch(ctx context.Context, fl *inflight) error {
	start := s.cfg.Now()
	set, maxAge, body, err := s.get(ctx)
	s.mu.Lock()
	if s.inflight == fl {
		s.inflight = nil
	}
	s.mu.Unlock()
	if err == nil && set != s.cur.Load() {
		s.publish(set)
		s.saveCached(body)
	}
	s.record(start, maxAge, err)
	return err
}

func (s *Source) get(ctx context.Context) (set *Set, maxAge time.Duration, body []byte, err error) {
	if s.cfg.File != "" {
		body, err = readFile(s.cfg.File)
	} else {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		var u string
		if u, err = s.jwksURL(ctx); err == nil {
			var h http.Header
			body, h, err = s.httpGet(ctx, u)
			maxAge = cacheMaxAge(h)
			if err != nil {
				s.forgetDiscovered()
			}
		}
	}
	if err != nil {
		return nil, 0, nil, err
	}
	if cur := s.cur.Load(); s.cfg.File != "" && cur != nil && string(body) == string(s.lastBody()) {
		return cur, 0, body, nil // unchanged file: keep the snapshot
	}
	if set, err = Parse(body, s.cfg.Now()); err != nil {
		return nil, 0, nil, err
	}
	return set, maxAge, body, nil
}

// record stores the outcome of an attempt and logs failures and recoveries.
func (s *Source) record(start time.Time, maxAge time.Duration, err error) {
	s.mu.Lock()
	prev := s.lastErr
	s.lastTry, s.lastErr = start, err
	s.fetches++
	if err == nil {
		s.maxAge = maxAge
	}
	s.mu.Unlock()
	switch {
	case err != nil:
		s.cfg.Logger.Warn("jwks: fetch failed", "error", err, "keys_in_use", s.cur.Load().Len())
	case prev != nil:
		s.cfg.Logger.Info("jwks: fetch recovered", "keys", s.cur.Load().Len())
	}
	if s.cfg.Observe != nil {
		s.cfg.Observe(FetchResult{Provider: s.cfg.Name, Err: err, Duration: s.cfg.Now().Sub(start), Keys: s.cur.Load().Len()})
	}
}

// httpGet GETs u with the configured headers and returns a body of at most
// MaxBody bytes from a 200 answer.
func (s *Source) httpGet(ctx context.Context, u string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range s.cfg.Header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
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

// discover reads {issuer}/.well-known/openid-configuration and returns its
// jwks_uri; the document must name the configured issuer exactly.
func (s *Source) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(s.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	body, _, err := s.httpGet(ctx, u)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrDiscovery, err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrDiscovery, u, err)
	}
	if doc.Issuer != s.cfg.Issuer {
		return "", fmt.Errorf("%w: %s names issuer %q, want %q", ErrDiscovery, u, doc.Issuer, s.cfg.Issuer)
	}
	if p, err := url.Parse(doc.JWKSURI); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return "", fmt.Errorf("%w: %s has no usable jwks_uri (%q)", ErrDiscovery, u, doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

// cacheMaxAge returns Cache-Control's max-age, or 0.
func cacheMaxAge(h http.Header) time.Duration {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.TrimSpace(d)
			if rest, ok := strings.CutPrefix(strings.ToLower(d), "max-age="); ok {
				if n, err := strconv.Atoi(rest); err == nil && n > 0 {
					return time.Duration(n) * time.Second
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

func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: reading %s: %w", name, err)
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrMalformed, name, MaxBody)
	}
	return body, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

func (s *Source) cachePath() string {
	if s.cfg.CacheDir == "" {
		return ""
	}
	return filepath.Join(s.cfg.CacheDir, unsafeName.ReplaceAllString(s.cfg.Name, "_")+".jwks.json")
}

// loadCached publishes the set saved by an earlier run, if any; its age is
// the file's.
func (s *Source) loadCached() {
	p := s.cachePath()
	if p == "" {
		return
	}
	body, err := readFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var fi os.FileInfo
	if err == nil {
		fi, err = os.Stat(p)
	}
	var set *Set
	if err == nil {
		set, err = Parse(body, fi.ModTime())
	}
	if err != nil {
		s.cfg.Logger.Warn("jwks: cached key set unusable", "path", p, "error", err)
		return
	}
	s.publish(set)
	s.setLastBody(body)
	s.cfg.Logger.Info("jwks: loaded cached key set", "path", p, "keys", set.Len(), "fetched", set.Fetched)
}

// saveCached writes body to the cache dir with an atomic rename.
func (s *Source) saveCached(body []byte) {
	s.setLastBody(body)
	p := s.cachePath()
	if p == "" {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".jwks-*")
	if err == nil {
		_, err = tmp.Write(body)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), p)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
	}
	if err != nil {
		s.cfg.Logger.Warn("jwks: cannot save key set", "path", p, "error", err)
	}
}
