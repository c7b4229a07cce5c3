package config

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/internal/safefile"
	"github.com/jwtauthz/jwtauthz/jwks"
)

// AllProviders returns every configured provider: the one the flags describe
// (named "default"), the file's, then the Clerk preset's, each with the
// default algorithms where it names none. (validate reports a bad Clerk
// setting.)
func (c *Config) AllProviders() []ProviderConfig {
	var ps []ProviderConfig
	if c.Issuer != "" {
		ps = append(ps, ProviderConfig{Name: defaultProvider, Issuer: c.Issuer, JWKSURL: c.JWKSURL, Audiences: c.Audiences})
	}
	ps = append(ps, c.Providers...)
	if p, err := c.clerk(); err == nil && p != nil {
		ps = append(ps, *p)
	}
	for i := range ps {
		if len(ps[i].Algorithms) == 0 {
			ps[i].Algorithms = c.Algorithms
		}
	}
	return ps
}

// JWKSClient is the HTTP client of every key source: the system roots, or
// the CAs of --jwks-ca.
func (c *Config) JWKSClient() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.JWKSCA != "" {
		pem, err := safefile.Read(c.JWKSCA, safefile.MaxPEM)
		if err != nil {
			return nil, &Error{Key: "jwks_ca", Err: err, noExample: true}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, invalidHint("jwks_ca", "%s holds no PEM certificate", c.JWKSCA)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: c.JWKSTimeout}, nil
}

// JWKSConfig is the key source configuration of the provider p, fetched
// with client, logging to log and reporting each fetch to observe.
func (c *Config) JWKSConfig(p ProviderConfig, client *http.Client, log *slog.Logger, observe func(jwks.FetchResult)) jwks.Config {
	h := http.Header{}
	for k, v := range p.JWKSHeaders {
		h.Set(k, v)
	}
	var discovery string
	if authz.IsIssuerTemplate(p.Issuer) {
		discovery = p.discoveryURL() // the template's document: Entra ID's common one
	}
	return jwks.Config{
		Name: p.Name, Issuer: p.Issuer, URL: p.JWKSURL, File: p.JWKSFile, Discovery: discovery, Header: h, Client: client,
		Refresh: c.JWKSRefresh, MinRefresh: c.JWKSMinRefresh, Timeout: c.JWKSTimeout,
		CacheDir: c.JWKSCacheDir, CacheMaxAge: c.JWKSCacheMaxAge, Logger: log, Observe: observe,
	}
}

// EngineConfig is the authz configuration, the keys of each provider taken
// from keys by name. An introspection provider has no introspector:
// EngineConfigWith gives it one.
func (c *Config) EngineConfig(keys map[string]authz.KeySource) authz.Config {
	return c.EngineConfigWith(keys, nil)
}

// EngineConfigWith is EngineConfig, the introspector of each introspection
// provider taken from intro by name.
func (c *Config) EngineConfigWith(keys map[string]authz.KeySource, intro map[string]authz.Introspector) authz.Config {
	ac := authz.DefaultConfig() // the limits no setting gives: negative TTL, dedup
	ac.Rules = c.Rules
	ac.PathCase = authz.PathCase(c.PathCase)
	ac.CORSPreflight = c.CORSPreflight == "allow"
	ac.ClockSkew, ac.CacheTTL, ac.CacheSize = c.ClockSkew, c.CacheTTL, c.CacheSize
	ac.NegativeCacheSize, ac.MaxTokenSize, ac.NetworkWait = c.NegativeCacheSize, c.MaxTokenSize, c.NetworkWait
	for _, p := range c.AllProviders() {
		ac.Providers = append(ac.Providers, authz.ProviderConfig{
			Name: p.Name, Issuer: p.Issuer, Audiences: p.Audiences, Algorithms: p.Algorithms, Keys: keys[p.Name],
			TokenSources: p.TokenSources, ClaimHeaders: p.ClaimHeaders, PayloadHeader: p.PayloadHeader,
			DropToken: p.ForwardToken != nil && !*p.ForwardToken, AuthorizedParties: p.AuthorizedParties,
			AnyIssuer: p.anyIssuer,
			Tenants:   p.Tenants, RequiredTyp: p.RequiredTyp, MaxLifetime: p.MaxLifetime, Subjects: p.Subjects,
		})
		last := &ac.Providers[len(ac.Providers)-1]
		last.MetadataClaims, last.NoMetadata = p.MetadataClaims, p.Metadata != nil && !*p.Metadata
		if p.Introspection.Set() {
			ip := &ac.Providers[len(ac.Providers)-1]
			ip.Introspector, ip.IntrospectJWTs = intro[p.Name], p.IntrospectJWTs
			ip.IntrospectionCacheTTL = p.Introspection.CacheTTLOrDefault()
		}
	}
	return ac
}

// Check builds everything a configuration describes without starting it:
// what `serve --check-config` runs. Its errors are located as Validate's
// are.
func (c *Config) Check() error {
	ps := c.AllProviders()
	if len(ps) == 0 {
		return c.Locate(ErrNoIssuer)
	}
	if _, err := c.JWKSClient(); err != nil {
		return c.locate(err)
	}
	keys := map[string]authz.KeySource{}
	intro := map[string]authz.Introspector{}
	for _, p := range ps {
		if p.Introspection.Set() {
			intro[p.Name] = unchecked{}
		} else {
			keys[p.Name] = jwks.New(jwks.Config{Name: p.Name})
		}
	}
	return c.locate(authz.Validate(c.EngineConfigWith(keys, intro)))
}
