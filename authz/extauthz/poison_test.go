package extauthz

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/experimental"
	"google.golang.org/protobuf/proto"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
)

// The wire reader's strings point into the request's buffer, which goes
// back to gRPC's pool (or, for Server.Check, to wirePool) as the check
// returns. Nothing the engine keeps may point there: not a grant in the
// token cache (subject, issuer, claim and payload headers, the claims and
// scopes rules read), not a decision in the request dedup, not a rejection
// in the negative cache, not the Decision an Observe callback keeps (only
// the Request's strings are documented as the buffer's), not a log record.
//
// So every buffer is poisoned as soon as its check is over: the one the
// check read (testHookPutWire) and every buffer gRPC's pool gets back (a
// request the codec forgot to hold would be poisoned under the check).
// Then the same requests are checked again, answered by the caches this
// time, and each answer must be the first one, byte for byte; the kept
// Decisions and log records must be as they were when made.
func TestNothingKeepsTheRequestBuffer(t *testing.T) {
	tests := []struct {
		name      string
		cacheSize int // 1: the token cache keeps almost nothing, the dedup answers
		wantHits  func(authz.Stats) bool
	}{
		{name: "token cache", cacheSize: authz.DefaultCacheSize, wantHits: func(s authz.Stats) bool { return s.Tokens.Hits > 0 && s.Negative.Hits > 0 }},
		{name: "request dedup", cacheSize: 1, wantHits: func(s authz.Stats) bool { return s.Dedup.Hits > 0 && s.Negative.Hits > 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { poisonRun(t, tt.cacheSize, tt.wantHits) })
	}
}

func poisonRun(t *testing.T, cacheSize int, wantHits func(authz.Stats) bool) {
	var poisoned atomic.Int64
	testHookPutWire = func(w *wireRequest) {
		poison(w.buf[:cap(w.buf)])
		poisoned.Add(1)
	}
	t.Cleanup(func() { testHookPutWire = nil })

	var mu sync.Mutex
	var kept []keptDecision
	logs := &recordingHandler{}
	e := authztest.New(t, nil, func(c *authz.Config, p *authz.ProviderConfig) {
		p.TokenSources = []authz.TokenSource{authz.BearerSource, {Cookie: "__session"}}
		p.DropToken = true
		p.ClaimHeaders = map[string]string{"x-auth-email": "email", "x-auth-org": "org.id"}
		p.PayloadHeader = "x-jwt-payload"
		c.Rules = []authz.RuleConfig{{Match: authz.Match{PathPrefix: "/admin/"}, Require: authz.Require{Scopes: []string{"admin"}, Claims: map[string]string{"role": "ops"}}}}
		c.CacheSize = cacheSize
		c.Logger = slog.New(logs)
		c.Observe = func(o authz.Observation) {
			// As Config.Observe says: the Request's strings are copied,
			// the Decision is kept as it is.
			mu.Lock()
			kept = append(kept, keptDecision{d: o.Decision, at: cloneDecision(o.Decision), path: strings.Clone(o.Request.Path)})
			mu.Unlock()
		}
	})
	pool := &poisonPool{}
	srv := NewServer(e.Eng)
	client := servePoisoned(t, srv, pool)

	reqs := poisonRequests(t, e)
	want := make([]*authv3.CheckResponse, len(reqs))
	for i, req := range reqs {
		want[i] = check(t, client, req)
	}
	if n := poisoned.Load(); n != int64(len(reqs)) {
		t.Fatalf("%d buffers poisoned after %d checks", n, len(reqs))
	}
	if pool.puts.Load() == 0 {
		t.Fatal("gRPC's pool got no buffer back: nothing of gRPC's was poisoned")
	}
	mu.Lock()
	logsBefore := logs.text()
	mu.Unlock()

	for round, via := range []string{"gRPC", "Server.Check", "gRPC"} {
		for i, req := range reqs {
			var got *authv3.CheckResponse
			if via == "gRPC" {
				got = check(t, client, req)
			} else {
				var err error
				if got, err = srv.Check(t.Context(), req); err != nil {
					t.Fatal(err)
				}
			}
			if !proto.Equal(got, want[i]) {
				t.Fatalf("round %d through %s, %s: after the buffers were poisoned the answer is\n%v\nwant %v",
					round, via, req.Attributes.Request.Http.Path, got, want[i])
			}
		}
	}
	if s := e.Eng.Stats(); !wantHits(s) {
		t.Fatalf("the caches did not answer: %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, k := range kept {
		if !reflect.DeepEqual(k.d, k.at) {
			t.Fatalf("the Decision observed for %s changed after its check:\n%+v\nwas %+v", k.path, k.d, k.at)
		}
	}
	if got := logs.text(); !strings.HasPrefix(got, logsBefore) {
		t.Fatalf("log records changed after their checks:\n%s\nwere\n%s", got, logsBefore)
	}
}

// poisonRequests are Envoy's browser request, each with a token of its
// own, and distinct paths, cookies and request ids: allows with claim and payload headers, allows
// under a rule that reads scopes and claims, a token cookie taken out of
// the cookie header, a bad signature (negative cache) and no token.
func poisonRequests(t *testing.T, e *authztest.Env) []*authv3.CheckRequest {
	var reqs []*authv3.CheckRequest
	add := func(path, authorization, cookie, id string) {
		r := authztest.BrowserRequest(t, authorization, id)
		h := r.Attributes.Request.Http
		h.Path = path
		if cookie != "" {
			h.Headers["cookie"] = cookie
		} else {
			delete(h.Headers, "cookie")
		}
		reqs = append(reqs, r)
	}
	token := func(i, j int) string {
		return e.Token(jwt.MapClaims{"sub": fmt.Sprintf("user_%d_%d_%s", i, j, strings.Repeat("s", 40*i)), "email": fmt.Sprintf("u%d.%d@example.com", i, j),
			"org": map[string]any{"id": fmt.Sprint("org_", i)}, "scope": "read admin", "role": "ops"})
	}
	for i := range 4 {
		bad := token(i, 3)
		bad = bad[:len(bad)-2] + "AA"
		add(fmt.Sprint("/v1/things/", i), "Bearer "+token(i, 0), "", "")
		add(fmt.Sprint("/admin/", i), "Bearer "+token(i, 1), "", fmt.Sprint("admin-", i))
		add(fmt.Sprint("/v1/cookie/", i), "", "theme=dark; __session="+token(i, 2)+"; lang=en", fmt.Sprint("cookie-", i))
		add(fmt.Sprint("/v1/bad/", i), "Bearer "+bad, "", "")
		add(fmt.Sprint("/v1/none/", i), "", "theme=dark", fmt.Sprint("none-", i))
	}
	return reqs
}

func check(t *testing.T, client authv3.AuthorizationClient, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	resp, err := client.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// servePoisoned serves s on a loopback port as jwtauthz does, gRPC's
// buffers coming from pool.
func servePoisoned(t *testing.T, s *Server, pool *poisonPool) authv3.AuthorizationClient {
	t.Helper()
	return authztest.ServeGRPC(t, s.Register, append(ServerOptions(), experimental.BufferPool(pool))...)
}

// poison overwrites b with bytes no request holds there.
func poison(b []byte) {
	for i := range b {
		b[i] = 0xa5
	}
}

// poisonPool is a mem.BufferPool that poisons every buffer given back.
type poisonPool struct{ puts atomic.Int64 }

// Get implements mem.BufferPool.
func (p *poisonPool) Get(n int) *[]byte {
	b := make([]byte, n)
	return &b
}

// Put implements mem.BufferPool.
func (p *poisonPool) Put(b *[]byte) {
	poison((*b)[:cap(*b)])
	p.puts.Add(1)
}

// keptDecision is a Decision an Observe callback kept, and a deep copy of
// it made then.
type keptDecision struct {
	d, at authz.Decision
	path  string
}

func cloneDecision(d authz.Decision) authz.Decision {
	c := d
	for _, s := range []*string{&c.Challenge, &c.Body, &c.Provider, &c.Subject, &c.Issuer, &c.Cookie} {
		*s = strings.Clone(*s)
	}
	c.Set = nil
	for _, h := range d.Set {
		c.Set = append(c.Set, authz.Header{Name: strings.Clone(h.Name), Value: strings.Clone(h.Value)})
	}
	c.Remove, c.RemoveQuery = cloneStrings(d.Remove), cloneStrings(d.RemoveQuery)
	return c
}

func cloneStrings(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.Clone(s)
	}
	return slices.Clip(out)
}

// recordingHandler keeps the records logged, as they are (their attributes
// may hold strings), and renders them when asked.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r)
	h.mu.Unlock()
	return nil
}

func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordingHandler) text() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b bytes.Buffer
	th := slog.NewTextHandler(&b, nil)
	for _, r := range h.records {
		th.Handle(context.Background(), r)
	}
	return b.String()
}
