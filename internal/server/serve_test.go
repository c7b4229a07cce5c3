package server

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

func TestServeEndToEnd(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	a := startApp(t, true, "--issuer", idp.URL)
	tok, _ := idp.Token("alice", time.Hour)

	// gRPC ext_authz.
	cc := dial(t, a.grpcAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api", Path: "/x", Headers: map[string]string{"authorization": "Bearer " + tok}},
	}}}
	resp, err := authv3.NewAuthorizationClient(cc).Check(ctx, req)
	if err != nil || codes.Code(resp.Status.Code) != codes.OK {
		t.Fatalf("Check: %v %v", resp, err)
	}
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: authService})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}

	// HTTP forward-auth, as nginx asks.
	code, _, hdr := get(t, a.httpURL()+"/auth", "Authorization", "Bearer "+tok, "X-Original-URI", "/v1/things", "X-Original-Method", "GET")
	if code != 200 || hdr.Get("X-Auth-Subject") != "alice" || hdr.Get("X-Auth-Issuer") != idp.URL {
		t.Fatalf("forward-auth allow: %d %v", code, hdr)
	}
	code, body, hdr := get(t, a.httpURL()+"/auth")
	if code != 401 || hdr.Get("WWW-Authenticate") != `Bearer realm="jwtauthz"` || !strings.Contains(body, `"error"`) {
		t.Fatalf("forward-auth no token: %d %v %s", code, hdr, body)
	}
	code, body, hdr = get(t, a.httpURL()+"/auth", "Authorization", "Bearer x.y.z")
	if code != 401 || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("forward-auth invalid: %d %v %s", code, hdr, body)
	}

	// Admin.
	if code, _, _ := get(t, a.adminURL()+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, _, _ := get(t, a.adminURL()+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	code, body, _ = get(t, a.adminURL()+"/cache/health")
	var report struct {
		Status     string
		Components map[string]map[string]any
	}
	if err := json.Unmarshal([]byte(body), &report); err != nil || code != 200 {
		t.Fatalf("/cache/health %d %s", code, body)
	}
	if report.Status != "healthy" {
		t.Errorf("status %q", report.Status)
	}
	for _, c := range []string{"jwt_validation_cache", "request_dedup_cache", "jwks_cache"} {
		if report.Components[c] == nil {
			t.Errorf("component %s missing from %s", c, body)
		}
	}
	for _, k := range []string{"status", "hits", "misses", "hit_rate", "size", "capacity", "evictions"} {
		if _, ok := report.Components["jwt_validation_cache"][k]; !ok {
			t.Errorf("jwt_validation_cache.%s missing", k)
		}
	}
	if strings.Contains(a.logs.String(), tok) || strings.Contains(a.logs.String(), strings.Split(tok, ".")[2]) {
		t.Error("a token reached the logs")
	}
}

func TestNotReadyUntilKeys(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	idp.SetFault(issuer.Fail)
	a := startApp(t, false, "--issuer", idp.URL)
	code, body, _ := get(t, a.adminURL()+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "default") {
		t.Fatalf("/readyz %d %s", code, body)
	}
	cc := dial(t, a.grpcAddr())
	h, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health before keys: %v %v", h, err)
	}
	idp.SetFault(issuer.OK)
	a.waitReady(t) // the first retry comes within a second
	h, err = healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health after keys: %v %v", h, err)
	}
}

func TestDevCommand(t *testing.T) {
	a := startApp(t, true, "dev")
	code, tok, _ := get(t, a.adminURL()+"/dev/token?sub=bob&ttl=10m")
	if code != 200 {
		t.Fatalf("/dev/token %d %s", code, tok)
	}
	code, _, hdr := get(t, a.httpURL()+"/", "Authorization", "Bearer "+strings.TrimSpace(tok))
	if code != 200 || hdr.Get("X-Auth-Subject") != "bob" {
		t.Fatalf("dev token refused: %d %v", code, hdr)
	}
	if code, _, _ := get(t, a.adminURL()+"/dev/token?ttl=forever"); code != 400 {
		t.Fatalf("bad ttl: %d", code)
	}
}

func TestServeHasNoDevIssuer(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	a := startApp(t, true, "--issuer", idp.URL)
	if code, _, _ := get(t, a.adminURL()+"/dev/token"); code != 404 {
		t.Fatalf("/dev/token under serve: %d", code)
	}
}

// The gRPC Unix socket is for its owner and group alone, whatever the
// umask: Envoy in jwtauthz's group (or the pod's fsGroup) may connect.
func TestUnixSocketMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "grpc.sock")
	l, err := listen("unix://" + p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode(); m&os.ModeSocket == 0 || m.Perm() != 0o660 {
		t.Fatalf("mode %v, want a socket with 0660", m)
	}
}
