package server

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

// forgeSig changes one character in the middle of tok's signature: still
// base64url, no longer the signer's.
func forgeSig(tok string) string {
	i := strings.LastIndexByte(tok, '.') + 20
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// okHeader returns the value an ok_response sets for name, "" if none.
func okHeader(resp *authv3.CheckResponse, name string) string {
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if strings.EqualFold(h.GetHeader().GetKey(), name) {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// TestOptionalOrFailedEndToEnd: a route with action optional_or_failed
// lets a request with no token, an expired one or a forged one pass over
// gRPC and forward-auth (200, no identity header, the client's removed),
// and one with a valid token pass with its headers; the failures count as
// allows with their reason, in the metrics and in the audit log, where
// they are logged as denials are (every one, not sampled).
func TestOptionalOrFailedEndToEnd(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	aa := startAudit(t, nil, "--audit-sample-allows", "0", "--config", writeFile(t, "providers:\n  - name: keycloak\n    issuer: "+idp.URL+"\n"+
		"rules:\n  - match: {path_prefix: /feed/}\n    action: optional_or_failed\n  - match: {path_prefix: /}\n"))
	now := time.Now()
	valid := mint(t, idp, "alice")
	expired, err := idp.Mint(jwt.MapClaims{"sub": "alice", "iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, wantSub string
	}{
		{name: "no token"},
		{name: "expired", token: expired},
		{name: "forged signature", token: forgeSig(valid)},
		{name: "valid", token: valid, wantSub: "alice"},
	}
	for _, tt := range tests {
		t.Run("grpc "+tt.name, func(t *testing.T) {
			req := checkReq(tt.token, "/feed/today")
			req.Attributes.Request.Http.Headers["x-auth-subject"] = "admin" // the client's own
			resp, err := aa.client.Check(context.Background(), req)
			if err != nil || codes.Code(resp.Status.Code) != codes.OK || resp.GetOkResponse() == nil {
				t.Fatalf("Check: %v %v, want OK", resp.GetStatus(), err)
			}
			if got := okHeader(resp, "x-auth-subject"); got != tt.wantSub {
				t.Errorf("x-auth-subject set to %q, want %q", got, tt.wantSub)
			}
			if tt.wantSub == "" && !slices.Contains(resp.GetOkResponse().GetHeadersToRemove(), "x-auth-subject") {
				t.Errorf("the client's x-auth-subject is not removed: %v", resp.GetOkResponse().GetHeadersToRemove())
			}
		})
		t.Run("forward-auth "+tt.name, func(t *testing.T) {
			var hs [][2]string
			if tt.token != "" {
				hs = append(hs, [2]string{"Authorization", "Bearer " + tt.token})
			}
			resp := forwardAuth(t, aa.testApp, "/feed/today", hs)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Auth-Subject") != tt.wantSub {
				t.Errorf("%d, X-Auth-Subject %q; want 200, %q", resp.StatusCode, resp.Header.Get("X-Auth-Subject"), tt.wantSub)
			}
		})
	}
	t.Run("forward-auth: the client's x-auth-subject is still refused", func(t *testing.T) {
		resp := forwardAuth(t, aa.testApp, "/feed/today", [][2]string{{"Authorization", "Bearer " + expired}, {"X-Auth-Subject", "admin"}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%d, want 400 spoofed_header", resp.StatusCode)
		}
	})
	t.Run("control: another route denies", func(t *testing.T) {
		resp, err := aa.client.Check(context.Background(), checkReq(expired, "/api"))
		if err != nil || codes.Code(resp.Status.Code) != codes.Unauthenticated {
			t.Fatalf("Check: %v %v, want UNAUTHENTICATED", resp.GetStatus(), err)
		}
	})

	_, body, _ := get(t, aa.adminURL()+"/metrics")
	for _, series := range []string{
		`jwtauthz_check_total{decision="allow",provider="keycloak",reason="expired"} 2`,
		`jwtauthz_check_total{decision="allow",provider="keycloak",reason="bad_signature"} 2`,
		`jwtauthz_check_total{decision="allow",provider="",reason="anonymous"} 2`,
		`jwtauthz_check_total{decision="allow",provider="keycloak",reason="ok"} 2`,
		`jwtauthz_check_total{decision="deny",provider="keycloak",reason="expired"} 1`,
		`jwtauthz_check_total{decision="allow",provider="keycloak",reason="wrong_audience"} 0`, // pre-created
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	for _, series := range []string{
		`jwtauthz_check_total{decision="allow",provider="",reason="no_token"}`,
		`jwtauthz_check_total{decision="allow",provider="",reason="bad_request"}`,
		`jwtauthz_check_total{decision="allow",provider="keycloak",reason="no_token"}`,
	} {
		if strings.Contains(body, series) {
			t.Errorf("/metrics holds the impossible series %s", series)
		}
	}

	var failedOpen int
	for _, l := range aa.lines(t) {
		if l["decision"] == "allow" {
			if l["reason"] == "ok" || l["reason"] == "anonymous" {
				t.Errorf("audit: %v logged with --audit-sample-allows 0", l)
			}
			if l["reason"] == "expired" && l["provider"] == "keycloak" && l["rule"] == float64(0) && l["path"] == "/feed/today" {
				failedOpen++
			}
		}
	}
	if failedOpen != 2 {
		t.Errorf("audit: %d lines of decision allow reason expired, want 2:\n%s", failedOpen, aa.text(t))
	}
}

// TestCORSPreflightEndToEnd: with cors_preflight allow (flag, variable or
// file), a preflight to a protected route passes over gRPC and
// forward-auth; without it, it is denied 401.
func TestCORSPreflightEndToEnd(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	file := func(extra string) string {
		return writeFile(t, extra+"providers:\n  - name: keycloak\n    issuer: "+idp.URL+"\nrules:\n  - match: {path_prefix: /}\n    require: {scopes: [admin]}\n")
	}
	tests := []struct {
		name string
		env  []string
		args []string
		want bool
	}{
		{name: "flag", args: []string{"--cors-preflight", "allow", "--config", file("")}, want: true},
		{name: "variable", env: []string{"JWTAUTHZ_CORS_PREFLIGHT", "allow"}, args: []string{"--config", file("")}, want: true},
		{name: "file", args: []string{"--config", file("cors_preflight: allow\n")}, want: true},
		{name: "off", args: []string{"--cors-preflight", "off", "--config", file("")}},
		{name: "default", args: []string{"--config", file("")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAppEnv(t, true, envOf(tt.env...), tt.args...)
			client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
			req := checkReq("", "/admin/users")
			req.Attributes.Request.Http.Method = "OPTIONS"
			h := req.Attributes.Request.Http.Headers
			h["origin"], h["access-control-request-method"], h["x-auth-subject"] = "https://app.example.com", "DELETE", "admin"
			resp, err := client.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			fa := forwardAuth(t, a, "/admin/users", [][2]string{{"X-Forwarded-Method", "OPTIONS"}, {"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "DELETE"}})
			wantCode, wantHTTP := codes.Unauthenticated, http.StatusUnauthorized
			if tt.want {
				wantCode, wantHTTP = codes.OK, http.StatusOK
				if !slices.Contains(resp.GetOkResponse().GetHeadersToRemove(), "x-auth-subject") || okHeader(resp, "x-auth-subject") != "" {
					t.Errorf("preflight: the client's x-auth-subject reaches the upstream: %v", resp.GetOkResponse())
				}
			}
			if codes.Code(resp.Status.Code) != wantCode || fa.StatusCode != wantHTTP {
				t.Errorf("gRPC %v, forward-auth %d; want %v, %d", codes.Code(resp.Status.Code), fa.StatusCode, wantCode, wantHTTP)
			}
			// A plain OPTIONS, without the preflight's headers, is any request.
			plain := checkReq("", "/admin/users")
			plain.Attributes.Request.Http.Method = "OPTIONS"
			if resp, err := client.Check(context.Background(), plain); err != nil || codes.Code(resp.Status.Code) != codes.Unauthenticated {
				t.Errorf("plain OPTIONS: %v %v, want UNAUTHENTICATED", resp.GetStatus(), err)
			}
		})
	}
}
