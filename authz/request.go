package authz

import "strings"

// Request is what the core needs of one HTTP request.
type Request struct {
	Method string
	Host   string
	Path   string // as sent, query included
	// RequestID is the x-request-id header: checks with the same one, the
	// same token and the same route share a decision.
	RequestID string
	Headers   Headers
	// Oversize says the adapter could not read every header (more than it
	// takes): the check is denied, since a token might be among the rest.
	Oversize bool
	// Ambiguous says the adapter could not tell the original request for
	// sure (forward-auth headers that disagree): the check is denied.
	Ambiguous bool
}

func (r *Request) header(name string) string {
	if r.Headers == nil {
		return ""
	}
	return r.Headers.Get(name)
}

// Headers gives a request's headers by lower-case name; several values of
// one header come joined as HeaderJoiner says, as Envoy joins them.
type Headers interface {
	Get(name string) string
}

// MapHeaders are headers keyed by lower-case name, as in Envoy's CheckRequest.
type MapHeaders map[string]string

// HeaderJoiner returns what an adapter joins several values of the header
// name with, so that Headers.Get answers as Envoy does: "," (two
// Authorization headers are then one malformed value rather than a
// choice), but "; " for cookie (RFC 9113 §8.2.3), whose values the token
// sources then read as one Cookie header.
func HeaderJoiner(name string) string {
	if strings.EqualFold(name, "cookie") {
		return "; "
	}
	return ","
}
