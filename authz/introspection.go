package authz

import (
	"context"
	"errors"
)

// Introspector asks a provider's authorization server about a token (RFC
// 7662 token introspection). The introspect package implements it; the
// consumer owns the interface.
type Introspector interface {
	// Introspect returns the members of the server's answer for token (a
	// JSON object; the engine checks "active", exp, nbf, iss, aud and
	// token_type itself). An error wrapping ErrIntrospectionUnavailable
	// says the server could not be asked in time (down, slow, a circuit
	// breaker open): the check answers 503 unavailable and nothing is
	// remembered. Any other error (a status other than 200, a body that is
	// not one JSON object, one too large) is a denial,
	// introspection_failed. Introspect returns by the time ctx ends.
	Introspect(ctx context.Context, token string) (map[string]any, error)
}

// ErrIntrospectionUnavailable is wrapped by an Introspector's error when the
// authorization server could not be asked in time.
var ErrIntrospectionUnavailable = errors.New("authz: introspection endpoint unavailable")
