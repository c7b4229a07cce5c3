// Package extauthz is Envoy's ext_authz gRPC service
// (envoy.service.auth.v3.Authorization) in front of an authz.Engine: it
// reads a CheckRequest into an authz.Request and writes the authz.Decision
// back as a CheckResponse, and decides nothing itself.
//
// A check's request is read straight from its wire bytes (wire.go), as
// strings that point into gRPC's buffer, which goes back to gRPC's pool
// once the check returns: nothing of the request outlives the check (the
// engine copies what it keeps). Its answer is written as bytes (response.go)
// straight from the Decision; the fixed denials are encoded once.
//
//	gs := grpc.NewServer(extauthz.ServerOptions()...)
//	extauthz.NewServer(engine).Register(gs)
package extauthz

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/jwtauthz/jwtauthz/authz"
)

// Server is Envoy's ext_authz service in front of an Engine. It translates
// a CheckRequest (read from its wire bytes) into a Request and a Decision
// into a CheckResponse, and does nothing else.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	engine  *authz.Engine
	tracing *Tracing // nil: no spans
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// NewServer returns the gRPC service for e.
func NewServer(e *authz.Engine, opts ...Option) *Server {
	s := &Server{engine: e}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Check implements authv3.AuthorizationServer, for callers that hold a
// CheckRequest rather than its bytes: it marshals the request, reads it and
// encodes the response as the gRPC path does (Register), and unmarshals
// that response, so that both decide on the same reading and answer the
// same bytes. It never returns an error: a denial is a CheckResponse with a
// non-OK status, and every response sets status (an unset one means allow
// to Envoy). The response is the caller's own to change.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	w := getWire()
	defer putWire(w)
	buf, err := proto.MarshalOptions{}.MarshalAppend(w.own[:0], req)
	if w.own, w.buf = buf, buf; err == nil {
		err = w.parse()
	}
	if err != nil {
		return CheckResponse(fixedDenial(authz.ReasonBadRequest)), nil
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

// decideWire decides a request read by the codec. The decision holds no
// string of w, which goes back to its pool afterwards.
func (s *Server) decideWire(ctx context.Context, w *wireRequest) authz.Decision {
	r := w.request()
	if s.tracing == nil {
		return s.engine.Check(ctx, &r)
	}
	ctx, sp := s.tracing.startCheck(ctx, r.Headers)
	d := s.engine.Check(ctx, &r)
	endCheck(sp, &d)
	return d
}
