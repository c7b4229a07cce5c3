package server

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// collectorStub is an OTLP/gRPC trace collector on loopback: every span it
// is sent goes to spans.
type collectorStub struct {
	coltracepb.UnimplementedTraceServiceServer
	spans chan *tracepb.Span
	attrs chan map[string]string // the resource's attributes, per export
}

func (c *collectorStub) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	for _, rs := range req.ResourceSpans {
		ra := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			ra[kv.Key] = kv.Value.GetStringValue()
		}
		select {
		case c.attrs <- ra:
		default:
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				select {
				case c.spans <- s:
				default: // more than the test reads
				}
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func startCollector(t *testing.T) (*collectorStub, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collectorStub{spans: make(chan *tracepb.Span, 64), attrs: make(chan map[string]string, 8)}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, c)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return c, "http://" + lis.Addr().String()
}

// startHTTPCollector is collectorStub behind OTLP/HTTP (protobuf) at
// /v1/traces.
func startHTTPCollector(t *testing.T) (*collectorStub, string) {
	t.Helper()
	c := &collectorStub{spans: make(chan *tracepb.Span, 64), attrs: make(chan map[string]string, 8)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		req := &coltracepb.ExportTraceServiceRequest{}
		if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		resp, _ := c.Export(r.Context(), req)
		b, _ := proto.Marshal(resp)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

func TestTracingExportsCheckSpansOverOTLP(t *testing.T) {
	tests := []struct {
		name      string
		collector func(*testing.T) (*collectorStub, string)
		flags     func(endpoint string) []string
		env       func(endpoint string) map[string]string
	}{
		{name: "grpc flag", collector: startCollector, flags: func(ep string) []string { return []string{"--otlp-endpoint", ep} }},
		{name: "grpc OTEL_EXPORTER_OTLP_ENDPOINT", collector: startCollector, env: func(ep string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep}
		}},
		{name: "http/protobuf flag", collector: startHTTPCollector, flags: func(ep string) []string {
			return []string{"--otlp-endpoint", ep, "--otlp-protocol", "http/protobuf"}
		}},
		{name: "http/protobuf OTEL_EXPORTER_OTLP_*", collector: startHTTPCollector, env: func(ep string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col, endpoint := tt.collector(t)
			args := []string{"--issuer", ""}
			if tt.flags != nil {
				args = append(args, tt.flags(endpoint)...)
			}
			if tt.env != nil {
				for k, v := range tt.env(endpoint) {
					t.Setenv(k, v)
				}
			}
			exportsCheckSpans(t, col, args)
		})
	}
}

func exportsCheckSpans(t *testing.T, col *collectorStub, args []string) {
	idp := issuer.NewServer()
	defer idp.Close()
	args[1] = idp.URL
	a := startApp(t, true, args...)
	tok, _ := idp.Token("alice", time.Hour)

	const traceHex, parentHex = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cc := dial(t, a.grpcAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api", Path: "/x", Headers: map[string]string{
			"authorization": "Bearer " + tok,
			"traceparent":   "00-" + traceHex + "-" + parentHex + "-01",
		}},
	}}}
	resp, err := authv3.NewAuthorizationClient(cc).Check(ctx, req)
	if err != nil || codes.Code(resp.Status.Code) != codes.OK {
		t.Fatalf("Check: %v %v", resp, err)
	}
	if err := a.stop(t); err != nil { // shutdown flushes the batched spans
		t.Fatalf("stop: %v", err)
	}

	byName := map[string]*tracepb.Span{}
	timeout := time.After(10 * time.Second)
	for byName["Check"] == nil || byName["jwt.verify"] == nil {
		select {
		case s := <-col.spans:
			byName[s.Name] = s
		case <-timeout:
			t.Fatalf("the collector got %d spans, not a Check and a jwt.verify", len(byName))
		}
	}
	check, verify := byName["Check"], byName["jwt.verify"]
	if got := hex.EncodeToString(check.TraceId); got != traceHex {
		t.Errorf("Check trace id %s, want %s", got, traceHex)
	}
	if got := hex.EncodeToString(check.ParentSpanId); got != parentHex {
		t.Errorf("Check parent %s, want %s", got, parentHex)
	}
	if check.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("Check kind %v, want server", check.Kind)
	}
	got := map[string]string{}
	for _, kv := range check.Attributes {
		got[kv.Key] = kv.Value.GetStringValue()
	}
	for k, want := range map[string]string{"jwtauthz.decision": "allow", "jwtauthz.reason": "ok", "jwtauthz.provider": "default", "jwtauthz.cache_layer": "verified"} {
		if got[k] != want {
			t.Errorf("Check %s = %q, want %q (all: %v)", k, got[k], want, got)
		}
	}
	if hex.EncodeToString(verify.TraceId) != traceHex || hex.EncodeToString(verify.ParentSpanId) != hex.EncodeToString(check.SpanId) {
		t.Errorf("jwt.verify is not the Check span's child: trace %x parent %x, Check %x", verify.TraceId, verify.ParentSpanId, check.SpanId)
	}
	if ra := <-col.attrs; ra["service.name"] != "jwtauthz" {
		t.Errorf("resource service.name %q, want jwtauthz", ra["service.name"])
	}
}

func TestTracingOffWithoutEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	idp := issuer.NewServer()
	defer idp.Close()
	a := startApp(t, false, "--issuer", idp.URL)
	if a.tracing != nil {
		t.Fatal("tracing on without --otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT")
	}
}
