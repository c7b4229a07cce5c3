package extauthz_test

import (
	"context"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/extauthz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
)

// With a unary interceptor, the handler gives it a CheckResponse message
// (which gRPC's proto codec then marshals) instead of the encoded bytes:
// the answers are the same.
func TestCheckThroughInterceptor(t *testing.T) {
	e := newEnv(t, nil)
	var calls atomic.Int32
	count := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		calls.Add(1)
		resp, err := next(ctx, req)
		if _, ok := resp.(*authv3.CheckResponse); !ok && err == nil {
			t.Errorf("the interceptor got a %T", resp)
		}
		return resp, err
	}
	client := serveGRPC(t, extauthz.NewServer(e.Eng), grpc.UnaryInterceptor(count))

	tok := "Bearer " + e.Token(nil)
	for _, tc := range []struct {
		auth string
		want codes.Code
	}{{tok, codes.OK}, {"Bearer x.y.z", codes.Unauthenticated}} {
		got, err := client.Check(t.Context(), authztest.BrowserRequest(t, tc.auth, ""))
		if err != nil {
			t.Fatal(err)
		}
		direct, err := e.client.Check(t.Context(), authztest.BrowserRequest(t, tc.auth, ""))
		if err != nil {
			t.Fatal(err)
		}
		if codes.Code(got.Status.Code) != tc.want || authztest.OKHeaders(got)[authz.HeaderSubject] != authztest.OKHeaders(direct)[authz.HeaderSubject] ||
			got.GetDeniedResponse().GetStatus().GetCode() != direct.GetDeniedResponse().GetStatus().GetCode() {
			t.Errorf("%s: through the interceptor %v, without %v", tc.auth, got, direct)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("interceptor called %d times, want 2", n)
	}
}
