package server

// Issue 22's CEL conditions through the whole server, over gRPC and
// forward-auth: match.when choosing a rule by the request, require.when
// reading claims, headers, the query and the method.

import (
	"context"
	"net/http"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

func TestConditionsEndToEnd(t *testing.T) {
	idp := issuer.NewServer(issuer.MustSigner("ES256"))
	defer idp.Close()
	a := startApp(t, true, "--config", writeFile(t, "providers:\n  - name: idp\n    issuer: "+idp.URL+"\n    audiences: [api]\nrules:\n"+
		"  - match:\n      path_prefix: /admin/\n      when: request.method != \"GET\" || \"edit\" in request.query\n"+
		"    require:\n      when: claims.role == \"admin\"\n"+
		"  - require:\n      when: >-\n        claims.org == \"acme\"\n        && (!(\"x-tenant\" in request.headers) || request.headers[\"x-tenant\"] == claims.tenant)\n"))
	tok := func(claims jwt.MapClaims) string {
		c := jwt.MapClaims{"iss": idp.URL}
		for k, v := range claims {
			c[k] = v
		}
		return mintWith(t, idp.Signing(), nil, c)
	}
	acme := tok(jwt.MapClaims{"org": "acme", "tenant": "t1"})
	admin := tok(jwt.MapClaims{"org": "other", "role": "admin"})
	other := tok(jwt.MapClaims{"org": "other"})
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	tests := []struct {
		name         string
		tok          string
		method, path string
		tenant       string // x-tenant, if not ""
		wantDesc     string // "": allowed; else the denial's error_description
	}{
		{name: "claim holds", tok: acme, method: "GET", path: "/x"},
		{name: "claim differs", tok: other, method: "GET", path: "/x", wantDesc: "rule 1 condition not met"},
		{name: "header equals a claim", tok: acme, method: "GET", path: "/x", tenant: "t1"},
		{name: "header differs from a claim", tok: acme, method: "GET", path: "/x", tenant: "t2", wantDesc: "rule 1 condition not met"},
		{name: "match.when by method selects the admin rule", tok: acme, method: "POST", path: "/admin/x", wantDesc: "rule 0 condition not met"},
		{name: "match.when by query selects the admin rule", tok: acme, method: "GET", path: "/admin/x?edit=1", wantDesc: "rule 0 condition not met"},
		{name: "admin rule holds", tok: admin, method: "POST", path: "/admin/x"},
		{name: "match.when false: the next rule", tok: acme, method: "GET", path: "/admin/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"authorization": "Bearer " + tt.tok}
			fa := []string{"Authorization", "Bearer " + tt.tok, "X-Original-URI", tt.path, "X-Original-Method", tt.method}
			if tt.tenant != "" {
				h["x-tenant"] = tt.tenant
				fa = append(fa, "X-Tenant", tt.tenant)
			}
			req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
				Http: &authv3.AttributeContext_HttpRequest{Method: tt.method, Host: "api", Path: tt.path, Headers: h},
			}}}
			for i := range 2 { // verified, then from the token cache
				resp, err := client.Check(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				status, _, hdr := get(t, a.httpURL()+"/auth", fa...)
				if tt.wantDesc == "" {
					if codes.Code(resp.Status.Code) != codes.OK || status != http.StatusOK {
						t.Fatalf("check %d: gRPC %v %q, forward-auth %d; want both allowed", i, codes.Code(resp.Status.Code), resp.Status.Message, status)
					}
					continue
				}
				if codes.Code(resp.Status.Code) != codes.PermissionDenied || resp.Status.Message != "condition_failed" || resp.GetOkResponse() != nil {
					t.Fatalf("check %d, gRPC: %v %q; want PermissionDenied condition_failed", i, codes.Code(resp.Status.Code), resp.Status.Message)
				}
				want := `error="insufficient_scope", error_description="` + tt.wantDesc + `"`
				if ch := hdr.Get("WWW-Authenticate"); status != http.StatusForbidden || !strings.Contains(ch, want) {
					t.Fatalf("check %d, forward-auth: %d %q; want 403 with %s", i, status, ch, want)
				}
			}
		})
	}
}
