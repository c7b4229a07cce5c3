package authz_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
)

// tokenWith mints a token of e's IdP with claims (authztest's defaults:
// iss the IdP, sub user_1, iat now, exp in an hour; nil removes one) and
// the header members hdr (nil removes one, e.g. typ, which golang-jwt
// sets to JWT).
func tokenWith(t *testing.T, e *authztest.Env, hdr map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	now := e.Clock.Now()
	c := jwt.MapClaims{"iss": e.IdP.URL, "sub": "user_1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	str, err := e.IdP.Signing().SignHeader(c, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return str
}

// checkBearer decides GET / with tok as the bearer token.
func checkBearer(e *authztest.Env, tok string) authz.Decision {
	return e.Eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "api", Path: "/",
		Headers: authz.MapHeaders{"authorization": "Bearer " + tok}})
}

// withProvider changes the test provider's configuration.
func withProvider(f func(p *authz.ProviderConfig)) authztest.Option {
	return func(_ *authz.Config, p *authz.ProviderConfig) { f(p) }
}

// tokenCheckCase is one token, checked by a provider configured by cfg.
type tokenCheckCase struct {
	name       string
	cfg        func(p *authz.ProviderConfig)
	hdr        map[string]any
	claims     func(e *authztest.Env, now time.Time) jwt.MapClaims
	wantReason authz.Reason // ReasonOK: allowed
	wantDesc   string       // in the denial's description
	wantIss    func(e *authztest.Env) string
}

func runTokenChecks(t *testing.T, tests []tokenCheckCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := authztest.New(t, nil, withProvider(tt.cfg))
			var claims jwt.MapClaims
			if tt.claims != nil {
				claims = tt.claims(e, e.Clock.Now())
			}
			tok := tokenWith(t, e, tt.hdr, claims)
			for i, layer := range []authz.Layer{authz.LayerVerified, authz.LayerTokenCache} {
				d := checkBearer(e, tok)
				if d.Reason != tt.wantReason {
					t.Fatalf("check %d: reason %v (%s), want %v", i, d.Reason, d.Body, tt.wantReason)
				}
				if tt.wantReason == authz.ReasonOK {
					if d.Layer != layer || d.Provider != "test" {
						t.Errorf("check %d: layer %v provider %q, want %v test", i, d.Layer, d.Provider, layer)
					}
					if tt.wantIss != nil && d.Issuer != tt.wantIss(e) {
						t.Errorf("check %d: issuer %q, want %q", i, d.Issuer, tt.wantIss(e))
					}
					continue
				}
				if d.Allow || !strings.Contains(d.Body, tt.wantDesc) || !strings.Contains(d.Challenge, `error_description="`) {
					t.Errorf("check %d: allow %v, body %s, challenge %s; want a description with %q", i, d.Allow, d.Body, d.Challenge, tt.wantDesc)
				}
				if want := "test"; tt.wantReason == authz.ReasonWrongIssuer {
					if d.Provider != "" {
						t.Errorf("check %d: provider %q, want none", i, d.Provider)
					}
				} else if d.Provider != want {
					t.Errorf("check %d: provider %q, want %q", i, d.Provider, want)
				}
			}
		})
	}
}

func claimsOf(kv ...any) func(*authztest.Env, time.Time) jwt.MapClaims {
	return func(_ *authztest.Env, _ time.Time) jwt.MapClaims {
		c := jwt.MapClaims{}
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
}

func TestRequiredTyp(t *testing.T) {
	req := func(typ string) func(p *authz.ProviderConfig) {
		return func(p *authz.ProviderConfig) { p.RequiredTyp = typ }
	}
	const desc = `header \"typ\" must be \"`
	runTokenChecks(t, []tokenCheckCase{
		{name: "at+jwt", cfg: req("at+jwt"), hdr: map[string]any{"typ": "at+jwt"}},
		{name: "upper case", cfg: req("at+jwt"), hdr: map[string]any{"typ": "AT+JWT"}},
		{name: "application/ in the token", cfg: req("at+jwt"), hdr: map[string]any{"typ": "application/at+jwt"}},
		{name: "Application/ in the token", cfg: req("at+jwt"), hdr: map[string]any{"typ": "Application/AT+jwt"}},
		{name: "application/ in the configuration", cfg: req("application/at+jwt"), hdr: map[string]any{"typ": "at+jwt"}},
		{name: "application/ on both sides", cfg: req("application/at+jwt"), hdr: map[string]any{"typ": "application/at+jwt"}},
		{name: "JWT", cfg: req("at+jwt"), hdr: map[string]any{"typ": "JWT"}, wantReason: authz.ReasonWrongTyp, wantDesc: desc + `at+jwt\"`},
		{name: "missing", cfg: req("at+jwt"), hdr: map[string]any{"typ": nil}, wantReason: authz.ReasonWrongTyp, wantDesc: desc},
		{name: "not a string", cfg: req("at+jwt"), hdr: map[string]any{"typ": 1}, wantReason: authz.ReasonWrongTyp, wantDesc: desc},
		{name: "another media type's suffix", cfg: req("at+jwt"), hdr: map[string]any{"typ": "application/x/at+jwt"}, wantReason: authz.ReasonWrongTyp, wantDesc: desc},
		{name: "a prefix of it", cfg: req("at+jwt"), hdr: map[string]any{"typ": "at+jw"}, wantReason: authz.ReasonWrongTyp, wantDesc: desc},
		{name: "not checked by default", cfg: func(*authz.ProviderConfig) {}, hdr: map[string]any{"typ": "anything/else"}},
	})
}

func TestMaxLifetime(t *testing.T) {
	day := func(p *authz.ProviderConfig) { p.MaxLifetime = 24 * time.Hour }
	at := func(iat, exp time.Duration, noIat bool) func(*authztest.Env, time.Time) jwt.MapClaims {
		return func(_ *authztest.Env, now time.Time) jwt.MapClaims {
			c := jwt.MapClaims{"iat": now.Add(iat).Unix(), "exp": now.Add(exp).Unix()}
			if noIat {
				c["iat"] = nil
			}
			return c
		}
	}
	const desc = "token lifetime exceeds 24h0m0s"
	skew := authz.DefaultClockSkew
	runTokenChecks(t, []tokenCheckCase{
		{name: "an hour", cfg: day, claims: at(0, time.Hour, false)},
		{name: "exactly the maximum", cfg: day, claims: at(-time.Hour, 23*time.Hour, false)},
		{name: "a second more", cfg: day, claims: at(-time.Hour, 23*time.Hour+time.Second, false), wantReason: authz.ReasonLifetimeTooLong, wantDesc: desc},
		{name: "a year", cfg: day, claims: at(0, 365*24*time.Hour, false), wantReason: authz.ReasonLifetimeTooLong, wantDesc: desc},
		{name: "no iat: exp - now at the maximum and the skew", cfg: day, claims: at(0, 24*time.Hour+skew, true)},
		{name: "no iat: a second beyond", cfg: day, claims: at(0, 24*time.Hour+skew+time.Second, true), wantReason: authz.ReasonLifetimeTooLong, wantDesc: desc},
		{name: "0 does not check", cfg: func(p *authz.ProviderConfig) { p.MaxLifetime = 0 }, claims: at(0, 365*24*time.Hour, false)},
	})
}

func TestSubjects(t *testing.T) {
	subs := func(m authz.SubjectMatch) func(p *authz.ProviderConfig) {
		return func(p *authz.ProviderConfig) { p.Subjects = m }
	}
	all := authz.SubjectMatch{Exact: []string{"admin"}, Prefix: []string{"user_", "svc:"}, Regex: `[0-9a-f]{8}-[0-9a-f]{4}`}
	const desc = `claim \"sub\" is not among the provider's subjects`
	runTokenChecks(t, []tokenCheckCase{
		{name: "exact", cfg: subs(authz.SubjectMatch{Exact: []string{"a", "user_1"}})},
		{name: "exact, another", cfg: subs(authz.SubjectMatch{Exact: []string{"user_10"}}), wantReason: authz.ReasonWrongSubject, wantDesc: desc},
		{name: "exact is case-sensitive", cfg: subs(authz.SubjectMatch{Exact: []string{"User_1"}}), wantReason: authz.ReasonWrongSubject, wantDesc: desc},
		{name: "prefix", cfg: subs(authz.SubjectMatch{Prefix: []string{"user_"}})},
		{name: "prefix, another", cfg: subs(authz.SubjectMatch{Prefix: []string{"svc_"}}), wantReason: authz.ReasonWrongSubject, wantDesc: desc},
		{name: "regex matches whole", cfg: subs(authz.SubjectMatch{Regex: `user_[0-9]+`})},
		{name: "regex matches part only", cfg: subs(authz.SubjectMatch{Regex: `user_[0-9]`}), claims: claimsOf("sub", "user_12"), wantReason: authz.ReasonWrongSubject, wantDesc: desc},
		{name: "regex anchored inside an alternation", cfg: subs(authz.SubjectMatch{Regex: `a|user`}), claims: claimsOf("sub", "user_1"), wantReason: authz.ReasonWrongSubject, wantDesc: desc},
		{name: "any of three forms: exact", cfg: subs(all), claims: claimsOf("sub", "admin")},
		{name: "any of three forms: prefix", cfg: subs(all), claims: claimsOf("sub", "svc:billing")},
		{name: "any of three forms: regex", cfg: subs(all), claims: claimsOf("sub", "0123abcd-ef01")},
		{name: "any of three forms: none", cfg: subs(all), claims: claimsOf("sub", "administrator"), wantReason: authz.ReasonWrongSubject, wantDesc: desc},
		{name: "sub missing", cfg: subs(all), claims: claimsOf("sub", nil), wantReason: authz.ReasonWrongSubject, wantDesc: desc},
		{name: "sub empty", cfg: subs(authz.SubjectMatch{Regex: `.*`}), claims: claimsOf("sub", ""), wantReason: authz.ReasonWrongSubject, wantDesc: desc},
		{name: "a description never echoes the sub", cfg: subs(all), claims: claimsOf("sub", `evil" error="x`), wantReason: authz.ReasonWrongSubject, wantDesc: desc},
	})
}

// tenantIssuer is the template of e's IdP: {IdP}/{tenantid}/v2.0.
func tenantIssuer(e *authztest.Env, tenant string) string {
	return e.IdP.URL + "/" + tenant + "/v2.0"
}

func TestTenants(t *testing.T) {
	tenants := func(ts ...string) func(p *authz.ProviderConfig) {
		return func(p *authz.ProviderConfig) { p.Issuer, p.Tenants = p.Issuer+"/{tenantid}/v2.0", ts }
	}
	of := func(tenant, tid any) func(*authztest.Env, time.Time) jwt.MapClaims {
		return func(e *authztest.Env, _ time.Time) jwt.MapClaims {
			return jwt.MapClaims{"iss": tenantIssuer(e, tenant.(string)), "tid": tid}
		}
	}
	iss := func(tenant string) func(e *authztest.Env) string {
		return func(e *authztest.Env) string { return tenantIssuer(e, tenant) }
	}
	const (
		a, b         = "11111111-2222-3333-4444-555555555555", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
		descMismatch = `claim \"tid\" must be the tenant \"iss\" names`
		descMissing  = `missing claim \"tid\"`
		descIssuer   = "issuer not accepted"
	)
	runTokenChecks(t, []tokenCheckCase{
		{name: "listed", cfg: tenants(a, b), claims: of(b, b), wantIss: iss(b)},
		{name: "not listed", cfg: tenants(a), claims: of(b, b), wantReason: authz.ReasonWrongIssuer, wantDesc: descIssuer},
		{name: "any tenant", cfg: tenants("*"), claims: of(b, b), wantIss: iss(b)},
		{name: "any tenant, a tenant with a dot", cfg: tenants("*"), claims: of("contoso.example", "contoso.example"), wantIss: iss("contoso.example")},
		{name: "tid of another tenant", cfg: tenants(a, b), claims: of(a, b), wantReason: authz.ReasonInvalidClaims, wantDesc: descMismatch},
		{name: "any tenant, tid of another", cfg: tenants("*"), claims: of(a, b), wantReason: authz.ReasonInvalidClaims, wantDesc: descMismatch},
		{name: "tid in another case", cfg: tenants(b), claims: of(b, strings.ToUpper(b)), wantReason: authz.ReasonInvalidClaims, wantDesc: descMismatch},
		{name: "tid missing", cfg: tenants(a), claims: of(a, nil), wantReason: authz.ReasonInvalidClaims, wantDesc: descMissing},
		{name: "tid not a string", cfg: tenants(a), claims: of(a, []string{a}), wantReason: authz.ReasonInvalidClaims, wantDesc: descMismatch},
		{name: "the template itself", cfg: tenants("*"), claims: of("{tenantid}", "{tenantid}"), wantReason: authz.ReasonWrongIssuer, wantDesc: descIssuer},
		{name: "any tenant, two segments", cfg: tenants("*"), claims: of(a+"/"+a, a+"/"+a), wantReason: authz.ReasonWrongIssuer, wantDesc: descIssuer},
		{name: "any tenant, no tenant", cfg: tenants("*"), claims: of("", ""), wantReason: authz.ReasonWrongIssuer, wantDesc: descIssuer},
		{name: "any tenant, a trailing slash", cfg: tenants("*"), claims: of(a+"/v2.0/x", a), wantReason: authz.ReasonWrongIssuer, wantDesc: descIssuer},
		{name: "the template's own issuer without tenant", cfg: tenants("*"), claims: func(e *authztest.Env, _ time.Time) jwt.MapClaims {
			return jwt.MapClaims{"iss": e.IdP.URL, "tid": a}
		}, wantReason: authz.ReasonWrongIssuer, wantDesc: descIssuer},
	})
}

// TestTenantGrantRebound: a cached grant of a template provider's tenant
// holds only while the policy sends that tenant's iss to the provider: a
// reload that gives the iss to a provider of its own ends it.
func TestTenantGrantRebound(t *testing.T) {
	const tenant = "11111111-2222-3333-4444-555555555555"
	var tmpl authz.ProviderConfig
	e := authztest.New(t, nil, withProvider(func(p *authz.ProviderConfig) {
		p.Issuer, p.Tenants = p.Issuer+"/{tenantid}/v2.0", []string{authz.AnyTenant}
		tmpl = *p
	}))
	tok := tokenWith(t, e, nil, jwt.MapClaims{"iss": tenantIssuer(e, tenant), "tid": tenant})
	if d := checkBearer(e, tok); !d.Allow {
		t.Fatalf("first check: %v", d.Reason)
	}
	if d := checkBearer(e, tok); !d.Allow || d.Layer != authz.LayerTokenCache || d.Issuer != tenantIssuer(e, tenant) {
		t.Fatalf("second check: %v %v %q", d.Reason, d.Layer, d.Issuer)
	}
	own := authz.ProviderConfig{Name: "own", Issuer: tenantIssuer(e, tenant), Keys: e.Src, Subjects: authz.SubjectMatch{Exact: []string{"someone else"}}}
	if err := e.Eng.Update([]authz.ProviderConfig{tmpl, own}, nil); err != nil {
		t.Fatal(err)
	}
	if d := checkBearer(e, tok); d.Allow || d.Reason != authz.ReasonWrongSubject || d.Provider != "own" {
		t.Fatalf("after the reload: allow %v %v provider %q, want the own provider's wrong_subject", d.Allow, d.Reason, d.Provider)
	}
	if err := e.Eng.Update([]authz.ProviderConfig{tmpl}, nil); err != nil {
		t.Fatal(err)
	}
	if d := checkBearer(e, tok); !d.Allow || d.Provider != "test" {
		t.Fatalf("back to the template: %v %q", d.Reason, d.Provider)
	}
}

// TestTokenCheckConfigErrors: each bad form is an error of New, naming the
// provider and the key.
func TestTokenCheckConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(p *authz.ProviderConfig)
		wantIs  error
		wantErr string
	}{
		{name: "negative max lifetime", cfg: func(p *authz.ProviderConfig) { p.MaxLifetime = -time.Second }, wantErr: "max_lifetime: -1s is negative"},
		{name: "bad regex", cfg: func(p *authz.ProviderConfig) { p.Subjects.Regex = "(a" }, wantErr: "subjects.regex: error parsing regexp"},
		{name: "empty exact", cfg: func(p *authz.ProviderConfig) { p.Subjects.Exact = []string{"a", ""} }, wantErr: "subjects.exact[1]: must not be empty"},
		{name: "empty prefix", cfg: func(p *authz.ProviderConfig) { p.Subjects.Prefix = []string{""} }, wantErr: "subjects.prefix[0]: must not be empty"},
		{name: "typ with a space", cfg: func(p *authz.ProviderConfig) { p.RequiredTyp = "at jwt" }, wantErr: `required_typ: "at jwt" is not a media type`},
		{name: "typ application/ alone", cfg: func(p *authz.ProviderConfig) { p.RequiredTyp = "application/" }, wantErr: `required_typ: "application/" is not a media type`},
		{name: "template without tenants", cfg: func(p *authz.ProviderConfig) { p.Issuer += "/{tenantid}/v2.0" }, wantIs: authz.ErrTemplateNoTenants},
		{name: "tenants without template", cfg: func(p *authz.ProviderConfig) { p.Tenants = []string{"a"} }, wantIs: authz.ErrTenantsNoTemplate},
		{name: "placeholder in the host", cfg: func(p *authz.ProviderConfig) {
			p.Issuer, p.Tenants = "https://{tenantid}.example.com/v2.0", []string{"a"}
		}, wantErr: "must be a whole segment of the path"},
		{name: "placeholder part of a segment", cfg: func(p *authz.ProviderConfig) { p.Issuer, p.Tenants = p.Issuer+"/t-{tenantid}/v2.0", []string{"a"} }, wantErr: "must be a whole segment of the path"},
		{name: "placeholder twice", cfg: func(p *authz.ProviderConfig) { p.Issuer, p.Tenants = p.Issuer+"/{tenantid}/{tenantid}", []string{"a"} }, wantErr: "the only placeholder is {tenantid}, once"},
		{name: "another placeholder", cfg: func(p *authz.ProviderConfig) { p.Issuer, p.Tenants = p.Issuer+"/{tenant}/v2.0", []string{"a"} }, wantErr: "the only placeholder is {tenantid}, once"},
		{name: "a query", cfg: func(p *authz.ProviderConfig) { p.Issuer, p.Tenants = p.Issuer+"/{tenantid}?v=2", []string{"a"} }, wantErr: "no query or fragment"},
		{name: "tenant with a slash", cfg: func(p *authz.ProviderConfig) { p.Issuer, p.Tenants = p.Issuer+"/{tenantid}/v2.0", []string{"a/b"} }, wantErr: `tenants[0]: "a/b" is not a tenant id`},
		{name: "tenant dot-dot", cfg: func(p *authz.ProviderConfig) { p.Issuer, p.Tenants = p.Issuer+"/{tenantid}/v2.0", []string{"a", ".."} }, wantErr: `tenants[1]: ".." is not a tenant id`},
		{name: "tenant twice", cfg: func(p *authz.ProviderConfig) { p.Issuer, p.Tenants = p.Issuer+"/{tenantid}/v2.0", []string{"a", "a"} }, wantErr: `tenants[1]: "a" is listed twice`},
		{name: "star among others", cfg: func(p *authz.ProviderConfig) { p.Issuer, p.Tenants = p.Issuer+"/{tenantid}/v2.0", []string{"a", "*"} }, wantErr: `"*" accepts every tenant and goes alone`},
		{name: "an introspection provider", cfg: func(p *authz.ProviderConfig) {
			p.Keys, p.Introspector, p.Subjects.Exact = nil, &fakeIntrospector{}, []string{"a"}
		}, wantErr: "an introspection provider takes none of them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idpURL := "https://idp.example.com"
			p := authz.ProviderConfig{Name: "test", Issuer: idpURL, Keys: &staticKeys{}}
			tt.cfg(&p)
			cfg := authz.DefaultConfig()
			cfg.Providers = []authz.ProviderConfig{p}
			_, err := authz.New(cfg)
			var ce *authz.ConfigError
			switch {
			case err == nil:
				t.Fatal("no error")
			case !errors.As(err, &ce) || ce.Key != "providers[0]":
				t.Errorf("err %v is not about providers[0]", err)
			case tt.wantIs != nil && !errors.Is(err, tt.wantIs):
				t.Errorf("err %v, want %v", err, tt.wantIs)
			case !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), `provider "test"`):
				t.Errorf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestTenantIssuerConflicts: a tenant's issuer is one provider's only.
func TestTenantIssuerConflicts(t *testing.T) {
	const tmpl = "https://login.example.com/{tenantid}/v2.0"
	exact := authz.ProviderConfig{Name: "exact", Issuer: "https://login.example.com/a/v2.0", Keys: &staticKeys{}}
	listed := authz.ProviderConfig{Name: "listed", Issuer: tmpl, Tenants: []string{"b", "a"}, Keys: &staticKeys{}}
	star := authz.ProviderConfig{Name: "star", Issuer: tmpl, Tenants: []string{"*"}, Keys: &staticKeys{}}
	star2 := star
	star2.Name = "star2"
	tests := []struct {
		name      string
		providers []authz.ProviderConfig
		wantErr   string // "": builds
	}{
		{name: "exact, then a listed tenant", providers: []authz.ProviderConfig{exact, listed}, wantErr: `providers[1]: issuer "https://login.example.com/a/v2.0" (tenant "a") is also provider "exact"'s`},
		{name: "a listed tenant, then exact", providers: []authz.ProviderConfig{listed, exact}, wantErr: `providers[1]: issuer "https://login.example.com/a/v2.0" is also provider "listed"'s`},
		{name: "every tenant twice", providers: []authz.ProviderConfig{star, star2}, wantErr: `providers[1]: issuer "` + tmpl + `" is also provider "star"'s`},
		{name: "every tenant beside exact and listed ones", providers: []authz.ProviderConfig{star, exact, {Name: "listed", Issuer: tmpl, Tenants: []string{"b"}, Keys: &staticKeys{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := authz.DefaultConfig()
			cfg.Providers = tt.providers
			err := authz.Validate(cfg)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}
