package authz

import (
	"context"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Server is Envoy's ext_authz service (envoy.service.auth.v3.Authorization)
// in front of an Engine. It translates a CheckRequest (read from its wire
// bytes, wire.go) into a Request and a Decision into a CheckResponse, and
// does nothing else.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	engine *Engine
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// NewServer returns the gRPC service for e.
func NewServer(e *Engine) *Server { return &Server{engine: e} }

// Check implements authv3.AuthorizationServer, for callers that hold a
// CheckRequest rather than its bytes: it marshals the request, reads it and
// encodes the response as the gRPC path does (Register), and unmarshals
// that response, so that both decide on the same reading and answer the
// same bytes. It never returns an error: a denial is a CheckResponse with a
// non-OK status, and every response sets status (an unset one means allow
// to Envoy).
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	w := getWire()
	defer putWire(w)
	buf, err := proto.MarshalOptions{}.MarshalAppend(w.own[:0], req)
	if w.own, w.buf = buf, buf; err == nil {
		err = w.parse()
	}
	if err != nil {
		return denials[ReasonBadRequest], nil
	}
	d := s.decideWire(ctx, w)
	e := encodeResponse(&d)
	defer e.data.Free()
	resp := new(authv3.CheckResponse)
	if err := proto.Unmarshal(e.bytes(), resp); err != nil {
		return nil, err // a bug in the encoder; tests look for it
	}
	return resp, nil
}

var (
	okStatus   = &rpcstatus.Status{Code: int32(codes.OK)}
	jsonHeader = setHeader("content-type", "application/json")
	// denials for the fixed challenges are built once, and encoded once
	// (encodedDenials, for the gRPC path). Their buffers are never freed
	// and are shared by every stream: gRPC only reads them.
	denials        [numReasons]*authv3.CheckResponse
	encodedDenials [numReasons]*encodedResponse
)

func init() {
	for r := range numReasons {
		if reasons[r].status != 200 {
			denials[r] = denied(&Decision{Reason: r, Challenge: challenges[r], Body: bodies[r]})
			b, err := proto.Marshal(denials[r])
			if err != nil {
				panic(err) // fixed strings: a bug
			}
			encodedDenials[r] = encoded(mem.SliceBuffer(b))
		}
	}
}

// CheckResponse maps a Decision to Envoy's answer as a message: for gRPC
// interceptors, and the reference the encoded response is held to
// (response_test.go). The Check path itself sends encodeResponse's bytes.
func CheckResponse(d *Decision) *authv3.CheckResponse {
	if !d.Allow {
		if p := denials[d.Reason]; p != nil && d.Challenge == challenges[d.Reason] && d.Body == bodies[d.Reason] {
			return p
		}
		return denied(d)
	}
	var hs []*corev3.HeaderValueOption
	if d.Subject != "" {
		hs = append(hs, setHeader(HeaderSubject, d.Subject))
	}
	if d.Issuer != "" {
		hs = append(hs, setHeader(HeaderIssuer, d.Issuer))
	}
	for _, h := range d.Set {
		hs = append(hs, setHeader(h.Name, h.Value))
	}
	remove := d.Remove
	if d.CookieSet {
		if d.Cookie == "" {
			remove = append(slices.Clip(remove), "cookie")
		} else {
			hs = append(hs, setHeader("cookie", d.Cookie))
		}
	}
	return &authv3.CheckResponse{Status: okStatus, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
		Headers: hs, HeadersToRemove: remove, QueryParametersToRemove: d.RemoveQuery,
	}}}
}

func denied(d *Decision) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(d.GRPCCode()), Message: d.Reason.String()},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status())},
			Headers: []*corev3.HeaderValueOption{setHeader("www-authenticate", d.Challenge), jsonHeader},
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
