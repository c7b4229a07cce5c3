package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/introspect"
)

// introspector is an introspect.Client as the engine asks it: its
// unavailable error (down, slow, breaker open) wraps
// authz.ErrIntrospectionUnavailable, any other error is a failed answer.
type introspector struct{ c *introspect.Client }

var _ authz.Introspector = (*introspector)(nil)

// Introspect implements authz.Introspector.
func (i *introspector) Introspect(ctx context.Context, tok string) (map[string]any, error) {
	m, err := i.c.Introspect(ctx, tok)
	if errors.Is(err, introspect.ErrUnavailable) {
		return nil, fmt.Errorf("%w: %w", authz.ErrIntrospectionUnavailable, err)
	}
	return m, err
}

// introKey is what makes two providers' introspection clients the same: a
// reload keeps a client (its discovered endpoint, its breaker, and the
// engine's cached grants of the provider) whose key is unchanged. The
// secret is kept as its digest.
type introKey struct {
	url, issuer, clientID, method string
	secret                        [32]byte
	timeout                       time.Duration
}

// introspectors are the running introspection clients, by provider name.
type introspectors struct {
	mu      sync.Mutex
	running map[string]*runningIntro
}

type runningIntro struct {
	key introKey
	in  *introspector
}

// update makes a client for each introspection provider of cfg, keeping
// those whose settings are unchanged, and returns them by provider name.
// client makes the requests (the system roots, or --jwks-ca); its own
// timeout gives way to each provider's.
func (s *introspectors) update(cfg *config.Config, client *http.Client, m *metrics) (map[string]authz.Introspector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hc := *client
	hc.Timeout = 0 // each call is bounded by the provider's timeout
	next := map[string]*runningIntro{}
	out := map[string]authz.Introspector{}
	for i, p := range cfg.Providers {
		ic := p.Introspection
		if !ic.Set() {
			continue
		}
		secret, err := p.ClientSecret(fmt.Sprintf("providers[%d]", i))
		if err != nil {
			return nil, err
		}
		k := introKey{url: ic.URL, issuer: p.Issuer, clientID: ic.ClientID, method: ic.AuthMethod,
			secret: sha256.Sum256([]byte(secret)), timeout: ic.TimeoutOrDefault()}
		r := s.running[p.Name]
		if r == nil || r.key != k {
			name := p.Name
			c, err := introspect.New(introspect.Config{
				URL: ic.URL, Issuer: p.Issuer, ClientID: ic.ClientID, ClientSecret: secret,
				AuthMethod: introspect.AuthMethod(ic.AuthMethod), Timeout: k.timeout, HTTPClient: &hc,
				Observe: func(o introspect.Outcome, d time.Duration) { m.observeIntrospection(name, o, d) },
			})
			if err != nil {
				return nil, fmt.Errorf("providers[%d].introspection: %w", i, err)
			}
			r = &runningIntro{key: k, in: &introspector{c}}
		}
		next[p.Name] = r
		out[p.Name] = r.in
		m.introspectionSeries(p.Name)
	}
	s.running = next
	return out, nil
}

// engineConfig is cfg's engine configuration with the running key sources
// and introspection clients (made or kept as cfg says).
func (s *sources) engineConfig(cfg *config.Config, m *metrics) (authz.Config, error) {
	client, err := cfg.JWKSClient()
	if err != nil {
		return authz.Config{}, err
	}
	intro, err := s.intros.update(cfg, client, m)
	if err != nil {
		return authz.Config{}, err
	}
	return cfg.EngineConfigWith(s.keys(), intro), nil
}
