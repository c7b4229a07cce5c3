package server

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

func TestMetricsAfterKnownChecks(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	a := startApp(t, true, "--issuer", idp.URL)
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	tok, _ := idp.Token("alice", time.Hour)
	for _, c := range []struct{ tok, want string }{{tok, "ok"}, {tok, "ok"}, {tok, "ok"}, {"", "no_token"}, {"a.b.c", "malformed"}} {
		resp, err := client.Check(context.Background(), checkReq(c.tok, "/x"))
		if err != nil || resp.Status.Message != c.want && c.want != "ok" {
			t.Fatalf("check: %v %v", resp, err)
		}
	}
	m := a.metrics
	for _, tt := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"allow", "ok", "default"}, 3},
		{[]string{"deny", "no_token", ""}, 1},
		{[]string{"deny", "malformed", ""}, 1},
	} {
		if got := testutil.ToFloat64(m.checks.WithLabelValues(tt.labels...)); got != tt.want {
			t.Errorf("jwtauthz_check_total%v = %v, want %v", tt.labels, got, tt.want)
		}
	}
	want := `
# HELP jwtauthz_cache_hits_total Cache lookups that found an entry.
# TYPE jwtauthz_cache_hits_total counter
jwtauthz_cache_hits_total{cache="dedup"} 0
jwtauthz_cache_hits_total{cache="negative"} 0
jwtauthz_cache_hits_total{cache="token"} 2
# HELP jwtauthz_cache_misses_total Cache lookups that found none.
# TYPE jwtauthz_cache_misses_total counter
jwtauthz_cache_misses_total{cache="dedup"} 0
jwtauthz_cache_misses_total{cache="negative"} 2
jwtauthz_cache_misses_total{cache="token"} 2
# HELP jwtauthz_jwks_keys Keys in the set in use.
# TYPE jwtauthz_jwks_keys gauge
jwtauthz_jwks_keys{provider="default"} 1
# HELP jwtauthz_jwks_fetch_total JWKS fetch attempts, by provider and result (ok|error).
# TYPE jwtauthz_jwks_fetch_total counter
jwtauthz_jwks_fetch_total{provider="default",result="ok"} 1
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "jwtauthz_cache_hits_total", "jwtauthz_cache_misses_total", "jwtauthz_jwks_keys", "jwtauthz_jwks_fetch_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(m.reg, "jwtauthz_check_duration_seconds", "go_goroutines", "process_resident_memory_bytes", "jwtauthz_jwks_age_seconds"); err != nil || n < 4 {
		t.Errorf("histogram, Go and process collectors: %d series, %v", n, err)
	}
	code, body, _ := get(t, a.adminURL()+"/metrics")
	if code != 200 || !strings.Contains(body, `jwtauthz_check_total{decision="allow",provider="default",reason="ok"} 3`) {
		t.Fatalf("/metrics %d:\n%s", code, body)
	}
}

func TestLogsHoldNoToken(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	// A token in the query string: the decision log shows the path without it.
	a := startApp(t, true, "--config", writeFile(t, "providers:\n  - name: q\n    issuer: "+idp.URL+"\n    token_sources: [{query: access_token}]\n"))
	tok, _ := idp.Token("alice", time.Hour)
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	for _, tk := range []string{tok, tok[:len(tok)-4] + "AAAA"} {
		if _, err := client.Check(context.Background(), checkReq("", "/x?access_token="+tk)); err != nil {
			t.Fatal(err)
		}
	}
	logs := a.logs.String()
	if !strings.Contains(logs, `"msg":"check"`) {
		t.Fatalf("no decision log at debug level:\n%s", logs)
	}
	parts := strings.Split(tok, ".")
	for _, secret := range []string{tok, parts[2], parts[0] + "." + parts[1]} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the logs hold the token or a usable part of it:\n%s", logs)
		}
	}
}

func TestGracefulShutdownAnswersInFlightChecks(t *testing.T) {
	idp := newHangingIdP(t)
	// The IdP hangs: the refresh those checks wait for gives up after the
	// JWKS timeout, well before their own deadline, even on a loaded machine.
	a := startApp(t, true, "--issuer", idp.URL, "--shutdown-delay", "300ms", "--jwks-timeout", "400ms")
	cc, sent := dialCounting(t, a.grpcAddr(), 20)
	client := authv3.NewAuthorizationClient(cc)
	// Checks that wait for an unknown-kid refresh from an IdP that hangs
	// are in flight when the app is told to stop.
	idp.Hang.Store(true)
	stranger := issuer.MustSigner("ES256")
	tok, _ := stranger.Sign(jwt.MapClaims{"iss": idp.URL, "sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := client.Check(ctx, checkReq(tok, "/"))
			if err == nil && codes.Code(resp.Status.Code) != codes.Unauthenticated {
				err = os.ErrInvalid
			}
			errs <- err
		})
	}
	// Every check is on the wire, and the refresh they wait for hangs at
	// the IdP; within the shutdown delay the server reads them all.
	awaitN(t, sent, 20, "checks sent")
	awaitN(t, idp.Hung, 1, "JWKS requests hanging at the IdP")
	stopped := make(chan error, 1)
	go func() { stopped <- a.stop(t) }()
	// Within the shutdown delay the listener still answers, NOT_SERVING.
	for deadline := time.Now().Add(250 * time.Millisecond); ; time.Sleep(time.Millisecond) {
		h, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err == nil && h.Status == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health during the shutdown delay: %v %v, want NOT_SERVING", h, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a check in flight at shutdown got no answer: %v", err)
		}
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestReload(t *testing.T) {
	a1, a2 := issuer.NewServer(), issuer.NewServer()
	defer a1.Close()
	defer a2.Close()
	path := writeFile(t, "providers:\n  - {name: one, issuer: "+a1.URL+"}\n")
	a := startApp(t, true, "--config", path)
	tok1, _ := a1.Token("u1", time.Hour)
	tok2, _ := a2.Token("u2", time.Hour)
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	code := func(tok string) codes.Code {
		resp, err := client.Check(context.Background(), checkReq(tok, "/"))
		if err != nil {
			t.Fatal(err)
		}
		return codes.Code(resp.Status.Code)
	}
	if code(tok1) != codes.OK || code(tok2) != codes.Unauthenticated {
		t.Fatal("before the reload")
	}
	src := a.sources.list()[0]
	hits := a.engine.Stats().Tokens.Hits

	// A second provider and a rule: accepted.
	os.WriteFile(path, []byte("providers:\n  - {name: one, issuer: "+a1.URL+"}\n  - {name: two, issuer: "+a2.URL+"}\nrules:\n  - {match: {path_prefix: /two}, require: {providers: [two]}}\n"), 0o600)
	if err := a.reload("test"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !a.sources.list()[1].Ready(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the new provider never got keys")
		}
	}
	if code(tok2) != codes.OK {
		t.Fatal("the new provider does not take tokens")
	}
	if code(tok1) != codes.OK || a.engine.Stats().Tokens.Hits != hits+1 {
		t.Fatal("the unchanged provider lost its cached tokens")
	}
	if a.sources.list()[0] != src {
		t.Fatal("the unchanged provider's key source was replaced")
	}
	// A broken file: rejected, the running configuration stays.
	os.WriteFile(path, []byte("providers:\n  - {name: one, issuer: "+a1.URL+", jwks_ur: x}\n"), 0o600)
	if err := a.reload("test"); err == nil {
		t.Fatal("a broken configuration was accepted")
	}
	if code(tok2) != codes.OK || !strings.Contains(a.logs.String(), "config reload rejected") {
		t.Fatal("a rejected reload changed the running configuration, or was not logged")
	}
}

func TestReloadOnFileChange(t *testing.T) {
	a1 := issuer.NewServer()
	defer a1.Close()
	path := writeFile(t, "issuer: "+a1.URL+"\n")
	a := startApp(t, true, "--config", path)
	os.WriteFile(path, []byte("issuer: "+a1.URL+"\nrules:\n  - {action: allow}\n"), 0o600)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(a.logs.String(), "config reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("a changed config file was not reloaded")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWarnsOfUnprefixedHeaders: with the HTTP forward-auth listener on, a
// header jwtauthz sets upstream that the shipped proxy configurations do
// not copy (not named x-auth-…) is logged, at start and at each reload.
func TestWarnsOfUnprefixedHeaders(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	file := func(email string) string {
		return "providers:\n  - {name: one, issuer: " + idp.URL + ", claim_headers: {" + email + ": email, x-auth-name: name}, payload_header: x-jwt-payload}\n"
	}
	const warning = "header not named x-auth-"
	warned := func(a *testApp) []string {
		var hs []string
		for _, line := range strings.Split(a.logs.String(), "\n") {
			if strings.Contains(line, warning) {
				var l struct{ Provider, Header string }
				if err := json.Unmarshal([]byte(line), &l); err != nil || l.Provider != "one" {
					t.Errorf("warning %s: want provider one", line)
				}
				hs = append(hs, l.Header)
			}
		}
		return hs
	}
	path := writeFile(t, file("x-user-email"))
	a := startApp(t, false, "--config", path)
	if got, want := warned(a), []string{"x-user-email", "x-jwt-payload"}; !slices.Equal(got, want) {
		t.Errorf("at start, warned of %q, want %q", got, want)
	}
	// The file watcher's reload, the only one: a reload of our own would
	// race it.
	os.WriteFile(path, []byte(file("X-Auth-Email")), 0o600)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(a.logs.String(), "config file changed"); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the changed config file was not reloaded")
		}
	}
	if got, want := warned(a), []string{"x-user-email", "x-jwt-payload", "x-jwt-payload"}; !slices.Equal(got, want) {
		t.Errorf("after a reload, warned of %q, want %q", got, want)
	}
	grpcOnly := startApp(t, false, "--config", writeFile(t, file("x-user-email")), "--http-addr", "")
	if got := warned(grpcOnly); len(got) > 0 {
		t.Errorf("without the HTTP listener, warned of %q", got)
	}
	// A reload does not change http_addr: the running listener decides.
	off, on := *a.cfg, *grpcOnly.cfg
	off.HTTPAddr, on.HTTPAddr = "", ":9002"
	a.warnUnprefixed(&off)
	grpcOnly.warnUnprefixed(&on)
	if got := warned(a); len(got) != 5 {
		t.Errorf("a reload turning http_addr off: warned of %q, want the running listener's warnings again", got)
	}
	if got := warned(grpcOnly); len(got) > 0 {
		t.Errorf("a reload turning http_addr on: warned of %q, though no HTTP listener runs", got)
	}
}
