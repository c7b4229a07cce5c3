package extauthz

import (
	"context"
	"fmt"
	"slices"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// codec is the gRPC codec of jwtauthz's server. Check requests are read
// straight from the wire into a wireRequest, and Check responses come
// encoded (encodedResponse); every other message (health, reflection) goes
// to gRPC's proto codec.
type codec struct{ base encoding.CodecV2 }

// Name implements encoding.CodecV2: it stands in for "proto".
func (codec) Name() string { return protocodec.Name }

// Marshal implements encoding.CodecV2.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*encodedResponse); ok {
		return e.data, nil
	}
	return c.base.Marshal(v)
}

// Unmarshal implements encoding.CodecV2.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	w, ok := v.(*wireRequest)
	if !ok {
		return c.base.Unmarshal(data, v)
	}
	if len(data) == 1 {
		// The usual case: the request in one buffer, which w holds (until
		// putWire) instead of copying it.
		data[0].Ref()
		w.held, w.buf = data[0], data[0].ReadOnlyData()
		return w.parse()
	}
	w.own = slices.Grow(w.own[:0], data.Len())[:data.Len()]
	data.CopyTo(w.own)
	w.buf = w.own
	return w.parse()
}

// ServerOptions are the gRPC server options the Check path is built for:
// the codec above.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(codec{base: encoding.GetCodecV2(protocodec.Name)})}
}

// Register registers s on g as envoy.service.auth.v3.Authorization, with a
// handler that reads requests through the codec of ServerOptions (which g
// must have been built with). Reflection describes it as the generated
// service.
func (s *Server) Register(g *grpc.Server) {
	desc := authv3.Authorization_ServiceDesc
	desc.Methods = []grpc.MethodDesc{{MethodName: "Check", Handler: s.checkHandler}}
	g.RegisterService(&desc, s)
}

const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

func (s *Server) checkHandler(_ any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	w := getWire()
	defer putWire(w)
	if err := dec(w); err != nil {
		return nil, err
	}
	if interceptor == nil {
		d := s.decideWire(ctx, w)
		return encodeResponse(&d), nil
	}
	info := &grpc.UnaryServerInfo{Server: s, FullMethod: checkMethod}
	return interceptor(ctx, w, info, func(ctx context.Context, req any) (any, error) {
		w, ok := req.(*wireRequest)
		if !ok {
			return nil, fmt.Errorf("extauthz: unexpected request %T", req)
		}
		// Interceptors (none in jwtauthz's own server) get messages, each
		// its own (CheckResponse shares nothing): one an interceptor
		// changed would otherwise change every answer after it.
		d := s.decideWire(ctx, w)
		return CheckResponse(&d), nil
	})
}
