package authz_test

import (
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
)

// TestPathRegexIsCheckedAsWritten: path_regex is matched against the whole
// path, which authz does by compiling ^(?:pattern)$. A pattern that is not
// RE2 by itself is refused, even when the anchored form compiles: with
// "/admin)|(.*" it would be ^(?:/admin)|(.*)$, which matches every path.
// The error shows the pattern as written.
func TestPathRegexIsCheckedAsWritten(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		wantErr bool
	}{
		{name: "closes the anchoring group", pattern: "/admin)|(.*", wantErr: true},
		{name: "closes it with a group of its own", pattern: "/a)(/b", wantErr: true},
		{name: "unbalanced", pattern: "/api/(v1", wantErr: true},
		{name: "alternation stays anchored", pattern: "/a|/b"},
		{name: "group", pattern: "/api/(v1|v2)/.*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := authz.DefaultConfig()
			c.Providers = []authz.ProviderConfig{{Name: "a", Issuer: "https://a.example.com", Keys: jwks.New(jwks.Config{Name: "a"})}}
			c.Rules = []authz.RuleConfig{{Match: authz.Match{PathRegex: tt.pattern}, Action: authz.ActionAllow}}
			err := authz.Validate(c)
			switch {
			case !tt.wantErr && err != nil:
				t.Fatalf("%q refused: %v", tt.pattern, err)
			case tt.wantErr && err == nil:
				t.Fatalf("%q accepted", tt.pattern)
			case tt.wantErr && (!strings.Contains(err.Error(), "rules[0].match.path_regex: ") || strings.Contains(err.Error(), "^(?:")):
				t.Fatalf("err = %q; want it to name rules[0].match.path_regex and show the pattern as written", err)
			}
		})
	}
}
