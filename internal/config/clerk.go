package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jwtauthz/jwtauthz/authz"
)

// clerkProvider is the name of the provider the Clerk preset adds.
const clerkProvider = "clerk"

// clerkBackendJWKS is Clerk's Backend API key set, read with the secret key.
const clerkBackendJWKS = "https://api.clerk.com/v1/jwks"

// clerkEnv reads Clerk's own variable names, the ones a Clerk app already
// has. They rank as environment variables: above the file, below the
// JWTAUTHZ_ ones and the flags.
func (c *Config) clerkEnv(getenv func(string) string) {
	for _, v := range []struct {
		dst   *string
		key   string
		names []string
	}{
		{&c.ClerkPublishableKey, "clerk_publishable_key", []string{"CLERK_PUBLISHABLE_KEY", "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY"}},
		{&c.ClerkDomain, "clerk_domain", []string{"NEXT_PUBLIC_CLERK_DOMAIN"}},
		{&c.ClerkSecretKey, "clerk_secret_key", []string{"CLERK_SECRET_KEY", "JWTAUTHZ_CLERK_SECRET_KEY"}},
	} {
		for _, n := range v.names { // later names win
			if val := getenv(n); val != "" {
				*v.dst = val
				c.from[v.key] = n
			}
		}
	}
}

// clerk returns the provider the Clerk settings describe, or nil if none is
// set. The Frontend API host comes from the publishable key or the domain;
// with the secret key the keys come from the Backend API, and with the
// secret key alone any iss signed by the instance's keys is accepted.
func (c *Config) clerk() (*ProviderConfig, error) {
	if c.ClerkPublishableKey == "" && c.ClerkDomain == "" && c.ClerkSecretKey == "" {
		return nil, nil
	}
	host, err := "", error(nil)
	switch {
	case c.ClerkPublishableKey != "":
		if host, err = clerkHost(c.ClerkPublishableKey); err != nil {
			return nil, &Error{Key: "clerk_publishable_key", Err: err}
		}
	case c.ClerkDomain != "":
		if host, err = clerkDomain(c.ClerkDomain); err != nil {
			return nil, &Error{Key: "clerk_domain", Err: err}
		}
	}
	p := &ProviderConfig{
		Name:              clerkProvider,
		TokenSources:      []authz.TokenSource{authz.BearerSource, {Cookie: "__session"}},
		AuthorizedParties: c.ClerkAuthorizedParties,
	}
	if host != "" {
		p.Issuer = "https://" + host
		p.JWKSURL = p.Issuer + "/.well-known/jwks.json"
	} else {
		p.anyIssuer = true // the secret key's key set is the instance's alone
	}
	if c.ClerkSecretKey != "" {
		p.JWKSURL = clerkBackendJWKS
		p.JWKSHeaders = map[string]string{"Authorization": "Bearer " + c.ClerkSecretKey}
	}
	return p, nil
}

var errClerkKey = errors.New(`a publishable key is "pk_test_" or "pk_live_" followed by the base64 of the Frontend API host and "$"`)

// clerkHost decodes the Frontend API host from a publishable key:
// pk_test_<base64("<host>$")>.
func clerkHost(key string) (string, error) {
	rest, ok := strings.CutPrefix(key, "pk_test_")
	if !ok {
		if rest, ok = strings.CutPrefix(key, "pk_live_"); !ok {
			return "", fmt.Errorf("%w: the prefix is missing", errClerkKey)
		}
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(rest); err != nil {
			return "", fmt.Errorf("%w: %q is not base64", errClerkKey, rest)
		}
	}
	host, ok := strings.CutSuffix(string(b), "$")
	if !ok {
		return "", fmt.Errorf("%w: the decoded value %q does not end in $", errClerkKey, b)
	}
	if !validHost(host) {
		return "", fmt.Errorf("%w: %q is not a host name", errClerkKey, host)
	}
	return host, nil
}

// clerkDomain accepts "clerk.example.com" or "https://clerk.example.com".
func clerkDomain(d string) (string, error) {
	if strings.Contains(d, "://") {
		u, err := url.Parse(d)
		if err != nil || u.Scheme != "https" || u.Path != "" && u.Path != "/" {
			return "", fmt.Errorf("%q: want a host such as clerk.example.com", d)
		}
		d = u.Host
	}
	if !validHost(d) {
		return "", fmt.Errorf("%q is not a host name", d)
	}
	return d, nil
}

func validHost(h string) bool {
	if !strings.Contains(h, ".") || len(h) > 253 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return !strings.HasPrefix(h, ".") && !strings.HasSuffix(h, ".")
}
