package authz_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/authz"
)

// TestDenialDescriptions checks, for each kind of denial, its reason,
// status, provider label and the description its challenge and body carry:
// what failed, named from the configuration or a fixed set, never from the
// token.
func TestDenialDescriptions(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(c *authz.Config, p *authz.ProviderConfig) {
		p.Name = "keycloak"
		p.Audiences = []string{"api"}
		c.Rules = []authz.RuleConfig{
			{Match: authz.Match{PathPrefix: "/admin"}, Require: authz.Require{Scopes: []string{"read", "admin"}}},
			{Match: authz.Match{PathPrefix: "/org"}, Require: authz.Require{Claims: map[string]string{"org": `ac"me\`}}},
		}
	}))
	now := e.clock.Now()
	tok := func(claims jwt.MapClaims) string {
		if _, ok := claims["aud"]; !ok {
			claims["aud"] = "api"
		}
		return e.token(claims)
	}
	good := tok(jwt.MapClaims{"scope": "read"})
	tests := []struct {
		name         string
		path, token  string
		wantReason   authz.Reason
		wantStatus   int
		wantProvider string
		wantDesc     string
	}{
		{name: "expired", path: "/", token: tok(jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()}),
			wantReason: authz.ReasonExpired, wantStatus: 401, wantProvider: "keycloak", wantDesc: "token expired"},
		{name: "exp missing", path: "/", token: tok(jwt.MapClaims{"exp": nil}),
			wantReason: authz.ReasonMissingClaim, wantStatus: 401, wantProvider: "keycloak", wantDesc: `missing claim "exp"`},
		{name: "aud missing", path: "/", token: e.token(jwt.MapClaims{"scope": "read"}),
			wantReason: authz.ReasonMissingClaim, wantStatus: 401, wantProvider: "keycloak", wantDesc: `missing claim "aud"`},
		{name: "aud empty", path: "/", token: tok(jwt.MapClaims{"aud": ""}),
			wantReason: authz.ReasonMissingClaim, wantStatus: 401, wantProvider: "keycloak", wantDesc: `missing claim "aud"`},
		{name: "iss missing: no provider", path: "/", token: tok(jwt.MapClaims{"iss": nil}),
			wantReason: authz.ReasonMissingClaim, wantStatus: 401, wantProvider: "", wantDesc: `missing claim "iss"`},
		{name: "wrong audience", path: "/", token: tok(jwt.MapClaims{"aud": `evil" x="1`}),
			wantReason: authz.ReasonWrongAudience, wantStatus: 401, wantProvider: "keycloak", wantDesc: "audience not accepted"},
		{name: "bad signature", path: "/", token: good[:len(good)-4] + "AAAA",
			wantReason: authz.ReasonBadSignature, wantStatus: 401, wantProvider: "keycloak", wantDesc: "signature invalid"},
		{name: "unknown iss: no provider", path: "/", token: tok(jwt.MapClaims{"iss": "https://evil.example"}),
			wantReason: authz.ReasonWrongIssuer, wantStatus: 401, wantProvider: "", wantDesc: "issuer not accepted"},
		{name: "malformed: no provider", path: "/", token: "a.b.c",
			wantReason: authz.ReasonMalformed, wantStatus: 401, wantProvider: "", wantDesc: "token malformed"},
		{name: "scope missing", path: "/admin", token: good,
			wantReason: authz.ReasonInsufficientScope, wantStatus: 403, wantProvider: "keycloak", wantDesc: `scope "admin" required`},
		{name: "claim differs", path: "/org", token: tok(jwt.MapClaims{"org": `evil"\`}),
			wantReason: authz.ReasonInsufficientScope, wantStatus: 403, wantProvider: "keycloak", wantDesc: `claim "org" must be "ac"me\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for pass := range 2 { // verified, then answered by a cache
				r := &authz.Request{Method: "GET", Host: "api.example.com", Path: tt.path,
					Headers: authz.MapHeaders(map[string]string{"authorization": "Bearer " + tt.token})}
				d := e.eng.Check(context.Background(), r)
				if d.Allow || d.Reason != tt.wantReason || d.Status() != tt.wantStatus || d.Provider != tt.wantProvider {
					t.Fatalf("pass %d: allow %v reason %v status %d provider %q, want %v %d %q", pass, d.Allow, d.Reason, d.Status(), d.Provider, tt.wantReason, tt.wantStatus, tt.wantProvider)
				}
				var body map[string]string
				if err := json.Unmarshal([]byte(d.Body), &body); err != nil || body["error_description"] != tt.wantDesc {
					t.Errorf("pass %d: body %s (%v), want error_description %q", pass, d.Body, err, tt.wantDesc)
				}
				q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(tt.wantDesc)
				if !strings.HasSuffix(d.Challenge, `, error_description="`+q+`"`) {
					t.Errorf("pass %d: challenge %q, want the description %q quoted", pass, d.Challenge, q)
				}
				if strings.Contains(d.Challenge, "evil") || strings.Contains(d.Body, "evil") {
					t.Errorf("pass %d: a token's value in the denial: %q %q", pass, d.Challenge, d.Body)
				}
			}
		})
	}
}

// TestDenialDescriptionRefusesControlCharacters: a configured scope or
// claim that a denial's description would carry into a header may not hold
// a control character.
func TestDenialDescriptionRefusesControlCharacters(t *testing.T) {
	for _, req := range []authz.Require{
		{Scopes: []string{"ad\nmin"}},
		{Claims: map[string]string{"org": "ac\rme"}},
		{Claims: map[string]string{"o\x00rg": "acme"}},
	} {
		idp, src := extraIdP(t)
		cfg := withDefaultLimits(authz.DefaultConfig())
		cfg.Providers = []authz.ProviderConfig{{Name: "p", Issuer: idp.URL, Keys: src}}
		cfg.Rules = []authz.RuleConfig{{Match: authz.Match{PathPrefix: "/"}, Require: req}}
		_, err := authz.New(cfg)
		var ce *authz.ConfigError
		if !errors.As(err, &ce) || !strings.HasPrefix(ce.Key, "rules[0].require.") {
			t.Errorf("%+v: error %v, want a ConfigError naming rules[0].require", req, err)
		}
	}
}
