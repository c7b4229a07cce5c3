package authz_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// extraIdP starts another IdP and its key source for a multi-provider env.
func extraIdP(t *testing.T) (*issuer.Server, *jwks.Source) {
	idp := issuer.NewServer()
	t.Cleanup(idp.Close)
	return idp, runSource(t, jwks.Config{Name: "x", Issuer: idp.URL, URL: idp.JWKSURL()}, true)
}

// mint signs claims with idp's key at the env's time; claims override.
func (e *env) mint(idp *issuer.Server, claims jwt.MapClaims) string {
	now := e.clock.Now()
	c := jwt.MapClaims{"iss": idp.URL, "sub": "user_1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok, err := idp.Signing().Sign(c)
	if err != nil {
		panic(err)
	}
	return tok
}

func TestRulesProvidersAndSources(t *testing.T) {
	partner, partnerKeys := extraIdP(t)
	web, webKeys := extraIdP(t)
	e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) {
		c.Providers = []authz.ProviderConfig{
			{Name: "partner", Issuer: partner.URL, Keys: partnerKeys, TokenSources: []authz.TokenSource{{Header: "x-partner-token"}}},
			{Name: "web", Issuer: web.URL, Keys: webKeys, DropToken: true,
				TokenSources: []authz.TokenSource{{Cookie: "__session"}, {Query: "access_token"}},
				ClaimHeaders: map[string]string{"x-auth-org": "org_id", "x-auth-roles": "roles", "x-auth-meta": "meta"}, PayloadHeader: "x-jwt-payload"},
		}
		c.Rules = []authz.RuleConfig{
			{Match: authz.Match{PathPrefix: "/healthz"}, Action: authz.ActionAllow},
			{Match: authz.Match{PathPrefix: "/public"}, Action: authz.ActionOptional},
			{Match: authz.Match{PathPrefix: "/admin", Methods: []string{"post", "DELETE"}, Hosts: []string{"api.example.com"}},
				Require: authz.Require{Providers: []string{"test"}, Scopes: []string{"admin"}, Claims: map[string]string{"org_role": "admin"}}},
			{Match: authz.Match{PathRegex: `/v[0-9]+/partners/.*`}, Require: authz.Require{Providers: []string{"partner"}}},
			{Match: authz.Match{Hosts: []string{"*.internal.example.com"}}, Require: authz.Require{Providers: []string{"web"}}},
			{Match: authz.Match{Path: "/exact"}, Require: authz.Require{Scopes: []string{"read"}}},
		}
	}))
	tok := e.token(nil)
	admin := e.token(jwt.MapClaims{"scope": "other admin", "org_role": "admin"})
	adminScp := e.token(jwt.MapClaims{"scp": []string{"admin"}, "org_role": []string{"member", "admin"}})
	adminScpString := e.token(jwt.MapClaims{"scp": "read admin", "org_role": "admin"})
	member := e.token(jwt.MapClaims{"scope": "admin", "org_role": "member"})
	reader := e.token(jwt.MapClaims{"scope": "read"})
	partnerTok := e.mint(partner, nil)
	webTok := e.mint(web, jwt.MapClaims{"sub": "web_1", "org_id": "org_9", "roles": []string{"a", "b"}, "meta": map[string]any{"x": 1}})
	bearer := func(t string) map[string]string { return map[string]string{"authorization": "Bearer " + t} }

	tests := []struct {
		name               string
		method, host, path string
		headers            map[string]string
		wantReason         authz.Reason
		wantProvider       string
		check              func(t *testing.T, d authz.Decision)
	}{
		{name: "allow rule without a token", path: "/healthz", wantReason: authz.ReasonPublic},
		{name: "allow rule ignores a bad token", path: "/healthz", headers: bearer("garbage"), wantReason: authz.ReasonPublic},
		{name: "optional without a token", path: "/public/x", wantReason: authz.ReasonAnonymous},
		{name: "optional with a bad token", path: "/public/x", headers: bearer("garbage"), wantReason: authz.ReasonMalformed},
		{name: "optional with a good token", path: "/public/x", headers: bearer(tok), wantReason: authz.ReasonOK, wantProvider: "test"},
		{name: "scope and claim", method: "POST", path: "/admin/users", headers: bearer(admin), wantReason: authz.ReasonOK, wantProvider: "test"},
		{name: "scp array, claim array membership", method: "POST", path: "/admin", headers: bearer(adminScp), wantReason: authz.ReasonOK},
		{name: "scp string", method: "DELETE", path: "/admin", headers: bearer(adminScpString), wantReason: authz.ReasonOK},
		{name: "scope missing: 403", method: "POST", path: "/admin", headers: bearer(tok), wantReason: authz.ReasonInsufficientScope,
			check: func(t *testing.T, d authz.Decision) {
				if want := `Bearer realm="jwtauthz", error="insufficient_scope", scope="admin", error_description="scope \"admin\" required"`; d.Challenge != want || d.Status() != 403 {
					t.Errorf("challenge %q status %d", d.Challenge, d.Status())
				}
			}},
		{name: "claim differs: 403", method: "POST", path: "/admin", headers: bearer(member), wantReason: authz.ReasonInsufficientScope},
		{name: "host match ignores case and port", method: "POST", host: "API.Example.com:443", path: "/admin", headers: bearer(tok), wantReason: authz.ReasonInsufficientScope},
		{name: "issuer the rule does not allow: 401", method: "POST", path: "/admin", headers: bearer(partnerTok), wantReason: authz.ReasonWrongIssuer},
		{name: "method not matched: next rules", method: "GET", path: "/admin", headers: bearer(tok), wantReason: authz.ReasonOK},
		{name: "host not matched: next rules", method: "POST", host: "other.example.com", path: "/admin", headers: bearer(tok), wantReason: authz.ReasonOK},
		{name: "regex rule, the provider's own header", path: "/v2/partners/7?debug=1", headers: map[string]string{"x-partner-token": partnerTok}, wantReason: authz.ReasonOK, wantProvider: "partner"},
		{name: "regex rule reads only its provider's sources", path: "/v2/partners/7", headers: bearer(tok), wantReason: authz.ReasonNoToken},
		{name: "regex matches the whole path only", path: "/x/v2/partners/7", headers: bearer(tok), wantReason: authz.ReasonOK, wantProvider: "test"},
		{name: "wildcard host, cookie token, claim and payload headers, cookie dropped", host: "svc.internal.example.com", path: "/",
			headers: map[string]string{"cookie": "a=1; __session=" + webTok + "; b=2"}, wantReason: authz.ReasonOK, wantProvider: "web",
			check: func(t *testing.T, d authz.Decision) {
				got := map[string]string{}
				for _, h := range d.Set {
					got[h.Name] = h.Value
				}
				payload := strings.Split(webTok, ".")[1]
				if got["x-auth-org"] != "org_9" || got["x-auth-roles"] != "a,b" || got["x-jwt-payload"] != payload {
					t.Errorf("claim headers %v", got)
				}
				if _, ok := got["x-auth-meta"]; ok || !slices.Contains(d.Remove, "x-auth-meta") {
					t.Errorf("an object claim must not become a header, and its header must be removed: set %v, remove %v", got, d.Remove)
				}
				if !d.CookieSet || d.Cookie != "a=1; b=2" {
					t.Errorf("cookie %q (set %v), want the token taken out", d.Cookie, d.CookieSet)
				}
				if d.Subject != "web_1" || d.Issuer != web.URL {
					t.Errorf("identity %q %q", d.Subject, d.Issuer)
				}
			}},
		{name: "query token dropped", host: "svc.internal.example.com", path: "/x?access_token=" + webTok + "&y=1", wantReason: authz.ReasonOK,
			check: func(t *testing.T, d authz.Decision) {
				if !slices.Equal(d.RemoveQuery, []string{"access_token"}) {
					t.Errorf("query_parameters_to_remove %v", d.RemoveQuery)
				}
			}},
		{name: "wildcard needs a subdomain", host: "internal.example.com", path: "/", headers: bearer(tok), wantReason: authz.ReasonOK, wantProvider: "test"},
		{name: "exact path", path: "/exact", headers: bearer(reader), wantReason: authz.ReasonOK},
		{name: "exact path, no scope", path: "/exact", headers: bearer(tok), wantReason: authz.ReasonInsufficientScope},
		{name: "not the exact path", path: "/exact/more", headers: bearer(tok), wantReason: authz.ReasonOK},
		{name: "fallback: a token outside its provider's sources", path: "/", headers: bearer(webTok), wantReason: authz.ReasonWrongIssuer},
		{name: "fallback: any provider from its own source", path: "/", headers: map[string]string{"x-partner-token": partnerTok}, wantReason: authz.ReasonOK, wantProvider: "partner"},
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
			d := e.eng.Check(context.Background(), r)
			if d.Reason != tt.wantReason || d.Allow != (tt.wantReason.Status() == 200) {
				t.Fatalf("allow %v reason %v, want %v", d.Allow, d.Reason, tt.wantReason)
			}
			if tt.wantProvider != "" && d.Provider != tt.wantProvider {
				t.Errorf("provider %q, want %q", d.Provider, tt.wantProvider)
			}
			if d.Allow {
				checkNoSpoofing(t, d)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

// checkNoSpoofing asserts that every header jwtauthz may set is either set
// or removed on an allow.
func checkNoSpoofing(t *testing.T, d authz.Decision) {
	t.Helper()
	touched := slices.Clone(d.Remove)
	for _, h := range d.Set {
		touched = append(touched, h.Name)
	}
	if d.Subject != "" {
		touched = append(touched, authz.HeaderSubject)
	}
	if d.Issuer != "" {
		touched = append(touched, authz.HeaderIssuer)
	}
	for _, h := range []string{"x-auth-subject", "x-auth-issuer", "x-auth-org", "x-auth-roles", "x-auth-meta", "x-jwt-payload"} {
		if !slices.Contains(touched, h) {
			t.Errorf("%s neither set nor removed: a client could spoof it (set %v, remove %v)", h, d.Set, d.Remove)
		}
	}
}

func TestAnyIssuerAndAuthorizedParties(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(_ *authz.Config, p *authz.ProviderConfig) {
		p.Issuer, p.AnyIssuer = "", true
		p.AuthorizedParties = []string{"https://app.example.com"}
		p.TokenSources = []authz.TokenSource{authz.BearerSource, {Cookie: "__session"}}
	}))
	tests := []struct {
		name       string
		claims     jwt.MapClaims
		cookie     bool
		wantReason authz.Reason
	}{
		{name: "any iss signed by the instance's keys", claims: jwt.MapClaims{"iss": "https://happy-cat-12.clerk.accounts.dev", "azp": "https://app.example.com"}, wantReason: authz.ReasonOK},
		{name: "from the __session cookie", claims: jwt.MapClaims{"iss": "https://clerk.example.com"}, cookie: true, wantReason: authz.ReasonOK},
		{name: "azp absent", claims: jwt.MapClaims{"iss": "https://clerk.example.com"}, wantReason: authz.ReasonOK},
		{name: "azp not authorized", claims: jwt.MapClaims{"iss": "https://clerk.example.com", "azp": "https://evil.example.com"}, wantReason: authz.ReasonWrongParty},
		{name: "iss still required", claims: jwt.MapClaims{"iss": nil}, wantReason: authz.ReasonMissingClaim},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := e.token(tt.claims)
			h := authz.MapHeaders{"authorization": "Bearer " + tok}
			if tt.cookie {
				h = authz.MapHeaders{"cookie": "__session=" + tok}
			}
			d := e.eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "h", Path: "/", Headers: h})
			if d.Reason != tt.wantReason {
				t.Fatalf("reason %v, want %v", d.Reason, tt.wantReason)
			}
			if d.Allow && d.Issuer != tt.claims["iss"] {
				t.Errorf("x-auth-issuer %q, want the token's iss", d.Issuer)
			}
		})
	}
}

func TestForwardTokenFalseRemovesTheHeader(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(_ *authz.Config, p *authz.ProviderConfig) { p.DropToken = true }))
	resp := e.check("Bearer " + e.token(nil))
	if rm := resp.GetOkResponse().GetHeadersToRemove(); !slices.Contains(rm, "authorization") {
		t.Fatalf("headers_to_remove %v, want authorization", rm)
	}
}

func TestPolicyErrors(t *testing.T) {
	keys := jwks.New(jwks.Config{Name: "k"})
	p := authz.ProviderConfig{Name: "a", Issuer: "https://a", Keys: keys}
	tests := []struct {
		name string
		cfg  authz.Config
		want string
	}{
		{name: "no provider", cfg: authz.Config{}, want: "no provider"},
		{name: "unknown provider in a rule", cfg: authz.Config{Providers: []authz.ProviderConfig{p}, Rules: []authz.RuleConfig{{Require: authz.Require{Providers: []string{"b"}}}}}, want: `rules[0].require.providers: no provider named "b"`},
		{name: "bad regex", cfg: authz.Config{Providers: []authz.ProviderConfig{p}, Rules: []authz.RuleConfig{{Match: authz.Match{PathRegex: "("}}}}, want: "rules[0].match.path_regex"},
		{name: "bad action", cfg: authz.Config{Providers: []authz.ProviderConfig{p}, Rules: []authz.RuleConfig{{Action: "maybe"}}}, want: "rules[0].action"},
		{name: "HS256", cfg: authz.Config{Providers: []authz.ProviderConfig{{Name: "a", Issuer: "https://a", Keys: keys, Algorithms: []string{"HS256"}}}}, want: `"HS256" is not allowed`},
		{name: "same issuer twice", cfg: authz.Config{Providers: []authz.ProviderConfig{p, {Name: "b", Issuer: "https://a", Keys: keys}}}, want: "also provider"},
		{name: "two any-issuer providers", cfg: authz.Config{Providers: []authz.ProviderConfig{{Name: "a", AnyIssuer: true, Keys: keys}, {Name: "b", AnyIssuer: true, Keys: keys}}}, want: "only one provider"},
		{name: "host with a port", cfg: rule(authz.RuleConfig{Match: authz.Match{Hosts: []string{"api.example.com:443"}}}), want: `rules[0].match.hosts[0]: "api.example.com:443"`},
		{name: "host wildcard without a dot", cfg: rule(authz.RuleConfig{Match: authz.Match{Hosts: []string{"*example.com"}}}), want: `rules[0].match.hosts[0]: "*example.com"`},
		{name: "host wildcard inside", cfg: rule(authz.RuleConfig{Match: authz.Match{Hosts: []string{"api.*.com"}}}), want: "rules[0].match.hosts[0]"},
		{name: "path without a slash", cfg: rule(authz.RuleConfig{Match: authz.Match{Path: "admin"}}), want: "rules[0].match.path"},
		{name: "path prefix with a query", cfg: rule(authz.RuleConfig{Match: authz.Match{PathPrefix: "/a?b"}}), want: "rules[0].match.path_prefix"},
		{name: "allow with require", cfg: rule(authz.RuleConfig{Action: authz.ActionAllow, Require: authz.Require{Scopes: []string{"admin"}}}), want: "rules[0]: action allow takes no require"},
		{name: "claim header shadows the subject", cfg: authz.Config{Providers: []authz.ProviderConfig{{Name: "a", Issuer: "https://a", Keys: keys, ClaimHeaders: map[string]string{"X-Auth-Subject": "email"}}}}, want: `header "x-auth-subject" would be set twice`},
		{name: "claim headers differing in case", cfg: authz.Config{Providers: []authz.ProviderConfig{{Name: "a", Issuer: "https://a", Keys: keys, ClaimHeaders: map[string]string{"X-Org": "org", "x-org": "org_id"}}}}, want: `header "x-org" would be set twice`},
		{name: "payload header is a claim header", cfg: authz.Config{Providers: []authz.ProviderConfig{{Name: "a", Issuer: "https://a", Keys: keys, ClaimHeaders: map[string]string{"x-jwt": "sub"}, PayloadHeader: "X-JWT"}}}, want: `header "x-jwt" would be set twice`},
		{name: "claim header is the request's own", cfg: authz.Config{Providers: []authz.ProviderConfig{{Name: "a", Issuer: "https://a", Keys: keys, ClaimHeaders: map[string]string{"Authorization": "sub"}}}}, want: `header "authorization" is the request's own`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := authz.New(withDefaultLimits(tt.cfg))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestNestedClaims(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(c *authz.Config, p *authz.ProviderConfig) {
		p.ClaimHeaders = map[string]string{"x-auth-org": "o.id", "x-auth-dotted": "a.b"}
		c.Rules = []authz.RuleConfig{{Require: authz.Require{Claims: map[string]string{"o.rol": "admin"}}}}
	}))
	tests := []struct {
		name       string
		claims     jwt.MapClaims
		wantReason authz.Reason
		wantOrg    string
	}{
		{name: "Clerk v2 organization", claims: jwt.MapClaims{"o": map[string]any{"id": "org_1", "rol": "admin"}}, wantReason: authz.ReasonOK, wantOrg: "org_1"},
		{name: "another role", claims: jwt.MapClaims{"o": map[string]any{"id": "org_1", "rol": "member"}}, wantReason: authz.ReasonInsufficientScope},
		{name: "not an object", claims: jwt.MapClaims{"o": "admin"}, wantReason: authz.ReasonInsufficientScope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.claims["a.b"] = "whole name first"
			d := e.decide("Bearer "+e.token(tt.claims), "")
			if d.Reason != tt.wantReason {
				t.Fatalf("reason %v, want %v", d.Reason, tt.wantReason)
			}
			if !d.Allow {
				return
			}
			got := map[string]string{}
			for _, h := range d.Set {
				got[h.Name] = h.Value
			}
			if got["x-auth-org"] != tt.wantOrg || got["x-auth-dotted"] != "whole name first" {
				t.Fatalf("headers %v", got)
			}
		})
	}
}

// rule is a config of one provider and rc.
func rule(rc authz.RuleConfig) authz.Config {
	return authz.Config{Providers: []authz.ProviderConfig{{Name: "a", Issuer: "https://a", Keys: jwks.New(jwks.Config{Name: "k"})}}, Rules: []authz.RuleConfig{rc}}
}

// A host rule matches the authority as servers read it: without case, its
// port or a final dot; a method rule matches without case.
func TestHostAndMethodRules(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) {
		c.Rules = []authz.RuleConfig{
			{Match: authz.Match{Hosts: []string{"admin.example.com", "[::1]"}}, Require: authz.Require{Scopes: []string{"admin"}}},
			{Match: authz.Match{Methods: []string{"delete"}}, Require: authz.Require{Scopes: []string{"admin"}}},
			{Match: authz.Match{Hosts: []string{"*.example.com"}, Methods: []string{"GET"}}, Action: authz.ActionAllow},
			{Match: authz.Match{Hosts: []string{"*"}, Methods: []string{"HEAD"}}, Action: authz.ActionAllow},
		}
	}))
	tok := "Bearer " + e.token(nil) // a valid token without the admin scope
	tests := []struct {
		method, host string
		want         authz.Reason
	}{
		{"GET", "admin.example.com", authz.ReasonInsufficientScope},
		{"GET", "ADMIN.example.com:443", authz.ReasonInsufficientScope},
		{"GET", "admin.example.com.", authz.ReasonInsufficientScope},
		{"GET", "admin.example.com.:8443", authz.ReasonInsufficientScope},
		{"GET", "[::1]:9000", authz.ReasonInsufficientScope},
		{"delete", "api.example.com", authz.ReasonInsufficientScope},
		{"DELETE", "api.example.com", authz.ReasonInsufficientScope},
		{"get", "api.example.com", authz.ReasonPublic},
		{"GET", "example.com", authz.ReasonOK}, // not a subdomain: the fallback
		{"GET", "evilexample.com", authz.ReasonOK},
		{"HEAD", "anything", authz.ReasonPublic},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.host, func(t *testing.T) {
			r := &authz.Request{Method: tt.method, Host: tt.host, Path: "/x", Headers: authz.MapHeaders{"authorization": tok}}
			if d := e.eng.Check(context.Background(), r); d.Reason != tt.want {
				t.Fatalf("reason %v, want %v", d.Reason, tt.want)
			}
		})
	}
}

func TestMatchPath(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) {
		c.Rules = []authz.RuleConfig{
			{Match: authz.Match{PathPrefix: "/public/"}, Action: authz.ActionAllow},
			{Match: authz.Match{Path: "/exact/"}, Action: authz.ActionAllow},
		}
	}))
	tests := []struct {
		path       string
		wantReason authz.Reason
	}{
		{"/public/a", authz.ReasonPublic},
		{"/public/a?x=/../admin", authz.ReasonPublic}, // the query is not the path
		// Dot segments and repeated slashes are resolved as a normalising
		// upstream does; where that changes the rule, an upstream that does
		// not (nginx's proxy_pass forwards the raw URI) would read another
		// path than the rule saw: 400.
		{"/public/../admin", authz.ReasonBadRequest},
		{"/public/%2e%2e/admin", authz.ReasonBadRequest},
		{"/public/%2E%2E/admin", authz.ReasonBadRequest},
		{"/admin/../public/a", authz.ReasonBadRequest},
		{"//public//a", authz.ReasonBadRequest},
		{"/public/..", authz.ReasonBadRequest}, // RFC 3986: /
		{"/exact/.", authz.ReasonBadRequest},
		{"/exact/x/..", authz.ReasonBadRequest},
		{"/public/./a", authz.ReasonPublic},
		{"/public//a", authz.ReasonPublic},
		{"/public/a/..", authz.ReasonPublic}, // RFC 3986: /public/
		{"/other//x/../y", authz.ReasonNoToken},
		{"/exact/", authz.ReasonPublic},
		{"/public%2Fa", authz.ReasonBadRequest},
		{"/public%5ca", authz.ReasonBadRequest},
		{"/public/%00", authz.ReasonBadRequest},
		{"/public\\a", authz.ReasonBadRequest},
		{"/public/%zz", authz.ReasonBadRequest},
		{"public/../x", authz.ReasonBadRequest},
		{"/public/caf%C3%A9", authz.ReasonPublic},
		// Java servers cut ;params out of each segment before they resolve
		// dot segments: to them these are /admin.
		{"/public/..;/admin", authz.ReasonBadRequest},
		{"/public/..;x=1/admin", authz.ReasonBadRequest},
		{"/public/%2e%2e;/admin", authz.ReasonBadRequest},
		{"/public/.;/../admin", authz.ReasonBadRequest},
		{"/public/a;jsessionid=1", authz.ReasonBadRequest},
		{"/public/a%3Bb", authz.ReasonBadRequest},
		{"/public/a?b;c", authz.ReasonPublic}, // in the query
		// A fragment never reaches a server; an upstream cuts it off.
		{"/public/a#b", authz.ReasonBadRequest},
		{"/public/a?b#c", authz.ReasonPublic},     // in the query: the path is /public/a either way
		{"/public/a%23b", authz.ReasonBadRequest}, // # once decoded
		{"/public/a%3Fb", authz.ReasonBadRequest}, // ? once decoded
		// An escape left after decoding: an upstream that decodes twice
		// reads /admin.
		{"/public/%252e%252e/admin", authz.ReasonBadRequest},
		{"/public/%2541", authz.ReasonBadRequest},
		{"/public/100%25", authz.ReasonPublic},
		{"/public/100%25%20off", authz.ReasonPublic},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			d := e.eng.Check(context.Background(), &authz.Request{Method: "GET", Host: "h", Path: tt.path, Headers: authz.MapHeaders{}})
			if d.Reason != tt.wantReason {
				t.Fatalf("reason %v, want %v", d.Reason, tt.wantReason)
			}
		})
	}
}
