package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// auditApp is a jwtauthz with its audit log in a file, on clock (nil:
// time.Now). The summary of suppressed denials is never written by a
// timer: summaries holds what would run it, for the test to call.
type auditApp struct {
	*testApp
	file      string
	client    authv3.AuthorizationClient
	mu        sync.Mutex
	summaries []func()
}

func startAudit(t *testing.T, clock func() time.Time, args ...string) *auditApp {
	t.Helper()
	file := filepath.Join(t.TempDir(), "audit.log")
	base := []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--shutdown-delay", "0s", "--audit-log", file}
	cfg, _, err := config.Load("serve", append(base, args...), envOf(), io.Discard, config.Defaults())
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	var opts []Option
	if clock != nil {
		opts = append(opts, WithClock(clock))
	}
	a, err := New(cfg, slog.New(slog.NewJSONHandler(logs, nil)), opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	aa := &auditApp{file: file}
	a.audit.after = func(_ time.Duration, f func()) {
		aa.mu.Lock()
		aa.summaries = append(aa.summaries, f)
		aa.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	aa.testApp = &testApp{Server: a, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { aa.done <- a.Run(ctx) }()
	t.Cleanup(func() { aa.stop(t) })
	aa.waitReady(t)
	aa.client = authv3.NewAuthorizationClient(dial(t, a.GRPCAddr()))
	return aa
}

// check asks about tok (none if "") on path with request id id, and a
// cookie header.
func (aa *auditApp) check(t *testing.T, tok, path, id string) codes.Code {
	t.Helper()
	req := checkReq(tok, path)
	req.Attributes.Request.Http.Headers["cookie"] = "session=" + secretCookie
	if id != "" {
		req.Attributes.Request.Http.Headers["x-request-id"] = id
	}
	resp, err := aa.client.Check(context.Background(), req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return codes.Code(resp.Status.Code)
}

// text is the audit log so far.
func (aa *auditApp) text(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(aa.file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lines is the audit log so far, a JSON object a line.
func (aa *auditApp) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(aa.text(t)))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// decisions counts the audit lines of decisions, by decision.
func decisions(lines []map[string]any) (allows, denies int) {
	for _, l := range lines {
		switch l["decision"] {
		case "allow":
			allows++
		case "deny":
			denies++
		}
	}
	return allows, denies
}

const secretCookie = "c00kie-secret-value"

func mint(t *testing.T, idp *issuer.Server, sub string) string {
	t.Helper()
	now := time.Now()
	tok, err := idp.Mint(jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A JSON line per decision, with the fields the docs name; the file is
// created 0600; no token, cookie or query gets in.
func TestAuditLogJSON(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	cfg := writeFile(t, "issuer: "+idp.URL+"\nrules:\n  - {match: {path: /public}, action: allow}\n  - {match: {path_prefix: /}}\n")
	a := startAudit(t, nil, "--config", cfg, "--audit-sample-allows", "1")
	tok := mint(t, idp, "alice")
	if code := a.check(t, tok, "/api?access_token="+tok, "req-1"); code != codes.OK {
		t.Fatalf("allow: %v", code)
	}
	if code := a.check(t, tok+"x", "/api", ""); code != codes.Unauthenticated {
		t.Fatalf("malformed: %v", code)
	}
	if code := a.check(t, "", "/public", ""); code != codes.OK {
		t.Fatalf("public: %v", code)
	}
	fi, err := os.Stat(a.file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, want 0600", fi.Mode().Perm())
	}
	text := a.text(t)
	for _, secret := range []string{tok, strings.Split(tok, ".")[2], secretCookie, "access_token"} {
		if strings.Contains(text, secret) {
			t.Errorf("audit log holds %q:\n%s", secret, text)
		}
	}
	lines := a.lines(t)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), text)
	}
	tests := []struct {
		name string
		line map[string]any
		want map[string]any
	}{
		{name: "allow", line: lines[0], want: map[string]any{"msg": "decision", "request_id": "req-1", "method": "GET", "host": "api", "path": "/api",
			"subject": "alice", "decision": "allow", "reason": "ok", "rule": float64(1), "cache": "verified"}},
		{name: "deny", line: lines[1], want: map[string]any{"request_id": "", "path": "/api", "subject": "", "decision": "deny",
			"reason": "malformed", "rule": float64(1), "cache": "verified"}},
		{name: "public", line: lines[2], want: map[string]any{"path": "/public", "decision": "allow", "reason": "public", "rule": float64(0), "cache": "none"}},
	}
	for _, tt := range tests {
		for k, v := range tt.want {
			if tt.line[k] != v {
				t.Errorf("%s: %s = %#v, want %#v (%v)", tt.name, k, tt.line[k], v, tt.line)
			}
		}
		for _, k := range []string{"time", "provider", "latency"} {
			if _, ok := tt.line[k]; !ok {
				t.Errorf("%s: no %s (%v)", tt.name, k, tt.line)
			}
		}
	}
	if lines[0]["provider"] == "" {
		t.Errorf("allow: no provider (%v)", lines[0])
	}
}

// --log-format text writes the audit log as key=value lines.
func TestAuditLogText(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	a := startAudit(t, nil, "--issuer", idp.URL, "--log-format", "text")
	if code := a.check(t, "", "/x?q=1", "r-7"); code != codes.Unauthenticated {
		t.Fatalf("no token: %v", code)
	}
	text := a.text(t)
	for _, want := range []string{"msg=decision", "request_id=r-7", "path=/x ", "decision=deny", "reason=no_token", "rule=-1", "cache=none", "latency="} {
		if !strings.Contains(text, want) {
			t.Errorf("audit log lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "q=1") || strings.Contains(text, secretCookie) {
		t.Errorf("audit log holds the query or the cookie:\n%s", text)
	}
}

// Every denial is logged; allows 1 in --audit-sample-allows.
func TestAuditLogSamplesAllows(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	tests := []struct {
		name       string
		sample     string
		wantAllows int
	}{
		{name: "every allow", sample: "1", wantAllows: 6},
		{name: "every third", sample: "3", wantAllows: 2},
		{name: "none", sample: "0", wantAllows: 0},
		{name: "default 1 in 100", sample: "100", wantAllows: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAudit(t, nil, "--issuer", idp.URL, "--audit-sample-allows", tt.sample)
			tok := mint(t, idp, "bob")
			for i := range 6 {
				if code := a.check(t, tok, "/x", ""); code != codes.OK {
					t.Fatalf("allow %d: %v", i, code)
				}
				if i%3 == 0 {
					if code := a.check(t, "", "/x", ""); code != codes.Unauthenticated {
						t.Fatalf("deny %d: %v", i, code)
					}
				}
			}
			allows, denies := decisions(a.lines(t))
			if allows != tt.wantAllows || denies != 2 {
				t.Errorf("%d allows and %d denials logged, want %d and 2:\n%s", allows, denies, tt.wantAllows, a.text(t))
			}
		})
	}
}

// Past --audit-deny-rate denials a second, denials are counted, not
// logged, and one line says how many were left out.
func TestAuditLogRateLimitsDenials(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	clock := newTestClock()
	a := startAudit(t, clock.Now, "--issuer", idp.URL, "--audit-deny-rate", "2")
	deny := func(n int) {
		for range n {
			if code := a.check(t, "", "/x", ""); code != codes.Unauthenticated {
				t.Fatalf("deny: %v", code)
			}
		}
	}
	deny(5)
	if _, denies := decisions(a.lines(t)); denies != 2 {
		t.Fatalf("%d denials logged in one second, want 2:\n%s", denies, a.text(t))
	}
	clock.Add(time.Second)
	deny(1) // a new second: the summary first
	lines := a.lines(t)
	if len(lines) != 4 || lines[2]["msg"] != "audit: suppressed 3 denials" || lines[2]["suppressed"] != float64(3) || lines[3]["decision"] != "deny" {
		t.Fatalf("after a second, want the summary of 3 then the denial:\n%s", a.text(t))
	}
	deny(2) // over the rate again: the timer's summary writes it
	a.mu.Lock()
	fs := a.summaries
	a.mu.Unlock()
	if len(fs) != 2 {
		t.Fatalf("%d summaries scheduled, want 2 (one a second with suppressions)", len(fs))
	}
	fs[1]()
	lines = a.lines(t)
	if last := lines[len(lines)-1]; last["msg"] != "audit: suppressed 1 denials" {
		t.Errorf("last line %v, want the summary of 1", last)
	}
	fs[0]() // nothing left to tell
	if n := len(a.lines(t)); n != len(lines) {
		t.Errorf("an empty summary wrote a line:\n%s", a.text(t))
	}
}

// The cache field says what answered: the verification, the token cache,
// the negative cache, or the request's twin (dedup).
func TestAuditLogCacheLayer(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	tests := []struct {
		name string
		args []string
		toks func(good string) []string
		ids  []string
		want []string
	}{
		{name: "token cache", toks: func(g string) []string { return []string{g, g} }, ids: []string{"", ""}, want: []string{"verified", "token_cache"}},
		{name: "negative cache", toks: func(g string) []string { return []string{g + "x", g + "x"} }, ids: []string{"", ""}, want: []string{"verified", "negative_cache"}},
		// Without the negative cache, a twin's denial is what answers.
		{name: "dedup twin", args: []string{"--negative-cache-size", "0"}, toks: func(g string) []string { return []string{g + "x", g + "x", g + "x"} },
			ids: []string{"twin", "twin", ""}, want: []string{"verified", "dedup", "verified"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAudit(t, nil, append([]string{"--issuer", idp.URL, "--audit-sample-allows", "1"}, tt.args...)...)
			for i, tok := range tt.toks(mint(t, idp, "carol")) {
				a.check(t, tok, "/x", tt.ids[i])
			}
			lines := a.lines(t)
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tt.want), a.text(t))
			}
			for i, l := range lines {
				if l["cache"] != tt.want[i] {
					t.Errorf("check %d: cache %v, want %s", i, l["cache"], tt.want[i])
				}
			}
		})
	}
}

// Without --audit-log there is no auditor: the check path does no more
// than before.
func TestAuditLogOffByDefault(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	a := startApp(t, true, "--issuer", idp.URL)
	if a.audit != nil {
		t.Fatal("an auditor without --audit-log")
	}
}

// BenchmarkAuditObserve is the cost of the check hook (metrics and the
// audit log) for a cached allow: off, and on with 1 allow in 100 logged
// (to io.Discard, as JSON), to set beside BenchmarkCheck/cached.
func BenchmarkAuditObserve(b *testing.B) {
	o := authz.Observation{
		Request:  authz.Request{Method: "GET", Host: "api.example.com", Path: "/v1/items?page=2", RequestID: "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"},
		Decision: authz.Decision{Allow: true, Reason: authz.ReasonOK, Provider: "default", Subject: "alice", Cached: true, Layer: authz.LayerTokenCache},
		Elapsed:  time.Microsecond,
	}
	for _, bc := range []struct {
		name  string
		audit *auditor
	}{
		{name: "off"},
		{name: "sample1", audit: &auditor{log: slog.New(slog.NewJSONHandler(io.Discard, nil)), sample: 1, rate: 100, now: time.Now}},
		{name: "sample100", audit: &auditor{log: slog.New(slog.NewJSONHandler(io.Discard, nil)), sample: 100, rate: 100, now: time.Now}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a := &Server{log: slog.New(slog.NewJSONHandler(io.Discard, nil)), metrics: newMetrics(), audit: bc.audit}
			a.metrics.setProviders([]string{"default"}, false)
			b.ReportAllocs()
			for b.Loop() {
				a.observe(o)
			}
		})
	}
}
