package authz_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
)

// TestConfigErrorNamesTheKey: an error about one rule or provider is an
// *authz.ConfigError whose Key is the path the YAML file spells, so that
// the file's reader can give its line; a path_regex error shows the
// pattern as written, not the anchored one authz compiles.
func TestConfigErrorNamesTheKey(t *testing.T) {
	keys := jwks.New(jwks.Config{Name: "k"})
	a := authz.ProviderConfig{Name: "a", Issuer: "https://a.example.com", Keys: keys}
	b := authz.ProviderConfig{Name: "b", Issuer: "https://b.example.com", Keys: keys}
	withRule := func(rc authz.RuleConfig) authz.Config {
		c := authz.DefaultConfig()
		c.Providers, c.Rules = []authz.ProviderConfig{a, b}, []authz.RuleConfig{{Action: authz.ActionAllow}, rc}
		return c
	}
	tests := []struct {
		name    string
		cfg     authz.Config
		wantKey string
		wantMsg string // in Error()
		notMsg  string // must not be in Error()
	}{
		{name: "unbalanced regex", cfg: withRule(authz.RuleConfig{Match: authz.Match{PathRegex: "/api/(v1"}}),
			wantKey: "rules[1].match.path_regex", wantMsg: `"/api/(v1"`, notMsg: "^(?:"},
		{name: "regex that closes the anchoring group", cfg: withRule(authz.RuleConfig{Match: authz.Match{PathRegex: "/admin)|(.*"}}),
			wantKey: "rules[1].match.path_regex", wantMsg: `"/admin)|(.*"`},
		{name: "action", cfg: withRule(authz.RuleConfig{Action: "maybe"}), wantKey: "rules[1].action", wantMsg: `rules[1].action: "maybe" is not one of`},
		{name: "host", cfg: withRule(authz.RuleConfig{Match: authz.Match{Hosts: []string{"a.example.com", "b:1"}}}), wantKey: "rules[1].match.hosts[1]"},
		{name: "path", cfg: withRule(authz.RuleConfig{Match: authz.Match{PathPrefix: "api"}}), wantKey: "rules[1].match.path_prefix"},
		{name: "allow with require", cfg: withRule(authz.RuleConfig{Action: authz.ActionAllow, Require: authz.Require{Scopes: []string{"x"}}}), wantKey: "rules[1]"},
		{name: "unknown provider", cfg: withRule(authz.RuleConfig{Require: authz.Require{Providers: []string{"a", "c"}}}), wantKey: "rules[1].require.providers", wantMsg: `no provider named "c"`},
		{name: "same issuer", cfg: func() authz.Config {
			c := withRule(authz.RuleConfig{})
			c.Providers[1].Issuer = a.Issuer
			return c
		}(), wantKey: "providers[1]", wantMsg: `providers[1]: issuer "https://a.example.com" is also provider "a"'s`},
		{name: "claim header", cfg: func() authz.Config {
			c := withRule(authz.RuleConfig{})
			c.Providers[1].ClaimHeaders = map[string]string{"authorization": "sub"}
			return c
		}(), wantKey: "providers[1]", wantMsg: "is the request's own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := authz.Validate(tt.cfg)
			var ce *authz.ConfigError
			if !errors.As(err, &ce) || ce.Key != tt.wantKey {
				t.Fatalf("err = %v; want an *authz.ConfigError with Key %q", err, tt.wantKey)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || tt.notMsg != "" && strings.Contains(err.Error(), tt.notMsg) {
				t.Fatalf("err = %q; want %q in it and not %q", err, tt.wantMsg, tt.notMsg)
			}
			if _, err := authz.New(tt.cfg); err == nil {
				t.Fatal("New accepts what Validate refuses")
			}
		})
	}
}
