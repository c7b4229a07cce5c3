package server

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/introspect/introspecttest"
)

// introspectionApp runs jwtauthz, on clock, with one introspection provider
// "hydra" for idp (its endpoint given, or discovered if discover), whose
// client secret is in a file.
func introspectionApp(t *testing.T, idp *introspecttest.Server, clock *testClock, discover bool, args ...string) *testApp {
	t.Helper()
	return startAppClock(t, clock.Now, append([]string{"--config", introspectionConfig(t, idp, discover)}, args...)...)
}

// introspectionConfig writes introspectionApp's config file and returns
// its path.
func introspectionConfig(t *testing.T, idp *introspecttest.Server, discover bool) string {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secret, []byte(idp.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "      url: " + idp.Endpoint() + "\n"
	if discover {
		url = ""
	}
	yaml := "providers:\n  - name: hydra\n    issuer: " + idp.Issuer() + "\n    audiences: [api]\n    claim_headers: {x-auth-org: org}\n" +
		"    introspection:\n" + url + "      client_id: " + idp.ClientID + "\n      client_secret_file: " + secret + "\n      timeout: 1s\n"
	return writeFile(t, yaml)
}

// checkOpaque asks the gRPC listener about tok and returns the code and the
// headers an allow sets.
func checkOpaque(t *testing.T, client authv3.AuthorizationClient, tok string) (codes.Code, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Check(ctx, checkReq(tok, "/x"))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	h := map[string]string{}
	if ok := resp.GetOkResponse(); ok != nil {
		for _, o := range ok.Headers {
			h[o.Header.Key] = o.Header.Value
		}
	}
	return codes.Code(resp.Status.Code), h
}

func TestIntrospectionEndToEnd(t *testing.T) {
	for _, discover := range []bool{false, true} {
		name := "url"
		if discover {
			name = "discovered"
		}
		t.Run(name, func(t *testing.T) {
			idp := introspecttest.New(t, introspecttest.Options{})
			clock := newTestClock()
			a := introspectionApp(t, idp, clock, discover, "--cache-ttl", "1m")
			client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
			claims := func(sub string) map[string]any {
				return map[string]any{"iss": idp.Issuer(), "sub": sub, "aud": "api", "org": "acme", "exp": clock.Now().Add(time.Hour).Unix(), "scope": "read"}
			}
			alice := idp.Issue(claims("alice"))

			code, h := checkOpaque(t, client, alice)
			if code != codes.OK || h["x-auth-subject"] != "alice" || h["x-auth-issuer"] != idp.Issuer() || h["x-auth-org"] != "acme" {
				t.Fatalf("gRPC: %v %v; want OK with alice's headers", code, h)
			}
			status, _, hdr := get(t, a.httpURL()+"/auth", "Authorization", "Bearer "+alice, "X-Original-URI", "/x", "X-Original-Method", "GET")
			if status != http.StatusOK || hdr.Get("X-Auth-Subject") != "alice" {
				t.Fatalf("forward-auth: %d subject %q; want 200 alice", status, hdr.Get("X-Auth-Subject"))
			}
			if n := idp.CallsFor(alice); n != 1 {
				t.Errorf("%d introspection calls for two checks; want 1 (the second a cache hit)", n)
			}

			// Revoked: the cached grant answers until the cache TTL ends.
			idp.Revoke(alice)
			if code, _ := checkOpaque(t, client, alice); code != codes.OK {
				t.Errorf("revoked, within the cache TTL: %v; want OK (cached)", code)
			}
			clock.Add(time.Minute)
			if code, _ := checkOpaque(t, client, alice); code != codes.Unauthenticated {
				t.Errorf("revoked, past the cache TTL: %v; want Unauthenticated", code)
			}
			if status, _, _ := get(t, a.httpURL()+"/auth", "Authorization", "Bearer "+alice, "X-Original-URI", "/x"); status != http.StatusUnauthorized {
				t.Errorf("forward-auth, revoked: %d; want 401", status)
			}

			// The IdP down: new tokens are 503, a cached one is still allowed.
			bob := idp.Issue(claims("bob"))
			carol := idp.Issue(claims("carol"))
			if code, _ := checkOpaque(t, client, bob); code != codes.OK {
				t.Fatalf("bob: %v", code)
			}
			idp.Close()
			if code, _ := checkOpaque(t, client, carol); code != codes.Unavailable {
				t.Errorf("a new token with the IdP down: %v; want Unavailable", code)
			}
			if status, _, _ := get(t, a.httpURL()+"/auth", "Authorization", "Bearer "+carol, "X-Original-URI", "/x"); status != http.StatusServiceUnavailable {
				t.Errorf("forward-auth, a new token with the IdP down: %d; want 503", status)
			}
			if code, h := checkOpaque(t, client, bob); code != codes.OK || h["x-auth-subject"] != "bob" {
				t.Errorf("a cached token with the IdP down: %v %v; want OK", code, h)
			}
			if status, _, _ := get(t, a.httpURL()+"/auth", "Authorization", "Bearer "+bob, "X-Original-URI", "/x"); status != http.StatusOK {
				t.Errorf("forward-auth, a cached token with the IdP down: %d; want 200", status)
			}

			_, body, _ := get(t, a.adminURL()+"/metrics")
			for _, want := range []string{
				`jwtauthz_introspection_requests_total{outcome="active",provider="hydra"} `,
				`jwtauthz_introspection_requests_total{outcome="inactive",provider="hydra"} 1`,
				`jwtauthz_introspection_duration_seconds_count{provider="hydra"}`,
				`jwtauthz_check_total{decision="deny",provider="hydra",reason="inactive"} `,
				`jwtauthz_check_total{decision="deny",provider="hydra",reason="unavailable"} `,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if strings.Contains(a.logs.String(), idp.ClientSecret) {
				t.Error("the logs show the client secret")
			}
		})
	}
}

// A reload that changes the introspection settings takes a new client; one
// that keeps them keeps the client and the cached grants.
func TestIntrospectionReload(t *testing.T) {
	idp := introspecttest.New(t, introspecttest.Options{})
	clock := newTestClock()
	secret := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secret, []byte(idp.ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := func(clientID string) string {
		return "providers:\n  - name: hydra\n    issuer: " + idp.Issuer() + "\n    introspection:\n      url: " + idp.Endpoint() +
			"\n      client_id: " + clientID + "\n      client_secret_file: " + secret + "\n"
	}
	file := writeFile(t, yaml(idp.ClientID))
	cfg, _, err := config.Load("serve", []string{"--config", file, "--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--admin-addr", "", "--shutdown-delay", "0s"}, envOf(), io.Discard, config.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", file, "--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--admin-addr", "", "--shutdown-delay", "0s"}
	a := runApp(t, cfg, &syncBuffer{}, 0, WithClock(clock.Now), WithReload(config.Loader("serve", args, envOf())))
	a.waitReady(t)
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	tok := idp.Issue(map[string]any{"iss": idp.Issuer(), "sub": "alice", "exp": clock.Now().Add(time.Hour).Unix()})
	if code, _ := checkOpaque(t, client, tok); code != codes.OK {
		t.Fatal(code)
	}
	if err := a.reloadWant("test", nil); err != nil {
		t.Fatal(err)
	}
	checkOpaque(t, client, tok)
	if n := idp.CallsFor(tok); n != 1 {
		t.Errorf("after a reload that changed nothing: %d calls; want 1 (the grant kept)", n)
	}
	before := idp.Calls()
	if err := os.WriteFile(file, []byte(yaml("someone-else")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.reloadWant("test", nil); err != nil {
		t.Fatal(err)
	}
	if code, _ := checkOpaque(t, client, tok); code != codes.Unavailable {
		t.Errorf("after a reload to a client the IdP refuses: %v; want Unavailable (introspection_failed)", code)
	}
	if n := idp.Calls() - before; n != 1 {
		t.Errorf("after a reload that changed client_id: %d calls; want 1 (asked again, with the new client)", n)
	}
}
