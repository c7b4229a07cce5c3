package server

// Issue 17, items 5 and 6, through the real binary: a token cookie or query
// parameter held twice (or under another spelling of its name) is denied
// as malformed, over gRPC and forward-auth, cached or not, and what an
// allow forwards holds no other token; scopes are split at U+0020 alone.

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// sourceCheck is a CheckRequest for path with the given headers.
func sourceCheck(path string, headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api", Path: path, Headers: headers},
	}}}
}

// forgedToken is signed by a key the IdP never published, for sub mallory.
func forgedToken(t *testing.T, idp *issuer.Server) string {
	t.Helper()
	tok, err := issuer.MustSigner("ES256").Sign(jwt.MapClaims{"iss": idp.URL, "sub": "mallory", "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// wantMalformed asserts a gRPC denial as malformed (401).
func wantMalformed(t *testing.T, client authv3.AuthorizationClient, req *authv3.CheckRequest) {
	t.Helper()
	resp, err := client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(resp.Status.GetCode()) != codes.Unauthenticated || resp.Status.GetMessage() != "malformed" || resp.GetOkResponse() != nil {
		t.Fatalf("gRPC: %v %q (ok response %v), want UNAUTHENTICATED malformed", codes.Code(resp.Status.GetCode()), resp.Status.GetMessage(), resp.GetOkResponse())
	}
	if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != http.StatusUnauthorized {
		t.Fatalf("gRPC: HTTP status %d, want 401", got)
	}
}

// forwardAuth asks the HTTP listener about uri with the headers (a name
// twice sends two values) and returns the answer.
func forwardAuth(t *testing.T, a *testApp, uri string, headers [][2]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.httpURL()+"/auth", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-Uri", uri)
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// wantHTTPMalformed asserts a forward-auth denial as malformed: 401, the
// challenge naming it, and nothing an allow would set.
func wantHTTPMalformed(t *testing.T, resp *http.Response) {
	t.Helper()
	want := `Bearer realm="jwtauthz", error="invalid_token", error_description="token malformed"`
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("forward-auth: %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}
	if resp.Header.Get("Cookie") != "" || resp.Header.Get("X-Auth-Subject") != "" {
		t.Fatalf("forward-auth denial sets %v", resp.Header)
	}
}

func TestAmbiguousTokenCookieThroughTheBinary(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	a := startApp(t, true, "--config", writeFile(t, "providers:\n  - name: c\n    issuer: "+idp.URL+"\n    forward_token: false\n    token_sources: [{cookie: __session}]\n"))
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	good, _ := idp.Token("alice", time.Hour)
	forged := forgedToken(t, idp)

	// Controls, which also put the good token in the token cache and
	// request r1 in the dedup: the cases after them must still be denied.
	resp, err := client.Check(context.Background(), sourceCheck("/x", map[string]string{"cookie": "__session=" + good + "; a=b", "x-request-id": "r1"}))
	if err != nil || codes.Code(resp.Status.GetCode()) != codes.OK {
		t.Fatalf("control: %v %v", resp, err)
	}
	var cookie string
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "cookie" {
			cookie = h.GetHeader().GetValue()
		}
	}
	if cookie != "a=b" {
		t.Fatalf("control: forwarded cookie %q, want %q", cookie, "a=b")
	}
	r := forwardAuth(t, a, "/x", [][2]string{{"Cookie", "__session=" + good + "; a=b"}})
	if r.StatusCode != http.StatusOK || r.Header.Get("Cookie") != "a=b" || r.Header.Get("X-Auth-Subject") != "alice" {
		t.Fatalf("forward-auth control: %d %v", r.StatusCode, r.Header)
	}

	tests := []struct {
		name    string
		cookies []string // one cookie header each (over gRPC, joined as Envoy joins them)
		joined  string   // over gRPC, if not the cookies joined with "; "
	}{
		{name: "twice, the valid one first", cookies: []string{"__session=" + good + "; __session=" + forged}},
		{name: "twice, the forged one first", cookies: []string{"__session=" + forged + "; __session=" + good}},
		{name: "a space before = (forwarded as __session =FORGED once)", cookies: []string{"__session=" + good + "; __session =" + forged + "; a=b"}},
		{name: "upper case", cookies: []string{"__session=" + good + "; __SESSION=" + forged}},
		{name: "percent-encoded name", cookies: []string{"__session=" + good + "; %5F%5Fsession=" + forged}},
		{name: "an index", cookies: []string{"__session=" + good + "; __session[0]=" + forged}},
		{name: "two cookie headers", cookies: []string{"__session=" + good, "__session=" + forged},
			joined: "__session=" + good + ",__session=" + forged}, // Envoy's ext_authz joins repeats with ","
		{name: "the valid token under a variant name alone", cookies: []string{"__Session=" + good}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			joined := tt.joined
			if joined == "" {
				joined = strings.Join(tt.cookies, "; ")
			}
			wantMalformed(t, client, sourceCheck("/x", map[string]string{"cookie": joined}))
			// The twin of the allowed request r1 (same id and route).
			wantMalformed(t, client, sourceCheck("/x", map[string]string{"cookie": joined, "x-request-id": "r1"}))
			var hs [][2]string
			for _, c := range tt.cookies {
				hs = append(hs, [2]string{"Cookie", c})
			}
			wantHTTPMalformed(t, forwardAuth(t, a, "/x", hs))
		})
	}
}

func TestAmbiguousTokenParameterThroughTheBinary(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	source := "providers:\n  - name: q\n    issuer: " + idp.URL + "\n    forward_token: %s\n    token_sources: [{query: access_token}]\n"
	// forward_token: false cannot be honoured by forward-auth: gRPC alone.
	dropping := startApp(t, true, "--config", writeFile(t, strings.Replace(source, "%s", "false", 1)), "--http-addr", "")
	forwarding := startApp(t, true, "--config", writeFile(t, strings.Replace(source, "%s", "true", 1)))
	client := authv3.NewAuthorizationClient(dial(t, dropping.grpcAddr()))
	good, _ := idp.Token("alice", time.Hour)
	forged := forgedToken(t, idp)

	resp, err := client.Check(context.Background(), sourceCheck("/x?a=1&access_token="+good, map[string]string{"x-request-id": "r1"}))
	if err != nil || codes.Code(resp.Status.GetCode()) != codes.OK {
		t.Fatalf("control: %v %v", resp, err)
	}
	if got := resp.GetOkResponse().GetQueryParametersToRemove(); !slices.Equal(got, []string{"access_token"}) {
		t.Fatalf("control: query parameters to remove %q", got)
	}
	if r := forwardAuth(t, forwarding, "/x?a=1&access_token="+good, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("forward-auth control: %d", r.StatusCode)
	}

	tests := []struct{ name, query string }{
		{name: "twice", query: "access_token=" + good + "&access_token=" + forged},
		{name: "twice, the forged one first", query: "access_token=" + forged + "&access_token=" + good},
		{name: "percent-encoded name before the valid one", query: "acc%65ss_token=" + forged + "&access_token=" + good},
		{name: "upper case", query: "access_token=" + good + "&ACCESS_TOKEN=" + forged},
		{name: "trailing space in the name", query: "access_token=" + good + "&access_token%20=" + forged},
		{name: "a dot for the underscore", query: "access_token=" + good + "&access.token=" + forged},
		{name: "an index", query: "access_token=" + good + "&access_token[]=" + forged},
		{name: "after a semicolon", query: "access_token=" + good + ";access_token=" + forged},
		{name: "the valid token under a variant name alone", query: "acc%65ss_token=" + good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantMalformed(t, client, sourceCheck("/x?"+tt.query, nil))
			wantMalformed(t, client, sourceCheck("/x?"+tt.query, map[string]string{"x-request-id": "r1"}))
			wantHTTPMalformed(t, forwardAuth(t, forwarding, "/x?"+tt.query, nil))
		})
	}
}

func TestScopesSplitAtSpaceAloneThroughTheBinary(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	a := startApp(t, true, "--issuer", idp.URL, "--config", writeFile(t,
		"rules:\n  - {match: {path_prefix: /admin}, require: {scopes: [admin]}}\n  - {match: {path_prefix: /role}, require: {claims: {role: admin}}}\n"))
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	tests := []struct {
		name   string
		path   string
		claims jwt.MapClaims
		want   codes.Code
	}{
		{name: "control: space-separated", path: "/admin", claims: jwt.MapClaims{"scope": "read admin"}, want: codes.OK},
		{name: "control: spaces in a row", path: "/admin", claims: jwt.MapClaims{"scope": "read  admin "}, want: codes.OK},
		{name: "control: scp array", path: "/admin", claims: jwt.MapClaims{"scp": []string{"orders:read", "admin"}}, want: codes.OK},
		{name: "control: scp string (Entra ID)", path: "/admin", claims: jwt.MapClaims{"scp": "read admin"}, want: codes.OK},
		{name: "no-break space", path: "/admin", claims: jwt.MapClaims{"scope": "read\u00a0admin"}, want: codes.PermissionDenied},
		{name: "tab", path: "/admin", claims: jwt.MapClaims{"scope": "read\tadmin"}, want: codes.PermissionDenied},
		{name: "line feed", path: "/admin", claims: jwt.MapClaims{"scope": "read\nadmin"}, want: codes.PermissionDenied},
		{name: "em space", path: "/admin", claims: jwt.MapClaims{"scope": "read\u2003admin"}, want: codes.PermissionDenied},
		{name: "next line (NEL)", path: "/admin", claims: jwt.MapClaims{"scope": "read\u0085admin"}, want: codes.PermissionDenied},
		{name: "scp array element with a space", path: "/admin", claims: jwt.MapClaims{"scp": []string{"orders:read admin"}}, want: codes.PermissionDenied},
		{name: "scope array element with a space", path: "/admin", claims: jwt.MapClaims{"scope": []string{"read admin"}}, want: codes.PermissionDenied},
		{name: "scp array element with a no-break space", path: "/admin", claims: jwt.MapClaims{"scp": []string{"read\u00a0admin"}}, want: codes.PermissionDenied},
		{name: "control: claim requirement, equal", path: "/role", claims: jwt.MapClaims{"role": "admin"}, want: codes.OK},
		{name: "claim requirement: a space-separated string is one value", path: "/role", claims: jwt.MapClaims{"role": "user admin"}, want: codes.PermissionDenied},
		{name: "claim requirement: an array element with a space is one value", path: "/role", claims: jwt.MapClaims{"role": []string{"user admin"}}, want: codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := jwt.MapClaims{"sub": "alice"}
			for k, v := range tt.claims {
				claims[k] = v
			}
			tok, err := idp.Mint(claims)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Check(context.Background(), checkReq(tok, tt.path))
			if err != nil {
				t.Fatal(err)
			}
			if got := codes.Code(resp.Status.GetCode()); got != tt.want {
				t.Fatalf("gRPC: %v %q, want %v", got, resp.Status.GetMessage(), tt.want)
			}
			if tt.want == codes.PermissionDenied && resp.Status.GetMessage() != "insufficient_scope" {
				t.Fatalf("gRPC: %q, want insufficient_scope", resp.Status.GetMessage())
			}
			wantHTTP := map[codes.Code]int{codes.OK: http.StatusOK, codes.PermissionDenied: http.StatusForbidden}[tt.want]
			if r := forwardAuth(t, a, tt.path, [][2]string{{"Authorization", "Bearer " + tok}}); r.StatusCode != wantHTTP {
				t.Fatalf("forward-auth: %d, want %d", r.StatusCode, wantHTTP)
			}
		})
	}
}
