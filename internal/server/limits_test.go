package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// These tests hold jwtauthz to what a zero setting means (clock skew,
// token cache, negative cache) and to --network-wait, through the real
// listeners.

// checkAs sends a gRPC Check for tok with x-request-id id ("" for none),
// with a 60 s deadline, and returns its code and reason.
func checkAs(t *testing.T, client authv3.AuthorizationClient, tok, id string) (codes.Code, string) {
	t.Helper()
	req := checkReq(tok, "/x")
	if id != "" {
		req.Attributes.Request.Http.Headers["x-request-id"] = id
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := client.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return codes.Code(resp.Status.Code), resp.Status.Message
}

// askForwardAuth asks the HTTP forward-auth listener about tok with
// X-Request-Id id ("" for none) and returns the status.
func askForwardAuth(t *testing.T, a *testApp, tok, id string) int {
	t.Helper()
	h := []string{"Authorization", "Bearer " + tok, "X-Original-URI", "/x", "X-Original-Method", "GET"}
	if id != "" {
		h = append(h, "X-Request-Id", id)
	}
	code, _, _ := get(t, a.httpURL()+"/auth", h...)
	return code
}

// With --clock-skew 0s a token is refused from its exp on: 2 s past it,
// by gRPC and forward-auth, with or without a request id.
func TestClockSkewZeroRefusesAnExpiredToken(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	a := startApp(t, true, "--issuer", idp.URL, "--clock-skew", "0s")
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	now := time.Now()
	tok, err := idp.Mint(jwt.MapClaims{"sub": "alice", "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(-2 * time.Second).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   string
	}{
		{name: "alone"},
		{name: "with a request id", id: "req-1"},
		{name: "its twin", id: "req-1"},
	}
	for _, tt := range tests {
		if code, reason := checkAs(t, client, tok, tt.id); code != codes.Unauthenticated || reason != "expired" {
			t.Errorf("gRPC, %s: %v %q, want Unauthenticated expired", tt.name, code, reason)
		}
		if code := askForwardAuth(t, a, tok, tt.id); code != http.StatusUnauthorized {
			t.Errorf("forward-auth, %s: %d, want 401", tt.name, code)
		}
	}
}

// A zero cache size or TTL turns the token cache off: every check
// verifies its token. A zero negative cache size remembers no rejection.
func TestZeroCachesAreOff(t *testing.T) {
	tests := []struct {
		name string
		args []string
		bad  bool // check a token with a bad signature, which the negative cache would remember
	}{
		{name: "cache size 0", args: []string{"--cache-size", "0"}},
		{name: "cache ttl 0", args: []string{"--cache-ttl", "0s"}},
		{name: "negative cache size 0", args: []string{"--negative-cache-size", "0"}, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idp := issuer.NewServer()
			defer idp.Close()
			a := startApp(t, true, append([]string{"--issuer", idp.URL}, tt.args...)...)
			client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
			tok, err := idp.Token("alice", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			want := codes.OK
			if tt.bad {
				tok, want = tok[:len(tok)-4]+"AAAA", codes.Unauthenticated
			}
			for i := range 3 {
				if code, reason := checkAs(t, client, tok, ""); code != want {
					t.Fatalf("check %d: %v %q, want %v", i, code, reason, want)
				}
			}
			st := a.engine.Stats()
			cache := st.Tokens
			if tt.bad {
				cache = st.Negative
			}
			if st.Verified != 3 || cache.Size != 0 || cache.Hits != 0 || cache.Capacity != 0 {
				t.Fatalf("verified %d times, cache %+v: want every check verified and nothing kept", st.Verified, cache)
			}
		})
	}
}

// stuckJWKS serves keys at /jwks.json once; every later fetch hangs until
// the test ends, and the first of them is announced on hanging (buffered).
type stuckJWKS struct {
	*issuer.Issuer
	fetches atomic.Int32
	hanging chan struct{}
	release chan struct{}
}

func (s *stuckJWKS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/jwks.json") || s.fetches.Add(1) == 1 {
		s.Issuer.ServeHTTP(w, r)
		return
	}
	select {
	case s.hanging <- struct{}{}:
	default:
	}
	select {
	case <-s.release:
	case <-r.Context().Done():
	}
	http.Error(w, "gave up", http.StatusServiceUnavailable)
}

// While a scheduled JWKS fetch hangs, a check with an unknown kid joins it
// but waits no longer than --network-wait (500 ms by default), even with a
// 60 s deadline and a 4.5 s JWKS timeout.
func TestNetworkWaitBoundsAStuckFetch(t *testing.T) {
	tests := []struct {
		name string
		args []string
		max  time.Duration // well under the 4.5 s JWKS timeout, well over the wait
	}{
		{name: "default", max: 2 * time.Second},
		{name: "zero: no wait", args: []string{"--network-wait", "0s"}, max: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stuck := &stuckJWKS{Issuer: issuer.New("", issuer.MustSigner("ES256")), hanging: make(chan struct{}, 1), release: make(chan struct{})}
			srv := httptest.NewServer(stuck)
			t.Cleanup(srv.Close) // after the app stops: a hung fetch would keep Close waiting
			stuck.URL = srv.URL
			args := append([]string{"--issuer", srv.URL, "--jwks-url", stuck.JWKSURL(), "--jwks-refresh", "10ms", "--jwks-timeout", "4.5s"}, tt.args...)
			a := startApp(t, true, args...)
			t.Cleanup(func() { close(stuck.release) }) // before the app stops (cleanups run last first)
			select {
			case <-stuck.hanging:
			case <-time.After(10 * time.Second):
				t.Fatal("no scheduled fetch")
			}
			stranger := issuer.MustSigner("ES256") // its kid is not in the set
			tok, err := stranger.Sign(jwt.MapClaims{"iss": srv.URL, "sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
			if err != nil {
				t.Fatal(err)
			}
			client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
			start := time.Now()
			code, reason := checkAs(t, client, tok, "")
			if took := time.Since(start); code != codes.Unauthenticated || took > tt.max {
				t.Errorf("gRPC: %v %q after %v; want Unauthenticated within %v", code, reason, took, tt.max)
			}
			start = time.Now()
			if code := askForwardAuth(t, a, tok, ""); code != http.StatusUnauthorized || time.Since(start) > tt.max {
				t.Errorf("forward-auth: %d after %v; want 401 within %v", code, time.Since(start), tt.max)
			}
		})
	}
}
