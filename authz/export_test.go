package authz

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// CheckBytes is what the gRPC path does with a marshaled CheckRequest: the
// codec's copy and wire read, then the check. For benchmarks of that path
// without a network.
func (s *Server) CheckBytes(ctx context.Context, b []byte) *authv3.CheckResponse {
	w := getWire()
	defer putWire(w)
	w.buf = append(w.buf[:0], b...)
	if err := w.parse(); err != nil {
		panic(err)
	}
	return s.checkWire(ctx, w)
}
