package authz

import (
	"encoding/json"
	"net/http"
)

// A client's copy of a header jwtauthz manages (x-auth-subject,
// x-auth-issuer, every claim_headers and payload_header name) must never
// reach the upstream as if jwtauthz had set it. Envoy's gRPC ext_authz lets
// jwtauthz overwrite or remove it; a forward-auth proxy copies only the
// headers it is told of, and cannot remove headers by prefix (nginx). So
// forward-auth refuses the request instead: it cannot go on.

// managedName returns the managed header that name stands for, or "".
// Names are compared as upstreams may read them: without case, and with
// '_' read as '-' (CGI, WSGI and Rack servers turn both into HTTP_X_AUTH_…).
// The managed set is the policy's, made once per configuration.
func (pol *policy) managedName(name string) string {
	for _, m := range pol.managed {
		if sameHeaderName(name, m) {
			return m
		}
	}
	return ""
}

// spoofedHeader returns the managed header that h carries under any
// spelling, the first the configuration names if several, or "". One pass
// over h, a length comparison or a few per name: it allocates nothing.
func (pol *policy) spoofedHeader(h http.Header) string {
	var lens uint64 // bit n: a managed name is n bytes long (63: 63 or more)
	for _, m := range pol.managed {
		lens |= 1 << min(len(m), 63)
	}
	first := len(pol.managed)
	for name := range h {
		if lens&(1<<min(len(name), 63)) == 0 {
			continue
		}
		for i, m := range pol.managed[:first] {
			if sameHeaderName(name, m) {
				first = i
				break
			}
		}
	}
	if first == len(pol.managed) {
		return ""
	}
	return pol.managed[first]
}

// sameHeaderName reports whether a and b name one header for an upstream:
// equal but for ASCII case, '_' and '-' being the same.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldHeaderByte(a[i]) != foldHeaderByte(b[i]) {
			return false
		}
	}
	return true
}

func foldHeaderByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
		return '-'
	}
	return c
}

// denySpoofed is the denial of a request that carries the managed header
// name: 400 spoofed_header, its body naming the header.
func denySpoofed(name string) Decision {
	d := deny(ReasonSpoofedHeader)
	desc, _ := json.Marshal(ReasonSpoofedHeader.Description() + ": " + name)
	d.Body = `{"error":"invalid_request","error_description":` + string(desc) + `}`
	return d
}
