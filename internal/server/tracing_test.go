package server

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/extauthz"
	"github.com/jwtauthz/jwtauthz/jwks"
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
	for byName["Check"] == nil || byName["jwt.verify"] == nil || byName[spanFetch] == nil {
		select {
		case s := <-col.spans:
			byName[s.Name] = s
		case <-timeout:
			t.Fatalf("the collector got %d spans, not a Check, a jwt.verify and a jwks.fetch", len(byName))
		}
	}
	if fetch := byName[spanFetch]; len(fetch.ParentSpanId) != 0 || hex.EncodeToString(fetch.TraceId) == traceHex {
		t.Errorf("the start-up jwks.fetch is not a root span of its own: trace %x parent %x", fetch.TraceId, fetch.ParentSpanId)
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

// fetchEnv is an engine over one provider's key source, an IdP whose key
// set answers can be held back, and both traced into an in-memory recorder
// as the server traces them.
type fetchEnv struct {
	idp  *issuer.Issuer
	eng  *authz.Engine
	src  *jwks.Source
	rec  *tracetest.SpanRecorder
	hold chan struct{} // non-nil: key set answers wait until it is closed
	mu   sync.Mutex
}

func newFetchEnv(t *testing.T, fault issuer.Fault) *fetchEnv {
	t.Helper()
	f := &fetchEnv{idp: issuer.New("", issuer.MustSigner("ES256")), rec: tracetest.NewSpanRecorder()}
	f.idp.SetFault(fault)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		hold := f.hold
		f.mu.Unlock()
		if hold != nil {
			<-hold
		}
		f.idp.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	f.idp.URL = hs.URL
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(f.rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	s := newSources()
	s.tracer = newFetchTracing(tp)
	s.update([]jwks.Config{{Name: "p", Issuer: hs.URL, URL: f.idp.JWKSURL(), Refresh: time.Hour, MinRefresh: time.Hour}})
	s.start(context.Background())
	t.Cleanup(s.stop)
	f.src = s.list()[0]
	cfg := authz.DefaultConfig()
	cfg.NetworkWait = 10 * time.Second // the test releases held fetches sooner
	cfg.Tracer = extauthz.NewTracing(tp)
	cfg.Providers = []authz.ProviderConfig{{Name: "p", Issuer: hs.URL, Keys: f.src}}
	var err error
	if f.eng, err = authz.New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.eng.Close)
	return f
}

// fetched waits until n fetches are over.
func (f *fetchEnv) fetched(t *testing.T, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); f.src.Status().Fetches < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches, want %d", f.src.Status().Fetches, n)
		}
	}
}

// rotate publishes a new signing key, held back from the source until the
// returned function is called (or the test ends), and a token that names
// it for each subject.
func (f *fetchEnv) rotate(t *testing.T, subs ...string) (toks []string, release func()) {
	t.Helper()
	hold := make(chan struct{})
	f.mu.Lock()
	f.hold = hold
	f.mu.Unlock()
	release = sync.OnceFunc(func() {
		f.mu.Lock()
		f.hold = nil
		f.mu.Unlock()
		close(hold)
	})
	t.Cleanup(release)
	f.idp.Publish(issuer.MustSigner("ES256"), f.idp.Signing())
	for _, sub := range subs {
		tok, err := f.idp.Token(sub, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	return toks, release
}

func (f *fetchEnv) check(tok string) authz.Decision {
	return f.eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "api", Path: "/x",
		Headers: authz.MapHeaders{"authorization": "Bearer " + tok}})
}

// started returns the spans named name started so far, running or ended.
func started(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Started() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func ended(t *testing.T, rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	t.Helper()
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// linksTo reports whether from has a link to to, and the link's kind.
func linksTo(from, to sdktrace.ReadOnlySpan) (bool, string) {
	for _, l := range from.Links() {
		if l.SpanContext.Equal(to.SpanContext()) {
			for _, kv := range l.Attributes {
				if kv.Key == attrLink {
					return true, kv.Value.AsString()
				}
			}
			return true, ""
		}
	}
	return false, ""
}

// checkFetchSpan checks a jwks.fetch span's place (a root) and attributes.
func checkFetchSpan(t *testing.T, sp sdktrace.ReadOnlySpan, outcome string, status int64, keys int64, triggered bool) {
	t.Helper()
	if sp.Parent().IsValid() {
		t.Errorf("jwks.fetch has a parent %v: it belongs to no check", sp.Parent().SpanID())
	}
	a := spanAttrs(sp)
	if a[extauthz.AttrProvider].AsString() != "p" || a[attrOutcome].AsString() != outcome || a[attrKeys].AsInt64() != keys ||
		a[attrTriggered].AsBool() != triggered || a[attrHTTP].AsInt64() != status {
		t.Errorf("jwks.fetch attributes %v, want provider p, outcome %s, status %d, %d keys, triggered %v", a, outcome, status, keys, triggered)
	}
}

func TestFetchSpans(t *testing.T) {
	t.Run("scheduled", func(t *testing.T) {
		f := newFetchEnv(t, issuer.OK)
		f.fetched(t, 1)
		fetches := ended(t, f.rec, spanFetch)
		if len(fetches) != 1 {
			t.Fatalf("%d jwks.fetch spans, want 1", len(fetches))
		}
		checkFetchSpan(t, fetches[0], "ok", 200, 1, false)
		if n := len(fetches[0].Links()); n != 0 {
			t.Errorf("a scheduled fetch has %d links, want none", n)
		}
	})

	t.Run("unknown kid", func(t *testing.T) {
		f := newFetchEnv(t, issuer.OK)
		f.fetched(t, 1)
		toks, release := f.rotate(t, "alice")
		release()
		if d := f.check(toks[0]); !d.Allow {
			t.Fatalf("a token of the new key: %v", d.Reason)
		}
		fetches, waits := ended(t, f.rec, spanFetch), ended(t, f.rec, extauthz.SpanKeyWait)
		if len(fetches) != 2 || len(waits) != 1 {
			t.Fatalf("%d jwks.fetch and %d jwks.wait spans, want 2 and 1", len(fetches), len(waits))
		}
		fetch, wait := fetches[1], waits[0]
		checkFetchSpan(t, fetch, "ok", 200, 2, true)
		if ok, kind := linksTo(fetch, wait); !ok || kind != "triggered" || len(fetch.Links()) != 1 {
			t.Errorf("jwks.fetch links %v, want one (triggered) to the jwks.wait span", fetch.Links())
		}
		if ok, _ := linksTo(wait, fetch); !ok {
			t.Errorf("jwks.wait links %v, not to the jwks.fetch span", wait.Links())
		}
	})

	t.Run("two checks, one fetch", func(t *testing.T) {
		f := newFetchEnv(t, issuer.OK)
		f.fetched(t, 1)
		// Two tokens: two checks of one token would share one verification.
		toks, release := f.rotate(t, "alice", "bob")
		var wg sync.WaitGroup
		got := make([]authz.Decision, 2)
		for i := range got {
			wg.Go(func() { got[i] = f.check(toks[i]) })
		}
		// Both checks wait: the fetch has its trigger's link and a joiner's.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if fs := started(f.rec, spanFetch); len(fs) == 2 && len(fs[1].Links()) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the second check never joined the fetch")
			}
		}
		release()
		wg.Wait()
		for i, d := range got {
			if !d.Allow {
				t.Fatalf("check %d: %v", i, d.Reason)
			}
		}
		fetches, waits := ended(t, f.rec, spanFetch), ended(t, f.rec, extauthz.SpanKeyWait)
		if len(fetches) != 2 || len(waits) != 2 {
			t.Fatalf("%d jwks.fetch and %d jwks.wait spans, want 2 and 2", len(fetches), len(waits))
		}
		fetch := fetches[1]
		checkFetchSpan(t, fetch, "ok", 200, 2, true)
		kinds := map[string]int{}
		for _, w := range waits {
			ok, kind := linksTo(fetch, w)
			if !ok {
				t.Errorf("jwks.fetch does not link to a jwks.wait span")
			}
			kinds[kind]++
			if ok, _ := linksTo(w, fetch); !ok {
				t.Errorf("a jwks.wait span does not link to the jwks.fetch span")
			}
		}
		if kinds["triggered"] != 1 || kinds["joined"] != 1 || len(fetch.Links()) != 2 {
			t.Errorf("jwks.fetch links %v, want one triggered and one joined", fetch.Links())
		}
	})

	t.Run("failing IdP", func(t *testing.T) {
		f := newFetchEnv(t, issuer.Fail)
		for deadline := time.Now().Add(10 * time.Second); len(ended(t, f.rec, spanFetch)) == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no jwks.fetch span")
			}
		}
		fetch := ended(t, f.rec, spanFetch)[0]
		checkFetchSpan(t, fetch, "error", 500, 0, false)
		if fetch.Status().Code.String() != "Error" {
			t.Errorf("jwks.fetch status %v, want Error", fetch.Status())
		}
	})
}

func TestFetchTracingOffIsNil(t *testing.T) {
	var off *tracing
	if off.fetchTracer() != nil {
		t.Fatal("no tracing, yet the key sources get a tracer")
	}
}
