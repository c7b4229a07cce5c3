package authz

import (
	"net/http"
)

// The rule action optional_or_failed and the CORS preflight bypass: what
// decide does before and after a route's decision.

// isPreflight reports whether r is a CORS preflight: OPTIONS with an Origin
// and an Access-Control-Request-Method header (as Envoy's jwt_authn
// bypass_cors_preflight tells one).
func isPreflight(r *Request) bool {
	return r.Method == http.MethodOptions && r.header("origin") != "" && r.header("access-control-request-method") != ""
}

// failsOpen reports whether a route whose action is optional_or_failed
// lets a request pass that was denied for reason: every denial of the
// token (no token, invalid, not enough scope, a failed condition,
// unavailable keys…), but not a request refused before its token is read
// because it is unclear what it is (too many headers, an ambiguous path or
// forwarded headers, a spoofed identity header).
func failsOpen(reason Reason) bool {
	switch reason {
	case ReasonRequestTooLarge, ReasonBadRequest, ReasonSpoofedHeader:
		return false
	}
	return true
}

// failedOpen turns d, the denial of r by ru, a route whose action is
// optional_or_failed, into the allow it lets pass: no token is anonymous,
// as on an optional route; any other denial of the token is an allow that
// keeps the denial's reason and provider (metrics and the audit log count
// it so) and sets no identity header, removing every one jwtauthz may set.
// The token goes upstream as sent unless a provider of ru that reads its
// source has forward_token: false (DropToken): it is then removed as a
// valid one would be, whichever provider it meant.
func (pol *policy) failedOpen(ru *rule, r *Request, d Decision) Decision {
	if d.Reason == ReasonNoToken {
		return pol.anonymous
	}
	a := Decision{Allow: true, Reason: d.Reason, Provider: d.Provider, Remove: pol.managed, Cached: d.Cached, Layer: d.Layer}
	if _, src := ru.extract(r); src != nil && ru.dropsToken(src) {
		a.dropToken(src, r)
	}
	return a
}

// dropsToken reports whether a provider of ru reads tokens from src and
// does not forward them (DropToken).
func (ru *rule) dropsToken(src *TokenSource) bool {
	for _, p := range ru.providers {
		if p.cfg.DropToken && p.hasSource(src) {
			return true
		}
	}
	return false
}

// FailedOpen reports whether d is an allow of a token that failed (a rule
// with action optional_or_failed): its Reason is the failure's.
func (d *Decision) FailedOpen() bool {
	return d.Allow && d.Reason.Status() != http.StatusOK
}
