package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
)

// Validate checks every setting. Each problem is an *Error that names the
// key and where its value came from: the flag, the variable, or the file
// and line.
func (c *Config) Validate() error {
	return c.locate(c.validate())
}

func (c *Config) validate() error {
	var errs []error
	bad := func(key, format string, a ...any) { errs = append(errs, invalid(key, format, a...)) }
	hint := func(key, format string, a ...any) { errs = append(errs, invalidHint(key, format, a...)) }
	for _, l := range []struct{ key, addr string }{{"grpc_addr", c.GRPCAddr}, {"http_addr", c.HTTPAddr}, {"admin_addr", c.AdminAddr}} {
		if err := checkAddr(l.addr, l.key == "grpc_addr"); err != nil {
			bad(l.key, "%v", err)
		}
	}
	errs = append(errs, c.checkRanges()...) // durations and numbers, as settings says
	errs = append(errs, c.checkSharedCache()...)
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		hint("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		hint("log_format", "%q is not json or text", c.LogFormat)
	}
	if c.OTLPEndpoint != "" {
		if u, err := url.Parse(c.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			hint("otlp_endpoint", "%q is not an http:// or https:// URL with a host", c.OTLPEndpoint)
		}
	}
	if c.CORSPreflight != "" && c.CORSPreflight != "allow" && c.CORSPreflight != "off" {
		hint("cors_preflight", "%q is not allow or off", c.CORSPreflight)
	}
	if c.OTLPProtocol != "" && c.OTLPProtocol != "grpc" && c.OTLPProtocol != "http/protobuf" {
		hint("otlp_protocol", "%q is not grpc or http/protobuf", c.OTLPProtocol)
	}
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		hint("tls_cert", "needs tls_key: tls_cert and tls_key go together")
	case c.TLSCert == "" && c.TLSKey != "":
		hint("tls_key", "needs tls_cert: tls_cert and tls_key go together")
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		hint("tls_client_ca", "needs tls_cert and tls_key")
	}
	errs = append(errs, checkAlgorithms("algorithms", c.Algorithms))
	if c.Issuer != "" && c.JWKSURL == "" {
		errs = append(errs, checkURL("issuer", c.Issuer))
	}
	if authz.IsIssuerTemplate(c.Issuer) {
		hint("issuer", "%q is an issuer template: write it in a providers entry, with its tenants", c.Issuer)
	}
	if c.JWKSURL != "" {
		errs = append(errs, checkURL("jwks_url", c.JWKSURL))
		if c.Issuer == "" {
			hint("jwks_url", "needs issuer")
		}
	}
	if !slices.Contains([]authz.PathCase{authz.PathCaseUnset, authz.PathCaseSensitive, authz.PathCaseInsensitive}, authz.PathCase(c.PathCase)) {
		hint("path_case", "%q is not sensitive or insensitive (leave path_case out when the upstream's way is not known)", c.PathCase)
	}
	errs = append(errs, checkAudiences("audiences", c.Audiences))
	if c.JWKSCacheDir != "" {
		errs = append(errs, checkCacheDir("jwks_cache_dir", c.JWKSCacheDir))
	}
	names := map[string]bool{}
	if c.Issuer != "" {
		names[defaultProvider] = true
	}
	for i, p := range c.Providers {
		key := fmt.Sprintf("providers[%d]", i)
		errs = append(errs, p.validate(key, names))
		errs = append(errs, p.checkTokenChecks(key, c.lines)...)
		errs = append(errs, p.checkIntrospection(key)...)
		if c.HTTPAddr != "" {
			errs = append(errs, p.checkForwardAuth(key))
		}
	}
	clerk, err := c.clerk()
	if err != nil {
		errs = append(errs, err)
	} else if clerk != nil && names[clerk.Name] {
		hint(c.authzKey(fmt.Sprintf("providers[%d]", len(c.AllProviders())-1)), "the Clerk preset adds a provider named %q, which providers already has", clerk.Name)
	}
	if len(c.Audiences) > 0 && c.Issuer == "" {
		more := ""
		if clerk != nil {
			more = " (the Clerk preset checks no aud: to check one, write it out as a providers entry)"
		}
		hint("audiences", "applies to the provider of issuer, which is not set; give each provider its own audiences%s", more)
	}
	return errors.Join(errs...)
}

// checkAudiences refuses an empty audience: it stands for no API, and
// leaving audiences out is how aud goes unchecked.
func checkAudiences(key string, auds []string) error {
	for i, a := range auds {
		if a == "" {
			return invalidHint(fmt.Sprintf("%s[%d]", key, i), "must not be empty (leave audiences out to not check aud)")
		}
	}
	return nil
}

// checkCacheDir refuses a cache dir that is missing, that jwtauthz cannot
// write, or that another user could have put files in (jwks.CheckCacheDir):
// start, reload and --check-config alike. Such a user would choose the keys
// tokens are checked with during an IdP outage.
func checkCacheDir(key, dir string) error {
	err := jwks.CheckCacheDir(dir)
	if err == nil {
		return nil
	}
	return &Error{Key: key, Err: fmt.Errorf("%w; use a directory that only the user jwtauthz runs as can write: create it as that user with `mkdir -p -m 0700 %s`", err, dir), noExample: true}
}

// checkForwardAuth refuses what the HTTP forward-auth listener cannot do:
// with forward_token false it can drop a header or rewrite the cookie, but
// not remove a query parameter (gRPC ext_authz has
// query_parameters_to_remove; forward-auth cannot rewrite the URI), so a
// query token would reach the upstream.
func (p *ProviderConfig) checkForwardAuth(key string) error {
	if p.ForwardToken == nil || *p.ForwardToken {
		return nil
	}
	for j, s := range p.TokenSources {
		if s.Query != "" && s.Header == "" && s.Cookie == "" {
			return invalidHint(key+".forward_token", "false cannot be honoured for token_sources[%d] (query %s) by the HTTP forward-auth listener, which cannot remove a query parameter; disable http_addr (set it to \"\") and use gRPC ext_authz, or keep the token in a header or cookie", j, s.Query)
		}
	}
	return nil
}

// Unprefixed names, per provider, the headers it sets upstream (its
// claim_headers and payload_header) that are not named x-auth-…. A
// forward-auth proxy copies only the headers it is told to from jwtauthz's
// answer, and the shipped envoy-http.yaml and the README's Traefik example
// copy that prefix: a header they do not copy keeps the client's copy
// whenever jwtauthz sets it. (gRPC ext_authz sets every one itself.)
func (c *Config) Unprefixed() [][2]string {
	var out [][2]string
	for _, p := range c.AllProviders() {
		hs := slices.Sorted(maps.Keys(p.ClaimHeaders))
		if p.PayloadHeader != "" {
			hs = append(hs, p.PayloadHeader)
		}
		for _, h := range hs {
			if !strings.HasPrefix(strings.ToLower(h), "x-auth-") {
				out = append(out, [2]string{p.Name, h})
			}
		}
	}
	return out
}

const defaultProvider = "default"

func (p *ProviderConfig) validate(key string, names map[string]bool) error {
	var errs []error
	bad := func(sub, format string, a ...any) { errs = append(errs, invalid(key+"."+sub, format, a...)) }
	hint := func(sub, format string, a ...any) { errs = append(errs, invalidHint(key+"."+sub, format, a...)) }
	switch {
	case p.Name == "":
		bad("name", "is required")
	case names[p.Name]:
		hint("name", "%q is used twice", p.Name)
	}
	names[p.Name] = true
	switch {
	case p.Issuer == "" && !p.Introspection.Set():
		bad("issuer", "is required")
	case p.Introspection.Set():
		// checkIntrospection: the issuer is optional, or discovers the endpoint
	case p.JWKSURL == "" && p.JWKSFile == "" && !authz.IsIssuerTemplate(p.Issuer): // a template: checkTenants
		// Discovery needs an issuer that is a URL. With the keys' location
		// given, any iss is fine (Google also signs "accounts.google.com").
		errs = append(errs, checkURL(key+".issuer", p.Issuer))
	}
	if p.JWKSURL != "" && p.JWKSFile != "" {
		hint("jwks_file", "is exclusive with jwks_url")
	}
	if p.JWKSURL != "" {
		errs = append(errs, checkURL(key+".jwks_url", p.JWKSURL))
	}
	if len(p.Algorithms) > 0 {
		errs = append(errs, checkAlgorithms(key+".algorithms", p.Algorithms))
	}
	errs = append(errs, checkAudiences(key+".audiences", p.Audiences))
	for j, s := range p.TokenSources {
		n := 0
		for _, v := range []string{s.Header, s.Cookie, s.Query} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			bad(fmt.Sprintf("token_sources[%d]", j), "set exactly one of header, cookie, query")
		}
		if s.Prefix != "" && s.Header == "" {
			bad(fmt.Sprintf("token_sources[%d].prefix", j), "goes with header")
		}
	}
	for _, h := range slices.Sorted(maps.Keys(p.ClaimHeaders)) {
		if !validHeaderName(h) {
			bad("claim_headers", "%q is not a header name", h)
		}
	}
	if p.PayloadHeader != "" && !validHeaderName(p.PayloadHeader) {
		bad("payload_header", "%q is not a header name", p.PayloadHeader)
	}
	errs = append(errs, p.checkMetadata(key))
	return errors.Join(errs...)
}

func validHeaderName(h string) bool {
	if h == "" || strings.HasPrefix(h, ":") {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func checkAlgorithms(key string, algs []string) error {
	if len(algs) == 0 {
		return invalid(key, "must not be empty")
	}
	for _, a := range algs {
		if !slices.Contains(authz.DefaultAlgorithms, a) {
			return invalidHint(key, "%q is not allowed (allowed: %s)", a, strings.Join(authz.DefaultAlgorithms, ","))
		}
	}
	return nil
}

func checkURL(key, s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return invalid(key, "%q is not an http(s) URL", s)
	case u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
		return invalid(key, "%q is not an http(s) URL", u.Redacted()) // never a password
	}
	return nil
}

// checkAddr accepts "", host:port, and (for gRPC) unix:///path.
func checkAddr(addr string, unixOK bool) error {
	if addr == "" {
		return nil
	}
	if p, ok := strings.CutPrefix(addr, "unix://"); ok {
		if !unixOK || !strings.HasPrefix(p, "/") {
			return fmt.Errorf("%q: unix sockets are unix:///absolute/path, on the gRPC listener", addr)
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	return nil
}
