package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrDiscovery is wrapped by Discover's errors.
var ErrDiscovery = errors.New("introspect: discovery failed")

// Discover returns the introspection_endpoint of the authorization server
// issuer, read with client (nil: http.DefaultClient) from
// {issuer}/.well-known/openid-configuration (a trailing "/" of issuer
// dropped first, as the jwks package does), or, when that fails, from the
// RFC 8414 metadata at /.well-known/oauth-authorization-server inserted
// between the host and issuer's path (https://h/realms/a →
// https://h/.well-known/oauth-authorization-server/realms/a).
//
// A document is used only if it is a 200 JSON object of at most MaxBody
// bytes whose "issuer" equals issuer exactly, and whose
// introspection_endpoint is an http(s) URL with a host; a plain-http
// endpoint is refused for an https issuer (the rule the jwks package
// applies to jwks_uri: the token and the secret would travel unprotected
// where the issuer is not). Errors wrap ErrDiscovery and say why each
// document was refused.
func Discover(ctx context.Context, client *http.Client, issuer string) (string, error) {
	if client == nil {
		client = http.DefaultClient
	}
	oidc := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	ep, err1 := discoverFrom(ctx, client, oidc, issuer)
	if err1 == nil {
		return ep, nil
	}
	rfc8414, err := metadataURL(issuer)
	if err != nil {
		return "", fmt.Errorf("%w: %w; %w", ErrDiscovery, err1, err)
	}
	ep, err2 := discoverFrom(ctx, client, rfc8414, issuer)
	if err2 != nil {
		return "", fmt.Errorf("%w: %w; %w", ErrDiscovery, err1, err2)
	}
	return ep, nil
}

// metadataURL is RFC 8414 §3.1's well-known URL of issuer.
func metadataURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("issuer %s is not an http(s) URL without query or fragment", redact(issuer))
	}
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

func discoverFrom(ctx context.Context, client *http.Client, u, issuer string) (string, error) {
	body, err := get(ctx, client, u)
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer   string `json:"issuer"`
		Endpoint string `json:"introspection_endpoint"`
	}
	if _, err := parseObject(body); err != nil {
		return "", fmt.Errorf("%s: %w", redact(u), err)
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("%s: %w", redact(u), err)
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("%s names issuer %q, want %q", redact(u), doc.Issuer, issuer)
	}
	p, err := url.Parse(doc.Endpoint)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return "", fmt.Errorf("%s has no usable introspection_endpoint (%q)", redact(u), redact(doc.Endpoint))
	}
	if p.Scheme == "http" && strings.HasPrefix(issuer, "https:") {
		return "", fmt.Errorf("%s names a plain-http introspection_endpoint (%q) for an https issuer", redact(u), redact(doc.Endpoint))
	}
	return doc.Endpoint, nil
}

// get GETs u and returns the body of a 200 JSON answer of at most MaxBody
// bytes.
func get(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, redactErr(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, redactErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		drain(resp.Body)
		return nil, fmt.Errorf("status %d from %s", resp.StatusCode, redact(u))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", redact(u), redactErr(err))
	case len(body) > MaxBody:
		return nil, fmt.Errorf("%s: %w", redact(u), errTooLarge)
	}
	return body, nil
}
