package extauthz_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

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

// An interceptor may change the CheckResponse it gets (redact it, say)
// before it lets go of it. What it changes is its own: no later answer, on
// its path or on the wire codec's, changes with it. The vandal below sets
// every string of every response it sees to "mutated", every number to 0
// (a gRPC status of OK) and every enum to its first value, and answers with
// a copy made before: the answers must stay those of a server without it.
// Server.Check's answers are the caller's to change too.
func TestInterceptorChangesNoLaterAnswer(t *testing.T) {
	e := newEnv(t, nil, authztest.Option(func(c *authz.Config, p *authz.ProviderConfig) {
		p.ClaimHeaders = map[string]string{"x-auth-email": "email"}
		c.Rules = []authz.RuleConfig{{Match: authz.Match{PathPrefix: "/admin"}, Require: authz.Require{Scopes: []string{"admin"}}}}
	}))
	vandal := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		resp, err := next(ctx, req)
		m, ok := resp.(*authv3.CheckResponse)
		if !ok {
			return resp, err
		}
		answer := proto.Clone(m)
		vandalize(m.ProtoReflect())
		return answer, err
	}
	intercepted := serveGRPC(t, extauthz.NewServer(e.Eng), grpc.UnaryInterceptor(vandal))
	tok := "Bearer " + e.Token(nil) // no email: the allow removes x-auth-email
	requests := []struct {
		name string
		req  *authv3.CheckRequest
	}{
		{name: "allow", req: authztest.BrowserRequest(t, tok, "")},
		{name: "fixed denial: malformed", req: authztest.BrowserRequest(t, "Bearer x.y.z", "")},
		{name: "fixed denial: no token", req: authztest.BrowserRequest(t, "", "")},
		{name: "denial of its own: scope", req: func() *authv3.CheckRequest {
			r := authztest.BrowserRequest(t, tok, "")
			r.Attributes.Request.Http.Path = "/admin/x"
			return r
		}()},
	}
	want := make([]*authv3.CheckResponse, len(requests))
	for i, rq := range requests {
		resp, err := e.client.Check(t.Context(), rq.req)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = resp
	}
	if codes.Code(want[0].Status.Code) != codes.OK || !slices.Contains(want[0].GetOkResponse().GetHeadersToRemove(), "x-auth-email") {
		t.Fatalf("the allow is %v, want one that removes x-auth-email", want[0])
	}
	for round := range 3 {
		for i, rq := range requests {
			for _, via := range []struct {
				name   string
				client authv3.AuthorizationClient
			}{{"the interceptor", intercepted}, {"the wire codec", e.client}} {
				got, err := via.client.Check(t.Context(), rq.req)
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(got, want[i]) {
					t.Fatalf("round %d, %s through %s: %v\nwant %v", round, rq.name, via.name, got, want[i])
				}
			}
		}
	}

	srv := extauthz.NewServer(e.Eng)
	unreadable := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "\xff"}}}}
	var first *authv3.CheckResponse
	for range 3 {
		resp, err := srv.Check(t.Context(), unreadable)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = proto.Clone(resp).(*authv3.CheckResponse)
			if codes.Code(first.Status.Code) != codes.InvalidArgument {
				t.Fatalf("Server.Check of a request it cannot read: %v", first)
			}
		}
		if !proto.Equal(resp, first) {
			t.Fatalf("Server.Check after its caller changed an answer: %v\nwant %v", resp, first)
		}
		vandalize(resp.ProtoReflect())
	}
}

// vandalize sets every string field of m (and of the messages in it) to
// "mutated", every number to 0 and every enum to its first value.
func vandalize(m protoreflect.Message) {
	var fields []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		fields = append(fields, fd)
		return true
	})
	for _, fd := range fields {
		v := m.Get(fd)
		switch {
		case fd.IsMap():
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				if fd.Message() != nil {
					vandalize(l.Get(i).Message())
				} else if fd.Kind() == protoreflect.StringKind {
					l.Set(i, protoreflect.ValueOfString("mutated"))
				}
			}
		case fd.Message() != nil:
			vandalize(v.Message())
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString("mutated"))
		case fd.Kind() == protoreflect.Int32Kind:
			m.Set(fd, protoreflect.ValueOfInt32(0))
		case fd.Kind() == protoreflect.EnumKind:
			m.Set(fd, protoreflect.ValueOfEnum(fd.Enum().Values().Get(0).Number()))
		}
	}
}
