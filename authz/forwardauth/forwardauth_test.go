package forwardauth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/forwardauth"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
)

func TestForwardAuth(t *testing.T) {
	e := authztest.New(t, nil, authztest.Option(func(c *authz.Config, _ *authz.ProviderConfig) {
		c.Rules = []authz.RuleConfig{{Match: authz.Match{PathPrefix: "/public"}, Action: authz.ActionAllow}}
	}))
	srv := httptest.NewServer(forwardauth.New(e.Eng))
	defer srv.Close()
	tok := e.Token(jwt.MapClaims{"sub": "user_7"})
	noSub := e.Token(jwt.MapClaims{"sub": nil})
	const all = "x-auth-subject,x-auth-issuer"

	tests := []struct {
		name        string
		path        string
		header      http.Header
		wantStatus  int
		wantSubject string
		wantRemove  string
		wantReason  string
	}{
		{name: "valid token", path: "/", header: http.Header{"Authorization": {"Bearer " + tok}}, wantStatus: 200, wantSubject: "user_7"},
		{name: "no token", path: "/", wantStatus: 401, wantReason: "missing_token"},
		{name: "two Authorization headers", path: "/", header: http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, wantStatus: 401, wantReason: "invalid_token"},
		{name: "Traefik/Caddy: X-Forwarded-Uri is the original path", path: "/auth", header: http.Header{"X-Forwarded-Uri": {"/public/a"}, "X-Forwarded-Method": {"GET"}}, wantStatus: 200, wantRemove: all},
		{name: "nginx: X-Original-URI is the original path", path: "/auth", header: http.Header{"X-Original-Uri": {"/public/a"}, "X-Original-Method": {"GET"}}, wantStatus: 200, wantRemove: all},
		{name: "X-Forwarded-Uri and X-Original-URI disagree: a client sent one", path: "/auth", header: http.Header{"X-Forwarded-Uri": {"/private"}, "X-Original-Uri": {"/public/a"}}, wantStatus: 400, wantReason: "invalid_request"},
		{name: "Envoy http_service: the request's own path", path: "/public/x", wantStatus: 200, wantRemove: all},
		{name: "Envoy http_service: a private path", path: "/private", wantStatus: 401, wantReason: "missing_token"},
		{name: "token without sub", path: "/", header: http.Header{"Authorization": {"Bearer " + noSub}}, wantStatus: 200, wantRemove: "x-auth-subject"},
		{name: "public route removes every managed header", path: "/public", wantStatus: 200, wantRemove: all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
			for k, vs := range tt.header {
				req.Header[k] = vs
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("X-Auth-Subject"); got != tt.wantSubject {
				t.Errorf("X-Auth-Subject %q, want %q", got, tt.wantSubject)
			}
			if got := resp.Header.Get("X-Envoy-Auth-Headers-To-Remove"); got != tt.wantRemove {
				t.Errorf("X-Envoy-Auth-Headers-To-Remove %q, want %q", got, tt.wantRemove)
			}
			if tt.wantStatus == 200 {
				return
			}
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="jwtauthz"`) || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("denial headers %v", resp.Header)
			}
			var body map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body["error"] != tt.wantReason {
				t.Errorf("body %v (%v), want error %q", body, err, tt.wantReason)
			}
		})
	}
}

// forward_token: false through forward-auth: the token's cookie goes (the
// header is removed when it was the only cookie), and a query token, which
// a forward-auth answer cannot take out of the URI, is refused.
func TestForwardAuthDropToken(t *testing.T) {
	e := authztest.New(t, nil, authztest.Option(func(_ *authz.Config, p *authz.ProviderConfig) {
		p.TokenSources = []authz.TokenSource{{Cookie: "__session"}, {Query: "access_token"}}
		p.DropToken = true
	}))
	srv := httptest.NewServer(forwardauth.New(e.Eng))
	defer srv.Close()
	tok := e.Token(nil)
	tests := []struct {
		name, uri, cookie string
		wantStatus        int
		wantCookie        string // the Cookie response header
		wantRemoveCookie  bool
	}{
		{name: "other cookies stay", uri: "/x", cookie: "theme=dark; __session=" + tok, wantStatus: 200, wantCookie: "theme=dark"},
		{name: "the only cookie", uri: "/x", cookie: "__session=" + tok, wantStatus: 200, wantRemoveCookie: true},
		{name: "query token", uri: "/x?access_token=" + tok, wantStatus: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/auth", nil)
			req.Header.Set("X-Forwarded-Uri", tt.uri)
			if tt.cookie != "" {
				req.Header.Set("Cookie", tt.cookie)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("Cookie"); got != tt.wantCookie {
				t.Errorf("Cookie %q, want %q", got, tt.wantCookie)
			}
			remove := strings.Split(resp.Header.Get("X-Envoy-Auth-Headers-To-Remove"), ",")
			if got := slices.Contains(remove, "cookie"); got != tt.wantRemoveCookie {
				t.Errorf("cookie removed %v, want %v (%v)", got, tt.wantRemoveCookie, remove)
			}
		})
	}
}

// A forward-auth proxy passes the client's headers on to the app and copies
// only those of jwtauthz's answer it is told of; nginx cannot remove headers
// by prefix. So a query carrying a header jwtauthz manages (identity, claim
// or payload header, in any spelling an upstream reads as the same) is
// refused 400 on every route, before the token is looked at, and never
// reaches the app as if jwtauthz had set it.
func TestForwardAuthRefusesManagedHeaders(t *testing.T) {
	var pc authz.ProviderConfig
	var mu sync.Mutex
	var observed []string
	e := authztest.New(t, nil, authztest.Option(func(c *authz.Config, p *authz.ProviderConfig) {
		p.ClaimHeaders = map[string]string{"x-auth-user": "preferred_username", "x-user-email": "email"}
		p.PayloadHeader = "X-Jwt-Payload"
		pc = *p
		c.Rules = []authz.RuleConfig{{Match: authz.Match{PathPrefix: "/public"}, Action: authz.ActionAllow}}
		c.Observe = func(o authz.Observation) {
			mu.Lock()
			observed = append(observed, o.Decision.Reason.String())
			mu.Unlock()
		}
	}))
	srv := httptest.NewServer(forwardauth.New(e.Eng))
	defer srv.Close()
	bearer := "Bearer " + e.Token(jwt.MapClaims{"preferred_username": "alice"})

	tests := []struct {
		name       string
		uri        string
		header     [][2]string
		wantStatus int
		wantNamed  string // the managed header the error_description names
	}{
		{name: "control: valid token", uri: "/v1", header: [][2]string{{"Authorization", bearer}}, wantStatus: 200},
		{name: "control: an X-Auth- header jwtauthz does not set", uri: "/v1", header: [][2]string{{"Authorization", bearer}, {"X-Auth-Role", "admin"}}, wantStatus: 200},
		{name: "claim header beside a valid token", uri: "/v1", header: [][2]string{{"Authorization", bearer}, {"X-Auth-User", "root"}}, wantStatus: 400, wantNamed: "x-auth-user"},
		{name: "claim header without the x-auth- prefix", uri: "/v1", header: [][2]string{{"Authorization", bearer}, {"X-User-Email", "root@example.com"}}, wantStatus: 400, wantNamed: "x-user-email"},
		{name: "subject beside a valid token", uri: "/v1", header: [][2]string{{"Authorization", bearer}, {"X-Auth-Subject", "root"}}, wantStatus: 400, wantNamed: "x-auth-subject"},
		{name: "issuer, upper case", uri: "/v1", header: [][2]string{{"Authorization", bearer}, {"X-AUTH-ISSUER", "https://evil"}}, wantStatus: 400, wantNamed: "x-auth-issuer"},
		{name: "payload header", uri: "/v1", header: [][2]string{{"Authorization", bearer}, {"X-Jwt-Payload", "e30"}}, wantStatus: 400, wantNamed: "x-jwt-payload"},
		{name: "underscore for a dash", uri: "/v1", header: [][2]string{{"Authorization", bearer}, {"X-Auth_User", "root"}}, wantStatus: 400, wantNamed: "x-auth-user"},
		{name: "empty value", uri: "/v1", header: [][2]string{{"Authorization", bearer}, {"X-Auth-User", ""}}, wantStatus: 400, wantNamed: "x-auth-user"},
		{name: "no token: refused, not challenged", uri: "/v1", header: [][2]string{{"X-Auth-Subject", "root"}}, wantStatus: 400, wantNamed: "x-auth-subject"},
		{name: "public route", uri: "/public/a", header: [][2]string{{"X-Auth-User", "root"}}, wantStatus: 400, wantNamed: "x-auth-user"},
		{name: "control: public route", uri: "/public/a", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/auth", nil)
			req.Header.Set("X-Forwarded-Uri", tt.uri)
			for _, h := range tt.header {
				req.Header[h[0]] = append(req.Header[h[0]], h[1]) // as sent: not canonicalised
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == 200 {
				return
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="jwtauthz"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if resp.Header.Get("X-Auth-Subject") != "" || resp.Header.Get("X-Auth-User") != "" {
				t.Errorf("a refusal carries identity headers: %v", resp.Header)
			}
			var body map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body["error"] != "invalid_request" || !strings.HasSuffix(body["error_description"], ": "+tt.wantNamed) {
				t.Errorf("body %v (%v), want invalid_request naming %s", body, err, tt.wantNamed)
			}
		})
	}
	mu.Lock()
	if n := strings.Count(strings.Join(observed, " "), "spoofed_header"); n != 9 {
		t.Errorf("Observe saw %d spoofed_header decisions, want 9: %q", n, observed)
	}
	mu.Unlock()

	// A reload changes what is managed: a claim header added is refused,
	// one taken away passes (as any header the proxy may pass on).
	ask := func(name string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/auth", nil)
		req.Header.Set("X-Forwarded-Uri", "/v1")
		req.Header.Set("Authorization", bearer)
		req.Header.Set(name, "root")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	pc.ClaimHeaders = map[string]string{"x-auth-team": "team"}
	if err := e.Eng.Update([]authz.ProviderConfig{pc}, nil); err != nil {
		t.Fatal(err)
	}
	if got := ask("X-Auth-Team"); got != 400 {
		t.Errorf("after a reload adding x-auth-team, a client's X-Auth-Team: %d, want 400", got)
	}
	if got := ask("X-User-Email"); got != 200 {
		t.Errorf("after a reload removing x-user-email, a client's X-User-Email: %d, want 200", got)
	}
}
