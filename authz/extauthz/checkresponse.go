package extauthz

import (
	"net/http"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/authz"
)

// GRPCCode returns the gRPC status code of d's CheckResponse, from its HTTP
// status; never OK for a denial.
func GRPCCode(d *authz.Decision) codes.Code {
	switch d.Status() {
	case http.StatusOK:
		return codes.OK
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusRequestHeaderFieldsTooLarge, http.StatusBadRequest:
		return codes.InvalidArgument
	}
	return codes.Unauthenticated
}

// CheckResponse maps a Decision to Envoy's answer as a message: for gRPC
// interceptors, and the reference the encoded response is held to
// (response_test.go). The Check path itself sends encodeResponse's bytes.
//
// The message is the caller's own, down to its slices: none of it is
// shared with another response or with the engine (whose lists of headers
// to remove every allow of a policy shares), so an interceptor that
// changes the message it gets changes no later answer.
//
// Its dynamic_metadata is d.Metadata's: on an allow with a token sub, iss,
// provider and the provider's metadata claims; on a denial reason and
// provider; on a public or anonymous allow reason.
func CheckResponse(d *authz.Decision) *authv3.CheckResponse {
	resp := checkResponse(d)
	resp.DynamicMetadata = metadataStruct(d)
	return resp
}

// checkResponse is CheckResponse without its dynamic metadata.
func checkResponse(d *authz.Decision) *authv3.CheckResponse {
	if !d.Allow {
		return denied(d)
	}
	var hs []*corev3.HeaderValueOption
	if d.Subject != "" {
		hs = append(hs, setHeader(authz.HeaderSubject, d.Subject))
	}
	if d.Issuer != "" {
		hs = append(hs, setHeader(authz.HeaderIssuer, d.Issuer))
	}
	for _, h := range d.Set {
		hs = append(hs, setHeader(h.Name, h.Value))
	}
	remove := slices.Clone(d.Remove)
	if d.CookieSet {
		if d.Cookie == "" {
			remove = append(remove, "cookie")
		} else {
			hs = append(hs, setHeader("cookie", d.Cookie))
		}
	}
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.OK)}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
		Headers: hs, HeadersToRemove: remove, QueryParametersToRemove: slices.Clone(d.RemoveQuery),
	}}}
}

// denied is the CheckResponse of a denial: gRPC code and reason label, HTTP
// status, challenge and JSON body.
func denied(d *authz.Decision) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(GRPCCode(d)), Message: d.Reason.String()},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status())},
			Headers: []*corev3.HeaderValueOption{setHeader("www-authenticate", d.Challenge), setHeader("content-type", "application/json")},
			Body:    d.Body,
		}},
	}
}

// setHeader sets name to value, replacing what the client sent. append_action
// says so to Envoy versions that read it; older ones read the deprecated
// `append`, which unset means the same.
func setHeader(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// fixedDenial returns the denial for r with its fixed challenge and body,
// as the engine makes it.
func fixedDenial(r authz.Reason) *authz.Decision {
	return &authz.Decision{Reason: r, Challenge: r.Challenge(), Body: r.Body()}
}

// isFixed reports whether d is the denial of its reason with the fixed
// challenge and body, whose encoding is made once (encodedDenials).
func isFixed(d *authz.Decision) bool {
	return d.Challenge == d.Reason.Challenge() && d.Body == d.Reason.Body()
}
