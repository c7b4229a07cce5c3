package extauthz_test

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/extauthz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

const (
	traceHex  = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentHex = "00f067aa0ba902b7"
)

// tracedEnv is an engine and server traced into an in-memory recorder, with
// the SDK's default sampler (parent-based, always on at the root).
func tracedEnv(t *testing.T) (*authztest.Env, *extauthz.Server, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	tr := extauthz.NewTracing(tp)
	e := authztest.New(t, nil, authztest.Option(func(c *authz.Config, _ *authz.ProviderConfig) { c.Tracer = tr }))
	return e, extauthz.NewServer(e.Eng, extauthz.WithTracing(tr)), rec
}

// untraced is the realistic request without its trace headers.
func untraced(t *testing.T, authorization string) *authv3.CheckRequest {
	req := authztest.BrowserRequest(t, authorization, "")
	for _, k := range []string{"traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"} {
		delete(req.Attributes.Request.Http.Headers, k)
	}
	return req
}

func spanNamed(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestTracingContinuesTheCallersTrace(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		sampled bool
	}{
		{name: "traceparent sampled", headers: map[string]string{"traceparent": "00-" + traceHex + "-" + parentHex + "-01", "tracestate": "vendor=x"}, sampled: true},
		{name: "traceparent unsampled", headers: map[string]string{"traceparent": "00-" + traceHex + "-" + parentHex + "-00"}},
		{name: "b3 single", headers: map[string]string{"b3": traceHex + "-" + parentHex + "-1"}, sampled: true},
		{name: "b3 single unsampled", headers: map[string]string{"b3": traceHex + "-" + parentHex + "-0"}},
		{name: "traceparent over b3", headers: map[string]string{"traceparent": "00-" + traceHex + "-" + parentHex + "-01", "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1", "x-b3-sampled": "1"}, sampled: true},
		{name: "b3 multi", headers: map[string]string{"x-b3-traceid": traceHex, "x-b3-spanid": parentHex, "x-b3-sampled": "1"}, sampled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, srv, rec := tracedEnv(t)
			tok := e.Token(nil)
			check := func() {
				req := untraced(t, "Bearer "+tok)
				for k, v := range tt.headers {
					req.Attributes.Request.Http.Headers[k] = v
				}
				resp, err := srv.Check(context.Background(), req)
				if err != nil || resp.GetStatus().GetCode() != 0 {
					t.Fatalf("check: %v %v", resp.GetStatus(), err)
				}
			}
			check() // verified
			check() // from the token cache
			spans := rec.Ended()
			if !tt.sampled {
				if len(spans) != 0 {
					t.Fatalf("unsampled parent: %d spans recorded, want none", len(spans))
				}
				return
			}
			checks := spanNamed(spans, extauthz.SpanCheck)
			if len(checks) != 2 {
				t.Fatalf("%d Check spans, want 2", len(checks))
			}
			for i, s := range checks {
				if got := s.SpanContext().TraceID().String(); got != traceHex {
					t.Errorf("Check %d: trace id %s, want %s", i, got, traceHex)
				}
				if got := s.Parent().SpanID().String(); got != parentHex || !s.Parent().IsRemote() {
					t.Errorf("Check %d: parent %s (remote %v), want remote %s", i, got, s.Parent().IsRemote(), parentHex)
				}
				if s.SpanKind() != trace.SpanKindServer {
					t.Errorf("Check %d: kind %v", i, s.SpanKind())
				}
				a := attrs(s)
				wantLayer := []string{"verified", "token_cache"}[i]
				for k, want := range map[attribute.Key]string{
					extauthz.AttrDecision: "allow", extauthz.AttrReason: "ok", extauthz.AttrProvider: "test", extauthz.AttrLayer: wantLayer,
				} {
					if got := a[k].AsString(); got != want {
						t.Errorf("Check %d: %s = %q, want %q", i, k, got, want)
					}
				}
				if _, ok := a[extauthz.AttrRule]; !ok {
					t.Errorf("Check %d: no %s", i, extauthz.AttrRule)
				}
			}
			verifies := spanNamed(spans, extauthz.SpanVerify)
			if len(verifies) != 1 {
				t.Fatalf("%d verify spans, want 1 (the cached check verifies nothing)", len(verifies))
			}
			v := verifies[0]
			if v.Parent().SpanID() != checks[0].SpanContext().SpanID() || v.SpanContext().TraceID() != checks[0].SpanContext().TraceID() {
				t.Errorf("verify span's parent %s, want the first Check span %s", v.Parent().SpanID(), checks[0].SpanContext().SpanID())
			}
			if a := attrs(v); a[extauthz.AttrProvider].AsString() != "test" || a[extauthz.AttrReason].AsString() != "ok" {
				t.Errorf("verify attributes %v", a)
			}
		})
	}
}

func TestTracingUnknownKidWaitIsAChildOfVerify(t *testing.T) {
	e, srv, rec := tracedEnv(t)
	stranger := issuer.MustSigner("RS256") // its key is not published: the kid is unknown
	bearer := e.Bearers(stranger, 1)[0]
	req := untraced(t, bearer)
	req.Attributes.Request.Http.Headers["traceparent"] = "00-" + traceHex + "-" + parentHex + "-01"
	resp, _ := srv.Check(context.Background(), req)
	if resp.GetStatus().GetCode() == 0 {
		t.Fatal("a token of an unknown key was allowed")
	}
	spans := rec.Ended()
	checks, verifies, waits := spanNamed(spans, extauthz.SpanCheck), spanNamed(spans, extauthz.SpanVerify), spanNamed(spans, extauthz.SpanKeyWait)
	if len(checks) != 1 || len(verifies) != 1 || len(waits) != 1 {
		t.Fatalf("spans: %d Check, %d verify, %d wait; want 1 each", len(checks), len(verifies), len(waits))
	}
	if waits[0].Parent().SpanID() != verifies[0].SpanContext().SpanID() {
		t.Error("the key wait is not a child of the verify span")
	}
	if got := attrs(checks[0])[extauthz.AttrDecision].AsString(); got != "deny" {
		t.Errorf("decision %q, want deny", got)
	}
	if got := attrs(verifies[0])[extauthz.AttrReason].AsString(); got != authz.ReasonUnknownKID.String() {
		t.Errorf("verify reason %q, want %s", got, authz.ReasonUnknownKID)
	}
}
