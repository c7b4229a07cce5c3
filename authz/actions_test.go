package authz_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/authz"
)

func TestOptionalOrFailed(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) {
		c.Rules = []authz.RuleConfig{
			{Match: authz.Match{PathPrefix: "/soft"}, Action: authz.ActionOptionalOrFailed, Require: authz.Require{Scopes: []string{"read"}}},
			{Match: authz.Match{PathPrefix: "/hard"}, Require: authz.Require{Scopes: []string{"read"}}},
		}
	}))
	now := e.clock.Now()
	valid := e.token(jwt.MapClaims{"scope": "read"})
	tests := []struct {
		name       string
		path       string
		token      string // the Authorization header's token; "" none
		oversize   bool
		ambiguous  bool
		wantAllow  bool
		wantReason authz.Reason
		wantSub    string // x-auth-subject set on the allow
	}{
		{name: "no token", path: "/soft", wantAllow: true, wantReason: authz.ReasonAnonymous},
		{name: "valid", path: "/soft", token: valid, wantAllow: true, wantReason: authz.ReasonOK, wantSub: "user_1"},
		{name: "valid again: the token cache", path: "/soft", token: valid, wantAllow: true, wantReason: authz.ReasonOK, wantSub: "user_1"},
		{name: "valid without the scope", path: "/soft", token: e.token(nil), wantAllow: true, wantReason: authz.ReasonInsufficientScope},
		{name: "expired", path: "/soft", token: e.token(jwt.MapClaims{"scope": "read", "exp": now.Add(-time.Minute).Unix()}), wantAllow: true, wantReason: authz.ReasonExpired},
		{name: "forged signature", path: "/soft", token: flipSignatureBit(valid), wantAllow: true, wantReason: authz.ReasonBadSignature},
		{name: "forged signature again: the negative cache", path: "/soft", token: flipSignatureBit(valid), wantAllow: true, wantReason: authz.ReasonBadSignature},
		{name: "wrong issuer", path: "/soft", token: e.token(jwt.MapClaims{"iss": "https://other.example"}), wantAllow: true, wantReason: authz.ReasonWrongIssuer},
		{name: "malformed", path: "/soft", token: "not.a.jwt", wantAllow: true, wantReason: authz.ReasonMalformed},
		{name: "too large", path: "/soft", token: strings.Repeat("a", authz.DefaultMaxTokenSize+1), wantAllow: true, wantReason: authz.ReasonTooLarge},
		{name: "too many headers: denied", path: "/soft", token: valid, oversize: true, wantReason: authz.ReasonRequestTooLarge},
		{name: "ambiguous request: denied", path: "/soft", ambiguous: true, wantReason: authz.ReasonBadRequest},
		{name: "dot segments out of the route: denied", path: "/soft/../hard", wantReason: authz.ReasonBadRequest},
		{name: "control: require, expired", path: "/hard", token: e.token(jwt.MapClaims{"scope": "read", "exp": now.Add(-time.Minute).Unix()}), wantReason: authz.ReasonExpired},
		{name: "control: require, no token", path: "/hard", wantReason: authz.ReasonNoToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := authz.MapHeaders{"x-auth-subject": "admin", "x-auth-issuer": "https://evil.example"}
			if tt.token != "" {
				h["authorization"] = "Bearer " + tt.token
			}
			d := e.eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "api.example.com", Path: tt.path, Headers: h, Oversize: tt.oversize, Ambiguous: tt.ambiguous})
			if d.Allow != tt.wantAllow || d.Reason != tt.wantReason {
				t.Fatalf("allow %v reason %v, want %v %v", d.Allow, d.Reason, tt.wantAllow, tt.wantReason)
			}
			if !d.Allow {
				if d.Status() == http.StatusOK {
					t.Fatal("a denial answers 200")
				}
				return
			}
			if d.Status() != http.StatusOK {
				t.Errorf("an allow answers %d", d.Status())
			}
			if got := d.FailedOpen(); got != (tt.wantReason != authz.ReasonOK && tt.wantReason != authz.ReasonAnonymous) {
				t.Errorf("FailedOpen() = %v", got)
			}
			if d.Subject != tt.wantSub || (tt.wantSub == "") != (d.Issuer == "") || (tt.wantSub == "" && len(d.Set) > 0) {
				t.Errorf("subject %q issuer %q set %v, want subject %q", d.Subject, d.Issuer, d.Set, tt.wantSub)
			}
			// The client's identity headers never reach the upstream: set
			// over, or removed.
			for _, name := range []string{authz.HeaderSubject, authz.HeaderIssuer} {
				if tt.wantSub == "" && !slices.Contains(d.Remove, name) {
					t.Errorf("%s not removed (remove %v)", name, d.Remove)
				}
			}
			if d.Rule() != 0 {
				t.Errorf("rule %d, want 0", d.Rule())
			}
		})
	}
}

// TestOptionalOrFailedOverGRPC: the allow of a failed token is an OK
// CheckResponse that removes the client's identity headers.
func TestOptionalOrFailedOverGRPC(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) {
		c.Rules = []authz.RuleConfig{{Action: authz.ActionOptionalOrFailed}}
	}))
	now := e.clock.Now()
	for _, tt := range []struct {
		name, token, wantSub string
	}{
		{name: "no token"},
		{name: "expired", token: e.token(jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})},
		{name: "forged", token: flipSignatureBit(e.token(nil))},
		{name: "valid", token: e.token(nil), wantSub: "user_1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			auth := ""
			if tt.token != "" {
				auth = "Bearer " + tt.token
			}
			req := browserRequest(t, auth, "")
			req.Attributes.Request.Http.Headers["x-auth-subject"] = "admin"
			resp := e.send(req)
			if codes.Code(resp.Status.Code) != codes.OK || resp.GetOkResponse() == nil {
				t.Fatalf("status %v, want OK with an ok_response", resp.Status)
			}
			if got := okHeaders(resp)[authz.HeaderSubject]; got != tt.wantSub {
				t.Errorf("x-auth-subject set to %q, want %q", got, tt.wantSub)
			}
			if tt.wantSub == "" && !slices.Contains(resp.GetOkResponse().GetHeadersToRemove(), authz.HeaderSubject) {
				t.Errorf("x-auth-subject not removed: %v", resp.GetOkResponse().GetHeadersToRemove())
			}
		})
	}
}

func TestCORSPreflight(t *testing.T) {
	build := func(on bool) *env {
		return newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) {
			c.CORSPreflight = on
			c.Rules = []authz.RuleConfig{{Match: authz.Match{PathPrefix: "/admin"}, Require: authz.Require{Scopes: []string{"admin"}}}}
		}))
	}
	on, off := build(true), build(false)
	preflight := authz.MapHeaders{"origin": "https://app.example.com", "access-control-request-method": "DELETE", "x-auth-subject": "admin"}
	without := func(name string) authz.MapHeaders {
		h := authz.MapHeaders{}
		for k, v := range preflight {
			if k != name {
				h[k] = v
			}
		}
		return h
	}
	tests := []struct {
		name       string
		e          *env
		method     string
		headers    authz.MapHeaders
		oversize   bool
		wantAllow  bool
		wantReason authz.Reason
	}{
		{name: "preflight", e: on, method: "OPTIONS", headers: preflight, wantAllow: true, wantReason: authz.ReasonPublic},
		{name: "off: checked as any request", e: off, method: "OPTIONS", headers: preflight, wantReason: authz.ReasonNoToken},
		{name: "no Origin", e: on, method: "OPTIONS", headers: without("origin"), wantReason: authz.ReasonNoToken},
		{name: "no Access-Control-Request-Method", e: on, method: "OPTIONS", headers: without("access-control-request-method"), wantReason: authz.ReasonNoToken},
		{name: "not OPTIONS", e: on, method: "DELETE", headers: preflight, wantReason: authz.ReasonNoToken},
		{name: "lower-case options is another method", e: on, method: "options", headers: preflight, wantReason: authz.ReasonNoToken},
		{name: "too many headers: denied first", e: on, method: "OPTIONS", headers: preflight, oversize: true, wantReason: authz.ReasonRequestTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.e.eng.Check(context.Background(), &authz.Request{Method: tt.method, Host: "api.example.com", Path: "/admin/users", Headers: tt.headers, Oversize: tt.oversize})
			if d.Allow != tt.wantAllow || d.Reason != tt.wantReason {
				t.Fatalf("allow %v reason %v, want %v %v", d.Allow, d.Reason, tt.wantAllow, tt.wantReason)
			}
			if d.Allow && (d.Rule() != -1 || d.Subject != "" || !slices.Contains(d.Remove, authz.HeaderSubject)) {
				t.Errorf("preflight: rule %d, subject %q, remove %v; want rule -1, no subject, x-auth-subject removed", d.Rule(), d.Subject, d.Remove)
			}
		})
	}
}

// TestOptionalOrFailedDropsTokenAsConfigured: a provider with DropToken
// (forward_token: false) keeps a failed token from the upstream too, as
// it would a valid one.
func TestOptionalOrFailedDropsTokenAsConfigured(t *testing.T) {
	for _, drop := range []bool{true, false} {
		e := newEnv(t, nil, withConfig(func(c *authz.Config, pc *authz.ProviderConfig) {
			pc.DropToken = drop
			c.Rules = []authz.RuleConfig{{Action: authz.ActionOptionalOrFailed, Require: authz.Require{Scopes: []string{"admin"}}}}
		}))
		for _, tok := range []string{e.token(nil), e.token(jwt.MapClaims{"exp": e.clock.Now().Add(-time.Minute).Unix()}), flipSignatureBit(e.token(nil))} {
			d := e.eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "api", Path: "/x", Headers: authz.MapHeaders{"authorization": "Bearer " + tok}})
			if !d.FailedOpen() {
				t.Fatalf("drop %v: allow %v reason %v, want an allow of a failed token", drop, d.Allow, d.Reason)
			}
			if got := slices.Contains(d.Remove, "authorization"); got != drop {
				t.Errorf("drop %v, %v: authorization removed %v", drop, d.Reason, got)
			}
		}
	}
}
