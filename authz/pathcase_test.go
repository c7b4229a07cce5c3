package authz_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
)

// caseRules are rules whose patterns a case-insensitive upstream reads
// otherwise than a case-sensitive one, behind a catch-all allow: a path
// that reached the wrong rule would need no token at all.
var caseRules = []authz.RuleConfig{
	{Match: authz.Match{Path: "/admin"}, Require: authz.Require{Scopes: []string{"admin"}}},
	{Match: authz.Match{PathPrefix: "/admin/"}, Require: authz.Require{Scopes: []string{"admin"}}},
	{Match: authz.Match{PathPrefix: "/Reports/"}, Require: authz.Require{Scopes: []string{"reports"}}},
	{Match: authz.Match{PathPrefix: "/secrets"}, Require: authz.Require{Scopes: []string{"admin"}}},
	{Match: authz.Match{PathRegex: `/api/[a-z]+/secret`}, Require: authz.Require{Scopes: []string{"admin"}}},
	{Match: authz.Match{PathRegex: `/files/[^/]+`}, Action: authz.ActionAllow},
	{Match: authz.Match{PathPrefix: "/public/"}, Action: authz.ActionAllow},
	{Action: authz.ActionAllow},
}

// caseEngines are engines with caseRules under each PathCase.
func caseEngines(t testing.TB) map[authz.PathCase]*authz.Engine {
	engs := map[authz.PathCase]*authz.Engine{}
	for _, pc := range []authz.PathCase{authz.PathCaseUnset, authz.PathCaseSensitive, authz.PathCaseInsensitive} {
		e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) {
			c.Rules, c.PathCase = caseRules, pc
		}))
		engs[pc] = e.eng
	}
	return engs
}

func checkPath(eng *authz.Engine, path string) authz.Reason {
	r := &authz.Request{Method: "GET", Host: "api.example.com", Path: path, Headers: authz.MapHeaders{}}
	return eng.Check(context.Background(), r).Reason
}

// TestPathCase: with path_case unset, a path that a case-insensitive
// upstream would serve as another rule's path is refused; sensitive and
// insensitive match as they say. No token is sent: public means that the
// catch-all allow let the request through.
func TestPathCase(t *testing.T) {
	engs := caseEngines(t)
	const (
		bad    = authz.ReasonBadRequest
		public = authz.ReasonPublic
		token  = authz.ReasonNoToken
	)
	tests := []struct {
		name                          string
		path                          string
		unset, sensitive, insensitive authz.Reason
	}{
		{name: "control: exact path", path: "/admin", unset: token, sensitive: token, insensitive: token},
		{name: "control: plain public path", path: "/v1/things", unset: public, sensitive: public, insensitive: public},
		{name: "exact path in upper case", path: "/ADMIN", unset: bad, sensitive: public, insensitive: token},
		{name: "prefix in mixed case", path: "/Admin/x", unset: bad, sensitive: public, insensitive: token},
		{name: "upper case past the prefix", path: "/admin/X", unset: token, sensitive: token, insensitive: token},
		{name: "upper-case letter by escape", path: "/%41dmin", unset: bad, sensitive: public, insensitive: token},
		{name: "dotted capital I (İ, whose lower case is i)", path: "/ADM%C4%B0N", unset: bad, sensitive: public, insensitive: token},
		{name: "dotless i (ı, whose upper case is I)", path: "/adm%C4%B1n", unset: bad, sensitive: public, insensitive: token},
		{name: "long s (ſ, whose upper case is S)", path: "/%C5%BFecrets", unset: bad, sensitive: public, insensitive: token},
		{name: "Kelvin sign for k, in a regex class", path: "/api/%E2%84%AAeys/secret", unset: bad, sensitive: public, insensitive: token},
		{name: "rule pattern in mixed case, path in lower case", path: "/reports/q1", unset: bad, sensitive: public, insensitive: token},
		{name: "rule pattern in mixed case, path as written", path: "/Reports/q1", unset: token, sensitive: token, insensitive: token},
		{name: "rule pattern in mixed case, path in upper case", path: "/REPORTS/q1", unset: bad, sensitive: public, insensitive: token},
		{name: "regex class of lower-case letters", path: "/api/users/secret", unset: token, sensitive: token, insensitive: token},
		{name: "regex class, an upper-case letter", path: "/api/Users/secret", unset: bad, sensitive: public, insensitive: token},
		{name: "regex that tells no case apart", path: "/files/Report.PDF", unset: public, sensitive: public, insensitive: public},
		{name: "non-ASCII path, same rule folded", path: "/public/%C3%84pfel", unset: public, sensitive: public, insensitive: public},
		{name: "upper case under dot segments", path: "/public/../ADMIN", unset: bad, sensitive: bad, insensitive: bad},
		{name: "upper case in the query only", path: "/admin?X=Y", unset: token, sensitive: token, insensitive: token},
		{name: "fragment", path: "/admin#x", unset: bad, sensitive: bad, insensitive: bad},
		{name: "fragment after the query: the path is /public/a either way", path: "/public/a?x#/../../admin", unset: public, sensitive: public, insensitive: public},
		{name: "double-encoded dot segments", path: "/public/%252e%252e/admin", unset: bad, sensitive: bad, insensitive: bad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for pc, want := range map[authz.PathCase]authz.Reason{
				authz.PathCaseUnset: tt.unset, authz.PathCaseSensitive: tt.sensitive, authz.PathCaseInsensitive: tt.insensitive,
			} {
				if got := checkPath(engs[pc], tt.path); got != want {
					t.Errorf("path_case %q: %v, want %v", pc, got, want)
				}
			}
		})
	}
}

func TestPathCaseConfig(t *testing.T) {
	keys := jwks.New(jwks.Config{Name: "k"})
	tests := []struct {
		name     string
		pathCase authz.PathCase
		wantErr  error
	}{
		{name: "unset", pathCase: authz.PathCaseUnset},
		{name: "sensitive", pathCase: authz.PathCaseSensitive},
		{name: "insensitive", pathCase: authz.PathCaseInsensitive},
		{name: "not a value", pathCase: "ignore", wantErr: authz.ErrPathCase},
		{name: "a value in another case", pathCase: "Insensitive", wantErr: authz.ErrPathCase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := authz.DefaultConfig()
			cfg.Providers = []authz.ProviderConfig{{Name: "a", Issuer: "https://a", Keys: keys}}
			cfg.Rules, cfg.PathCase = caseRules, tt.pathCase
			err := authz.Validate(cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "path_case") {
				t.Fatalf("err = %v, want it to name path_case", err)
			}
		})
	}
}

// FuzzPathCase: with path_case unset, a path either is refused or selects
// what both a case-sensitive and a case-insensitive reading select.
//
//	go test ./authz -run '^$' -fuzz '^FuzzPathCase$' -fuzztime=30s
func FuzzPathCase(f *testing.F) {
	for _, p := range []string{
		"/admin", "/ADMIN", "/Admin/x", "/reports/a", "/REPORTS/a", "/Reports/a", "/api/ab/secret", "/api/AB/secret",
		"/files/A", "/files/%E2%84%AA", "/%C5%BFecrets", "/adm%C4%B1n", "/public/../Admin", "//Admin", "/public/%C3%84",
	} {
		f.Add(p)
	}
	engs := caseEngines(f)
	f.Fuzz(func(t *testing.T, path string) {
		unset := checkPath(engs[authz.PathCaseUnset], path)
		sens := checkPath(engs[authz.PathCaseSensitive], path)
		insens := checkPath(engs[authz.PathCaseInsensitive], path)
		if unset != authz.ReasonBadRequest && (unset != sens || unset != insens) {
			t.Fatalf("%q: unset %v, sensitive %v, insensitive %v", path, unset, sens, insens)
		}
	})
}
