package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// introspectionYAML is a provider "hydra" with introspection; more is
// added to its introspection mapping.
func introspectionYAML(more string) string {
	return "providers:\n  - name: hydra\n    issuer: https://idp.example.com/\n    audiences: [api]\n    introspection:\n" +
		"      url: https://idp.example.com/oauth2/introspect\n      client_id: jwtauthz\n" + more
}

func secretFile(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIntrospectionKeys(t *testing.T) {
	file := secretFile(t, "s3cret\n", 0o600)
	c, err := load(t, []string{"--config", writeFile(t, introspectionYAML("      client_secret_file: "+file+"\n      auth_method: client_secret_post\n      timeout: 3s\n      cache_ttl: 30s\n    introspect_jwts: true\n"))}, envOf())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	p := c.Providers[0]
	ic := p.Introspection
	if !ic.Set() || ic.AuthMethod != "client_secret_post" || ic.TimeoutOrDefault() != 3*time.Second || ic.CacheTTLOrDefault() != 30*time.Second || !p.IntrospectJWTs {
		t.Errorf("introspection %+v introspect_jwts %v", ic, p.IntrospectJWTs)
	}
	if s, err := p.ClientSecret("providers[0]"); err != nil || s != "s3cret" {
		t.Errorf("secret %q, %v; want the file's, without its newline", s, err)
	}
	ac := c.EngineConfigWith(nil, nil)
	if got := ac.Providers[0]; got.IntrospectionCacheTTL != 30*time.Second || !got.IntrospectJWTs || got.Keys != nil {
		t.Errorf("engine provider %+v", got)
	}
}

func TestIntrospectionDefaultsAndEnvSecret(t *testing.T) {
	yaml := "providers:\n  - name: my-idp.1\n    introspection:\n      url: https://idp.example.com/introspect\n      client_id: jwtauthz\n"
	c, err := load(t, []string{"--config", writeFile(t, yaml)}, envOf("JWTAUTHZ_PROVIDERS_MY_IDP_1_CLIENT_SECRET", "from-env"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	p := c.Providers[0]
	if s, _ := p.ClientSecret("providers[0]"); s != "from-env" {
		t.Errorf("secret %q; want the variable's", s)
	}
	if p.Introspection.TimeoutOrDefault() != DefaultIntrospectionTimeout || p.Introspection.CacheTTLOrDefault() != DefaultIntrospectionCacheTTL {
		t.Errorf("defaults %v %v", p.Introspection.TimeoutOrDefault(), p.Introspection.CacheTTLOrDefault())
	}
	if got := SecretEnv("hydra"); got != "JWTAUTHZ_PROVIDERS_HYDRA_CLIENT_SECRET" {
		t.Errorf("SecretEnv(hydra) = %s", got)
	}
}

func TestIntrospectionConfigErrors(t *testing.T) {
	good := secretFile(t, "s3cret", 0o600)
	empty := secretFile(t, " \n", 0o600)
	env := envOf("JWTAUTHZ_PROVIDERS_HYDRA_CLIENT_SECRET", "x")
	tests := []struct {
		name string
		yaml string
		env  func(string) (string, bool)
		want []string // in the error
	}{
		{"no url and no issuer", "providers:\n  - name: hydra\n    introspection:\n      client_id: jwtauthz\n", env,
			[]string{"providers[0].introspection.url: is required when the provider has no issuer"}},
		{"bad auth_method", introspectionYAML("      auth_method: private_key_jwt\n"), env,
			[]string{"providers[0].introspection.auth_method:", `"private_key_jwt" is not client_secret_basic or client_secret_post`}},
		{"missing client_id", "providers:\n  - name: hydra\n    issuer: https://idp.example.com/\n    introspection:\n      url: https://idp.example.com/i\n", env,
			[]string{"providers[0].introspection.client_id: is required"}},
		{"no secret", introspectionYAML(""), envOf(),
			[]string{"providers[0].introspection.client_secret_file: is required, or the client secret in JWTAUTHZ_PROVIDERS_HYDRA_CLIENT_SECRET"}},
		{"secret file unreadable", introspectionYAML("      client_secret_file: /nonexistent/secret\n"), envOf(),
			[]string{"providers[0].introspection.client_secret_file: /nonexistent/secret cannot be read"}},
		{"secret file empty", introspectionYAML("      client_secret_file: " + empty + "\n"), envOf(),
			[]string{"providers[0].introspection.client_secret_file:", "is empty"}},
		{"file and variable", introspectionYAML("      client_secret_file: " + good + "\n"), env,
			[]string{"providers[0].introspection.client_secret_file: is given, and so is JWTAUTHZ_PROVIDERS_HYDRA_CLIENT_SECRET"}},
		{"variable empty", introspectionYAML(""), envOf("JWTAUTHZ_PROVIDERS_HYDRA_CLIENT_SECRET", ""),
			[]string{"set but empty"}},
		{"timeout 0", introspectionYAML("      timeout: 0s\n"), env, []string{"providers[0].introspection.timeout: must be positive"}},
		{"with a jwks_url", strings.Replace(introspectionYAML(""), "    audiences", "    jwks_url: https://idp.example.com/jwks\n    audiences", 1), env,
			[]string{"providers[0].introspection: is exclusive with jwks_url"}},
		{"introspect_jwts alone", "providers:\n  - name: a\n    issuer: https://a.example.com/\n    introspect_jwts: true\n", envOf(),
			[]string{"providers[0].introspect_jwts: needs introspection"}},
		{"unknown key", introspectionYAML("      client_secret: inline\n"), env, []string{"unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, []string{"--config", writeFile(t, tt.yaml)}, tt.env)
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

// --check-config shows an introspection provider's endpoint and client and
// where its secret comes from, never the secret.
func TestIntrospectionSummary(t *testing.T) {
	file := secretFile(t, "s3cret-value", 0o600)
	c, err := load(t, []string{"--config", writeFile(t, introspectionYAML("      client_secret_file: "+file+"\n    introspect_jwts: true\n"))}, envOf())
	if err != nil {
		t.Fatal(err)
	}
	s := c.Summary()
	var text, js strings.Builder
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"introspection", "https://idp.example.com/oauth2/introspect, client jwtauthz (client_secret_basic), secret from " + file + ", timeout 2s, answers without exp cached 1m0s, JWTs no JWT provider has too"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text summary lacks %q:\n%s", want, text.String())
		}
	}
	if !strings.Contains(js.String(), `"client_id": "jwtauthz"`) && !strings.Contains(js.String(), `"client_id":"jwtauthz"`) {
		t.Errorf("JSON summary lacks the client id:\n%s", js.String())
	}
	if strings.Contains(text.String()+js.String(), "s3cret-value") {
		t.Error("the summary shows the secret")
	}
	// The endpoint, not jwtauthz, checks an introspected token's signature.
	if strings.Contains(text.String(), "algorithms") || !strings.Contains(js.String(), `"algorithms": []`) {
		t.Errorf("an introspection provider's summary names algorithms:\n%s\n%s", text.String(), js.String())
	}
}

// A secret from the environment is not shown when a configuration is
// printed.
func TestIntrospectionSecretNotPrinted(t *testing.T) {
	c, err := load(t, []string{"--config", writeFile(t, introspectionYAML(""))}, envOf("JWTAUTHZ_PROVIDERS_HYDRA_CLIENT_SECRET", "s3cret-env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(form, c.Providers); strings.Contains(out, "s3cret-env") {
			t.Errorf("%s shows the secret: %s", form, out)
		}
	}
}
