package authz_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
)

// TestConditions decides requests under rules with match.when and
// require.when: every variable, true, false, a runtime error and a cost
// over the limit, match.when choosing among rules.
func TestConditions(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) {
		c.Rules = []authz.RuleConfig{
			// 0: an internal header selects a public rule.
			{Match: authz.Match{PathPrefix: "/hooks/", When: `"x-internal" in request.headers && request.headers["x-internal"] == "1"`}, Action: authz.ActionAllow},
			// 1: match.when on the query and method picks a stricter rule.
			{Match: authz.Match{PathPrefix: "/docs/", When: `!(request.method in ["GET", "HEAD"]) || "edit" in request.query`}, Require: authz.Require{When: `claims.role == "editor"`}},
			// 2: the rest of /docs/.
			{Match: authz.Match{PathPrefix: "/docs/"}, Require: authz.Require{When: `claims.org == "acme" && request.method in ["GET", "HEAD"]`}},
			// 3: OR, negation, prefix, scopes, provider, host, path.
			{Match: authz.Match{PathPrefix: "/api/"}, Require: authz.Require{Scopes: []string{"read"}, When: `(claims.org == "acme" || "admin" in scopes) && !claims.email.endsWith("@evil.example") ` +
				`&& provider == "test" && request.host == "api.example.com" && request.path.startsWith("/api/v1/")`}},
			// 4: arrays, numbers, nested claims, the strings extension.
			{Match: authz.Match{PathPrefix: "/groups/"}, Require: authz.Require{When: `claims.groups.exists(g, g.startsWith("team-")) && "team-" + request.path.split("/")[2] in claims.groups && claims.level >= 3 && claims.o.rol == "admin"`}},
			// 5: a header that may be missing: an error, a denial.
			{Match: authz.Match{PathPrefix: "/tenant/"}, Require: authz.Require{When: `request.headers["x-tenant"] == claims.tenant`}},
			// 6: a claim read whole, the query's lists.
			{Match: authz.Match{PathPrefix: "/whole/"}, Require: authz.Require{When: `claims.exists(k, k == "vip") && request.query["page"][0].matches("^[0-9]+$")`}},
			// 7: a match.when that fails at run time (a missing header): denied.
			{Match: authz.Match{PathPrefix: "/strict/", When: `request.headers["x-env"] == "prod"`}, Action: authz.ActionAllow},
			// 8: a metered loop over the query (TestConditionRuntimeLimits
			// has its cost and time limits).
			{Match: authz.Match{PathPrefix: "/costly/"}, Require: authz.Require{When: `!request.query["q"].exists(v, v == "b")`}},
		}
	}))
	acme := e.token(jwt.MapClaims{"org": "acme", "email": "a@acme.example", "scope": "read", "role": "editor"})
	other := e.token(jwt.MapClaims{"org": "other", "email": "b@other.example", "scope": "read admin"})
	evil := e.token(jwt.MapClaims{"org": "acme", "email": "c@evil.example", "scope": "read"})
	noScope := e.token(jwt.MapClaims{"org": "acme", "email": "a@acme.example"})
	team := e.token(jwt.MapClaims{"groups": []string{"staff", "team-blue"}, "level": 3, "o": map[string]any{"rol": "admin"}})
	lowLevel := e.token(jwt.MapClaims{"groups": []string{"team-blue"}, "level": 2, "o": map[string]any{"rol": "admin"}})
	stringLevel := e.token(jwt.MapClaims{"groups": []string{"team-blue"}, "level": "3", "o": map[string]any{"rol": "admin"}})
	tenant := e.token(jwt.MapClaims{"tenant": "t1"})
	vip := e.token(jwt.MapClaims{"vip": true})
	bearer := func(t string) map[string]string { return map[string]string{"authorization": "Bearer " + t} }
	with := func(h map[string]string, k, v string) map[string]string { h[k] = v; return h }
	long := "/costly/x?" + strings.Repeat("q=a&", 10_001) // more parameters than Go's url.ParseQuery reads

	tests := []struct {
		name       string
		method     string
		host       string
		path       string
		headers    map[string]string
		wantReason authz.Reason
		wantRule   int
	}{
		{name: "match.when true selects the allow rule", path: "/hooks/x", headers: map[string]string{"x-internal": "1"}, wantReason: authz.ReasonPublic, wantRule: 0},
		{name: "match.when false: the next rules", path: "/hooks/x", headers: map[string]string{"x-internal": "0"}, wantReason: authz.ReasonNoToken, wantRule: -1},
		{name: "match.when header absent: false, the next rules", path: "/hooks/x", wantReason: authz.ReasonNoToken, wantRule: -1},
		{name: "match.when on the query selects rule 1", path: "/docs/a?edit=1", headers: bearer(other), wantReason: authz.ReasonConditionFailed, wantRule: 1},
		{name: "match.when on the method selects rule 1", method: "POST", path: "/docs/a", headers: bearer(acme), wantReason: authz.ReasonOK, wantRule: 1},
		{name: "match.when false selects rule 2", path: "/docs/a", headers: bearer(acme), wantReason: authz.ReasonOK, wantRule: 2},
		{name: "require.when false: 403", path: "/docs/a", headers: bearer(other), wantReason: authz.ReasonConditionFailed, wantRule: 2},
		{name: "require.when reads request.method", method: "HEAD", path: "/docs/a", headers: bearer(acme), wantReason: authz.ReasonOK, wantRule: 2},
		{name: "every variable, OR's first arm", path: "/api/v1/x", headers: bearer(acme), wantReason: authz.ReasonOK, wantRule: 3},
		{name: "OR's second arm: scopes", path: "/api/v1/x", headers: bearer(other), wantReason: authz.ReasonOK, wantRule: 3},
		{name: "negation", path: "/api/v1/x", headers: bearer(evil), wantReason: authz.ReasonConditionFailed, wantRule: 3},
		{name: "path prefix in the condition", path: "/api/v2/x", headers: bearer(acme), wantReason: authz.ReasonConditionFailed, wantRule: 3},
		{name: "path as the rules see it", path: "/api/v2/../v1/x", headers: bearer(acme), wantReason: authz.ReasonOK, wantRule: 3},
		{name: "host without its port", host: "api.example.com:8443", path: "/api/v1/x", headers: bearer(acme), wantReason: authz.ReasonOK, wantRule: 3},
		{name: "another host", host: "www.example.com", path: "/api/v1/x", headers: bearer(acme), wantReason: authz.ReasonConditionFailed, wantRule: 3},
		{name: "scopes first: insufficient_scope before the condition", path: "/api/v1/x", headers: bearer(noScope), wantReason: authz.ReasonInsufficientScope, wantRule: 3},
		{name: "arrays, numbers, nested claims, strings extension", path: "/groups/blue/x", headers: bearer(team), wantReason: authz.ReasonOK, wantRule: 4},
		{name: "another team", path: "/groups/red/x", headers: bearer(team), wantReason: authz.ReasonConditionFailed, wantRule: 4},
		{name: "a number below", path: "/groups/blue/x", headers: bearer(lowLevel), wantReason: authz.ReasonConditionFailed, wantRule: 4},
		{name: "a claim of the wrong type: an error, denied", path: "/groups/blue/x", headers: bearer(stringLevel), wantReason: authz.ReasonConditionFailed, wantRule: 4},
		{name: "a missing claim: an error, denied", path: "/groups/blue/x", headers: bearer(acme), wantReason: authz.ReasonConditionFailed, wantRule: 4},
		{name: "header equals claim", path: "/tenant/x", headers: with(bearer(tenant), "x-tenant", "t1"), wantReason: authz.ReasonOK, wantRule: 5},
		{name: "header names read in lower case", path: "/tenant/x", headers: with(bearer(tenant), "x-tenant", "t2"), wantReason: authz.ReasonConditionFailed, wantRule: 5},
		{name: "missing header: an error, denied", path: "/tenant/x", headers: bearer(tenant), wantReason: authz.ReasonConditionFailed, wantRule: 5},
		{name: "claims read whole, query lists", path: "/whole/x?page=2&page=x", headers: bearer(vip), wantReason: authz.ReasonOK, wantRule: 6},
		{name: "claims read whole, claim absent", path: "/whole/x?page=2", headers: bearer(acme), wantReason: authz.ReasonConditionFailed, wantRule: 6},
		{name: "query value refused", path: "/whole/x?page=x", headers: bearer(vip), wantReason: authz.ReasonConditionFailed, wantRule: 6},
		{name: "query parameter missing: an error, denied", path: "/whole/x", headers: bearer(vip), wantReason: authz.ReasonConditionFailed, wantRule: 6},
		{name: "match.when error: denied, never the allow", path: "/strict/x", wantReason: authz.ReasonConditionFailed, wantRule: 7},
		{name: "match.when holds", path: "/strict/x", headers: map[string]string{"x-env": "prod"}, wantReason: authz.ReasonPublic, wantRule: 7},
		{name: "match.when false", path: "/strict/x", headers: with(bearer(acme), "x-env", "dev"), wantReason: authz.ReasonOK, wantRule: -1},
		{name: "cost under the limit", path: "/costly/x?q=a&q=a", headers: bearer(acme), wantReason: authz.ReasonOK, wantRule: 8},
		{name: "a query that does not parse is empty: a missing parameter, denied", path: long, headers: bearer(acme), wantReason: authz.ReasonConditionFailed, wantRule: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &authz.Request{Method: tt.method, Host: tt.host, Path: tt.path, Headers: authz.MapHeaders(tt.headers)}
			if r.Method == "" {
				r.Method = "GET"
			}
			if r.Host == "" {
				r.Host = "api.example.com"
			}
			for i := range 2 { // verified, then from the token cache
				d := e.eng.Check(context.Background(), r)
				if d.Reason != tt.wantReason || d.Allow != (tt.wantReason.Status() == 200) || d.Rule() != tt.wantRule {
					t.Fatalf("check %d: allow %v reason %v rule %d, want %v rule %d", i, d.Allow, d.Reason, d.Rule(), tt.wantReason, tt.wantRule)
				}
				if d.Reason == authz.ReasonConditionFailed {
					checkConditionDenial(t, d, tt.wantRule, tt.headers["authorization"] != "")
				}
			}
		})
	}
}

// checkConditionDenial: a condition's denial is a 403 insufficient_scope
// that names the rule by index and nothing of the token or request.
func checkConditionDenial(t *testing.T, d authz.Decision, rule int, withToken bool) {
	t.Helper()
	desc := "rule " + string(rune('0'+rule)) + " condition not met"
	if !withToken {
		desc = "rule " + string(rune('0'+rule)) + " match condition failed"
	}
	want := `Bearer realm="jwtauthz", error="insufficient_scope", error_description="` + desc + `"`
	if d.Status() != 403 || d.Challenge != want || d.Body != `{"error":"insufficient_scope","error_description":"`+desc+`"}` {
		t.Errorf("status %d challenge %q body %q, want 403 %q", d.Status(), d.Challenge, d.Body, want)
	}
}

// TestConditionConfigErrors: a bad condition is a ConfigError naming the
// rule's key; a condition on an allow rule's require is refused.
func TestConditionConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		rule    authz.RuleConfig
		wantKey string
		want    string
	}{
		{name: "syntax", rule: authz.RuleConfig{Require: authz.Require{When: `claims.org ==`}}, wantKey: "rules[1].require.when", want: "column 14"},
		{name: "not a bool", rule: authz.RuleConfig{Require: authz.Require{When: `claims.org`}}, wantKey: "rules[1].require.when", want: "not a bool"},
		{name: "claims in match.when", rule: authz.RuleConfig{Match: authz.Match{When: `claims.org == "a"`}}, wantKey: "rules[1].match.when", want: "not available in match.when"},
		{name: "allow with require.when", rule: authz.RuleConfig{Action: authz.ActionAllow, Require: authz.Require{When: `true`}}, wantKey: "rules[1]", want: "takes no require"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := authz.DefaultConfig()
			cfg.Providers = []authz.ProviderConfig{{Name: "p", Issuer: "https://p.example", Keys: jwks.New(jwks.Config{Name: "k"})}}
			cfg.Rules = []authz.RuleConfig{{Match: authz.Match{Path: "/ok"}, Action: authz.ActionAllow}, tt.rule}
			err := authz.Validate(cfg)
			var ce *authz.ConfigError
			if !errors.As(err, &ce) || ce.Key != tt.wantKey || !strings.Contains(ce.Err.Error(), tt.want) {
				t.Fatalf("error %v, want a ConfigError for %s with %q", err, tt.wantKey, tt.want)
			}
		})
	}
}

// Grants keep only what the conditions read. A reload whose conditions
// read another claim, the claims whole, the scopes or the provider
// verifies the tokens again; one that reads less keeps them cached.
func TestUpdateWithConditionsThatReadMore(t *testing.T) {
	var pc authz.ProviderConfig
	e := newEnv(t, nil, withConfig(func(_ *authz.Config, p *authz.ProviderConfig) { pc = *p }))
	tok := "Bearer " + e.token(jwt.MapClaims{"scope": "read", "org": "acme", "team": "blue"})
	e.decide(tok, "")
	for _, step := range []struct {
		when   string
		cached bool // the first check after the reload
	}{
		{when: `claims.org == "acme"`},
		{when: `claims.org == "acme" && true`, cached: true},
		{when: `claims.team == "blue"`},
		{when: `"read" in scopes`},
		{when: `provider == "test"`},
		{when: `claims.exists(k, k == "team")`},
		{when: `claims.org == "acme"`, cached: true}, // the grants kept every claim
		{when: ``, cached: true},
	} {
		rules := []authz.RuleConfig{{Require: authz.Require{When: step.when}}}
		if err := e.eng.Update([]authz.ProviderConfig{pc}, rules); err != nil {
			t.Fatal(err)
		}
		if d := e.decide(tok, ""); !d.Allow || d.Cached != step.cached {
			t.Fatalf("%q: allow %v (%v), cached %v; want allowed, cached %v", step.when, d.Allow, d.Reason, d.Cached, step.cached)
		}
		if d := e.decide(tok, ""); !d.Allow || !d.Cached {
			t.Fatalf("%q, again: allow %v (%v), cached %v", step.when, d.Allow, d.Reason, d.Cached)
		}
	}
}

// A grant keeps the outcome of its conditions' token parts for the policy
// it was made under: after a reload that keeps it cached, a condition on
// the same claim is evaluated again, not read from the old outcome.
func TestUpdateEvaluatesTokenPartsAgain(t *testing.T) {
	var pc authz.ProviderConfig
	e := newEnv(t, nil, withConfig(func(_ *authz.Config, p *authz.ProviderConfig) { pc = *p }))
	tok := "Bearer " + e.token(jwt.MapClaims{"org": "acme"})
	for i, step := range []struct {
		when  string
		allow bool
	}{
		{`claims.org == "acme" && request.method == "GET"`, true},
		{`claims.org == "other" && request.method == "GET"`, false},
		{`claims.org == "other"`, false},
		{`claims.org != "other" && request.method == "GET"`, true},
		{`claims.org == "acme" && request.method == "POST"`, false},
	} {
		rules := []authz.RuleConfig{{Require: authz.Require{When: step.when}}}
		if err := e.eng.Update([]authz.ProviderConfig{pc}, rules); err != nil {
			t.Fatal(err)
		}
		for _, again := range []bool{false, true} {
			d := e.decide(tok, "")
			cached := i > 0 || again // the first check verifies the token
			if d.Allow != step.allow || d.Cached != cached || !step.allow && d.Reason != authz.ReasonConditionFailed {
				t.Fatalf("%q (again %v): allow %v (%v), cached %v; want allow %v, cached %v", step.when, again, d.Allow, d.Reason, d.Cached, step.allow, cached)
			}
		}
	}
}

// TestConditionsWithRuleFeatures: conditions beside optional_or_failed
// (a false require.when passes without identity, a failed match.when stays
// denied) and path_case (a match.when on request.path is checked as the
// path's case may be read).
func TestConditionsWithRuleFeatures(t *testing.T) {
	t.Run("optional_or_failed", func(t *testing.T) {
		e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) {
			c.Rules = []authz.RuleConfig{
				{Match: authz.Match{PathPrefix: "/feed/", When: `request.headers["x-env"] != "test"`}, Action: authz.ActionOptionalOrFailed, Require: authz.Require{When: `claims.org == "acme"`}},
			}
		}))
		bearer := "Bearer " + e.token(jwt.MapClaims{"org": "other"})
		for _, tt := range []struct {
			name       string
			headers    map[string]string
			wantAllow  bool
			wantReason authz.Reason
		}{
			{name: "require.when false: passes, anonymous", headers: map[string]string{"authorization": bearer, "x-env": "prod"}, wantAllow: true, wantReason: authz.ReasonConditionFailed},
			{name: "match.when fails: denied", headers: map[string]string{"authorization": bearer}, wantReason: authz.ReasonConditionFailed},
		} {
			t.Run(tt.name, func(t *testing.T) {
				d := e.eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "api", Path: "/feed/x", Headers: authz.MapHeaders(tt.headers)})
				if d.Allow != tt.wantAllow || d.Reason != tt.wantReason || d.Subject != "" {
					t.Fatalf("allow %v reason %v subject %q; want allow %v, %v, no subject", d.Allow, d.Reason, d.Subject, tt.wantAllow, tt.wantReason)
				}
			})
		}
	})
	for _, tt := range []struct {
		pathCase authz.PathCase
		path     string
		want     authz.Reason
	}{
		{pathCase: authz.PathCaseUnset, path: "/admin/x", want: authz.ReasonInsufficientScope},
		{pathCase: authz.PathCaseUnset, path: "/admin/X", want: authz.ReasonInsufficientScope},
		{pathCase: authz.PathCaseUnset, path: "/ADMIN/x", want: authz.ReasonBadRequest}, // another rule if read without case
		{pathCase: authz.PathCaseSensitive, path: "/ADMIN/x", want: authz.ReasonOK},
		{pathCase: authz.PathCaseInsensitive, path: "/ADMIN/x", want: authz.ReasonInsufficientScope},
	} {
		t.Run(string(tt.pathCase)+tt.path, func(t *testing.T) {
			e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) {
				c.PathCase = tt.pathCase
				c.Rules = []authz.RuleConfig{{Match: authz.Match{When: `request.path.startsWith("/admin/")`}, Require: authz.Require{Scopes: []string{"admin"}}}}
			}))
			d := e.eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "api", Path: tt.path, Headers: authz.MapHeaders{"authorization": "Bearer " + e.token(nil)}})
			if d.Reason != tt.want {
				t.Fatalf("reason %v, want %v", d.Reason, tt.want)
			}
		})
	}
}

// TestConditionsOnOpaqueTokens: require.when reads an introspection
// answer's members as it reads a JWT's claims, and its scopes.
func TestConditionsOnOpaqueTokens(t *testing.T) {
	e := newOpaqueEnv(t, func(c *authz.Config, _ *authz.ProviderConfig) {
		c.Rules = []authz.RuleConfig{{Require: authz.Require{When: `claims.client_id == "app" && claims.ext.tier == "gold" && "read" in scopes && provider == "hydra"`}}}
	})
	e.fake.set("gold", e.active(map[string]any{"client_id": "app", "scope": "read", "ext": map[string]any{"tier": "gold"}}))
	e.fake.set("silver", e.active(map[string]any{"client_id": "app", "scope": "read", "ext": map[string]any{"tier": "silver"}}))
	e.fake.set("bare", e.active(map[string]any{"scope": "read"}))
	for tok, want := range map[string]authz.Reason{"gold": authz.ReasonOK, "silver": authz.ReasonConditionFailed, "bare": authz.ReasonConditionFailed} {
		for i := range 2 { // introspected, then cached
			if d := e.check(tok, "/x"); d.Reason != want || d.Allow != (want == authz.ReasonOK) {
				t.Errorf("%s, check %d: allow %v %v; want %v", tok, i, d.Allow, d.Reason, want)
			}
		}
	}
}
