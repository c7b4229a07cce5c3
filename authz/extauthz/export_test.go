package extauthz

import (
	"context"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// CheckBytes is what the gRPC path does with a marshaled CheckRequest that
// gRPC hands over: the codec's wire read, the check, the
// response's encoding, and its buffer freed as gRPC frees it once written.
// It returns the gRPC code of the response's status. For benchmarks of that
// path without a network.
func (s *Server) CheckBytes(ctx context.Context, data mem.BufferSlice) int32 {
	w := getWire()
	defer putWire(w)
	if err := (codec{}).Unmarshal(data, w); err != nil {
		panic(err)
	}
	d := s.decideWire(ctx, w)
	e := encodeResponse(&d)
	defer e.data.Free()
	return statusCode(e.bytes())
}

// statusCode reads CheckResponse.status.code from an encoded response (0,
// OK, when absent).
func statusCode(b []byte) int32 {
	num, _, st, n := next(b)
	if n < 0 || num != fRespStatus {
		return -1
	}
	code := int32(0)
	for len(st) > 0 {
		num, typ, n := protowire.ConsumeField(st)
		if n < 0 {
			return -1
		}
		if num == 1 && typ == protowire.VarintType { // google.rpc.Status.code
			v, _ := protowire.ConsumeVarint(st[1:n])
			code = int32(v)
		}
		st = st[n:]
	}
	return code
}

// RaceEnabled reports a -race build, whose allocation counts differ.
const RaceEnabled = raceEnabled
