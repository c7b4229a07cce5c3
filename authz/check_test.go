package authz_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// raw builds a token from a header and claims and a signature of the
// caller's choice, for tokens no honest signer would make.
func raw(hdr, claims any, sig string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(hdr) + "." + enc(claims) + "." + sig
}

func TestCheckDecisions(t *testing.T) {
	es := issuer.MustSigner("ES256")
	rsaKey := issuer.MustSigner("RS256")
	pss := issuer.MustSigner("PS256")
	ed := issuer.MustSigner("EdDSA")
	e := newEnv(t, []*issuer.Signer{es, rsaKey, pss, ed})
	now := e.clock.Now()
	valid := jwt.MapClaims{"iss": e.idp.URL, "sub": "user_1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	with := func(kv ...any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range valid {
			c[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	sign := func(s *issuer.Signer, c jwt.MapClaims) string {
		tok, err := s.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	stranger := issuer.MustSigner("ES256")
	impostor := *stranger
	impostor.KID = es.KID // a foreign key claiming a published kid
	pubDER, _ := x509.MarshalPKIXPublicKey(rsaKey.Private.Public())
	hmacTok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, valid).SignedString(pubDER)
	// PS256 signed with the RSA key whose JWK says RS256.
	psWithRS := jwt.NewWithClaims(jwt.SigningMethodPS256, valid)
	psWithRS.Header["kid"] = rsaKey.KID
	psWithRSTok, _ := psWithRS.SignedString(rsaKey.Private)

	tests := []struct {
		name          string
		authorization string
		wantCode      codes.Code
		wantReason    string
	}{
		{name: "valid ES256", authorization: "Bearer " + sign(es, valid), wantCode: codes.OK, wantReason: ""},
		{name: "valid RS256", authorization: "Bearer " + sign(rsaKey, valid), wantCode: codes.OK},
		{name: "valid PS256", authorization: "Bearer " + sign(pss, valid), wantCode: codes.OK},
		{name: "valid EdDSA", authorization: "Bearer " + sign(ed, valid), wantCode: codes.OK},
		{name: "scheme is case-insensitive", authorization: "bearer " + sign(es, valid), wantCode: codes.OK},
		{name: "scheme upper case", authorization: "BEARER " + sign(es, valid), wantCode: codes.OK},
		{name: "no header", authorization: "", wantCode: codes.Unauthenticated, wantReason: "no_token"},
		{name: "other scheme", authorization: "Basic dXNlcjpwYXNz", wantCode: codes.Unauthenticated, wantReason: "no_token"},
		{name: "Bearer without token", authorization: "Bearer", wantCode: codes.Unauthenticated, wantReason: "no_token"},
		{name: "Bearer and spaces", authorization: "Bearer    ", wantCode: codes.Unauthenticated, wantReason: "no_token"},
		{name: "garbage", authorization: "Bearer not-a-jwt", wantCode: codes.Unauthenticated, wantReason: "malformed"},
		{name: "two tokens joined by Envoy", authorization: "Bearer " + sign(es, valid) + ",Bearer " + sign(es, valid), wantCode: codes.Unauthenticated, wantReason: "malformed"},
		{name: "alg none unsigned", authorization: "Bearer " + raw(map[string]any{"alg": "none"}, valid, ""), wantCode: codes.Unauthenticated, wantReason: "malformed"},
		{name: "alg none signed", authorization: "Bearer " + raw(map[string]any{"alg": "none", "kid": es.KID}, valid, "c2ln"), wantCode: codes.Unauthenticated, wantReason: "alg_not_allowed"},
		{name: "HS256 with the RSA public key as secret", authorization: "Bearer " + hmacTok, wantCode: codes.Unauthenticated, wantReason: "alg_not_allowed"},
		{name: "foreign key with a known kid", authorization: "Bearer " + sign(&impostor, valid), wantCode: codes.Unauthenticated, wantReason: "bad_signature"},
		{name: "unknown kid", authorization: "Bearer " + sign(stranger, valid), wantCode: codes.Unauthenticated, wantReason: "unknown_kid"},
		{name: "JWK alg RS256, token PS256", authorization: "Bearer " + psWithRSTok, wantCode: codes.Unauthenticated, wantReason: "key_mismatch"},
		{name: "expired beyond skew", authorization: "Bearer " + sign(es, with("exp", now.Add(-2*time.Minute).Unix())), wantCode: codes.Unauthenticated, wantReason: "expired"},
		{name: "expired within skew", authorization: "Bearer " + sign(es, with("exp", now.Add(-30*time.Second).Unix())), wantCode: codes.OK},
		{name: "nbf beyond skew", authorization: "Bearer " + sign(es, with("nbf", now.Add(2*time.Minute).Unix())), wantCode: codes.Unauthenticated, wantReason: "not_yet_valid"},
		{name: "nbf within skew", authorization: "Bearer " + sign(es, with("nbf", now.Add(30*time.Second).Unix())), wantCode: codes.OK},
		{name: "iat beyond skew", authorization: "Bearer " + sign(es, with("iat", now.Add(time.Hour).Unix())), wantCode: codes.Unauthenticated, wantReason: "not_yet_valid"},
		{name: "exp missing", authorization: "Bearer " + sign(es, with("exp", nil)), wantCode: codes.Unauthenticated, wantReason: "missing_claim"},
		{name: "exp as string", authorization: "Bearer " + sign(es, with("exp", "1900000000")), wantCode: codes.Unauthenticated, wantReason: "malformed"},
		{name: "wrong issuer", authorization: "Bearer " + sign(es, with("iss", "https://evil.example.com")), wantCode: codes.Unauthenticated, wantReason: "wrong_issuer"},
		{name: "issuer with a trailing slash", authorization: "Bearer " + sign(es, with("iss", e.idp.URL+"/")), wantCode: codes.Unauthenticated, wantReason: "wrong_issuer"},
		{name: "issuer missing", authorization: "Bearer " + sign(es, with("iss", nil)), wantCode: codes.Unauthenticated, wantReason: "missing_claim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.check(tt.authorization)
			if got := codes.Code(resp.Status.Code); got != tt.wantCode {
				t.Fatalf("code = %v (%s), want %v", got, resp.Status.Message, tt.wantCode)
			}
			if tt.wantCode == codes.OK {
				if resp.GetOkResponse() == nil {
					t.Fatal("allow without ok_response")
				}
				return
			}
			if got := resp.Status.Message; got != tt.wantReason {
				t.Errorf("reason = %q, want %q", got, tt.wantReason)
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 401 {
				t.Errorf("HTTP status = %d, want 401", got)
			}
			wantChallenge := `Bearer realm="jwtauthz", error="invalid_token", error_description="`
			if tt.wantReason == "no_token" {
				wantChallenge = `Bearer realm="jwtauthz"`
			}
			if got := deniedHeader(resp, "www-authenticate"); !strings.HasPrefix(got, wantChallenge) || (tt.wantReason == "no_token" && got != wantChallenge) {
				t.Errorf("WWW-Authenticate = %q, want %q…", got, wantChallenge)
			}
			if tt.wantReason != "no_token" {
				body := deniedBody(t, resp)
				if body["error"] != "invalid_token" || body["error_description"] == "" {
					t.Errorf("body = %v", body)
				}
				if ct := deniedHeader(resp, "content-type"); ct != "application/json" {
					t.Errorf("content-type = %q", ct)
				}
			}
		})
	}
	// After all of that, a valid token still passes.
	if resp := e.check("Bearer " + e.token(nil)); codes.Code(resp.Status.Code) != codes.OK {
		t.Fatalf("valid token after the table: %v", resp.Status)
	}
}

func TestCheckAudiences(t *testing.T) {
	e := newEnv(t, nil, withAudiences("api", "web"))
	tests := []struct {
		name       string
		aud        any
		wantCode   codes.Code
		wantReason string
	}{
		{name: "string match", aud: "api", wantCode: codes.OK},
		{name: "array with a match", aud: []string{"other", "web"}, wantCode: codes.OK},
		{name: "no match", aud: "other", wantCode: codes.Unauthenticated, wantReason: "wrong_audience"},
		{name: "empty array", aud: []string{}, wantCode: codes.Unauthenticated, wantReason: "missing_claim"},
		{name: "missing", aud: nil, wantCode: codes.Unauthenticated, wantReason: "missing_claim"},
		{name: "number", aud: 7, wantCode: codes.Unauthenticated, wantReason: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.check("Bearer " + e.token(jwt.MapClaims{"aud": tt.aud}))
			if got := codes.Code(resp.Status.Code); got != tt.wantCode {
				t.Fatalf("code = %v (%s), want %v", got, resp.Status.Message, tt.wantCode)
			}
			if tt.wantCode != codes.OK && resp.Status.Message != tt.wantReason {
				t.Errorf("reason = %q, want %q", resp.Status.Message, tt.wantReason)
			}
		})
	}
}

func TestAllowSetsIdentityHeadersWithOverwrite(t *testing.T) {
	e := newEnv(t, nil)
	req := browserRequest(t, "Bearer "+e.token(jwt.MapClaims{"sub": "user_42"}), "")
	// A client trying to pass as someone else.
	req.Attributes.Request.Http.Headers["x-auth-subject"] = "admin"
	req.Attributes.Request.Http.Headers["x-auth-issuer"] = "https://evil.example.com"
	resp := e.send(req)
	if codes.Code(resp.Status.Code) != codes.OK {
		t.Fatalf("status %v", resp.Status)
	}
	got := okHeaders(resp)
	if got["x-auth-subject"] != "user_42" || got["x-auth-issuer"] != e.idp.URL {
		t.Fatalf("headers = %v", got)
	}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.AppendAction != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || h.GetAppend() != nil {
			t.Errorf("%s: append_action %v, append %v: must overwrite", h.Header.Key, h.AppendAction, h.GetAppend())
		}
	}
}

func TestAllowWithoutSubjectRemovesSpoofedHeader(t *testing.T) {
	e := newEnv(t, nil)
	req := browserRequest(t, "Bearer "+e.token(jwt.MapClaims{"sub": nil}), "")
	req.Attributes.Request.Http.Headers["x-auth-subject"] = "admin"
	resp := e.send(req)
	if codes.Code(resp.Status.Code) != codes.OK {
		t.Fatalf("status %v", resp.Status)
	}
	if _, set := okHeaders(resp)["x-auth-subject"]; set {
		t.Fatal("x-auth-subject set for a token without sub")
	}
	if rm := resp.GetOkResponse().GetHeadersToRemove(); len(rm) != 1 || rm[0] != "x-auth-subject" {
		t.Fatalf("headers_to_remove = %v, want [x-auth-subject]", rm)
	}
}

func TestUnavailableBeforeKeys(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	idp.SetFault(issuer.Fail)
	e := newEnvNoWait(t, idp)
	resp := e.check("Bearer " + e.token(nil))
	if codes.Code(resp.Status.Code) != codes.Unavailable || resp.GetDeniedResponse().GetStatus().GetCode() != 503 {
		t.Fatalf("status %v, HTTP %d; want UNAVAILABLE, 503", resp.Status, resp.GetDeniedResponse().GetStatus().GetCode())
	}
	if body := deniedBody(t, resp); body["error"] != "temporarily_unavailable" {
		t.Fatalf("body %v", body)
	}
}

// With encode_raw_headers, an HTTP/2 client's cookies may come as several
// cookie entries of header_map (RFC 9113 §8.2.3 lets a client split
// them): a token cookie in the second one is found, the entries rejoined
// with "; ".
func TestSplitCookiesInHeaderMap(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(_ *authz.Config, p *authz.ProviderConfig) {
		p.TokenSources = []authz.TokenSource{{Cookie: "__session"}}
	}))
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Method: "GET", Host: "api.example.com", Path: "/v1/things",
		HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: "cookie", RawValue: []byte("theme=dark")},
			{Key: "cookie", RawValue: []byte("__session=" + e.token(nil))},
		}},
	}}}}
	if resp := e.send(req); codes.Code(resp.Status.Code) != codes.OK {
		t.Fatalf("status %v: %s", codes.Code(resp.Status.Code), resp.Status.Message)
	}
}
