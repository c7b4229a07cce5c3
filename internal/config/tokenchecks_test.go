package config

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/authz"
)

const entraTemplate = "https://login.microsoftonline.com/{tenantid}/v2.0"

// TestTokenCheckKeysErrors: every bad form of the token check keys is an
// error naming the key, at its line (a key the file leaves out: at the
// entry), from Load alone; --check-config (Check) says the same.
func TestTokenCheckKeysErrors(t *testing.T) {
	const head = "providers:\n  - name: a\n    issuer: https://a.example.com\n" // the key after it is on line 4
	const tmpl = "providers:\n  - name: e\n    issuer: " + entraTemplate + "\n"
	tests := []struct {
		name string
		file string
		want string // after "<file>:"
	}{
		{name: "negative max_lifetime", file: head + "    max_lifetime: -1h\n",
			want: "4: providers[0].max_lifetime: must not be negative, got -1h0m0s; 0 or leaving it out does not check the lifetime"},
		{name: "max_lifetime without a unit", file: head + "    max_lifetime: 86400\n",
			want: `4: providers[0].max_lifetime: "86400" is not a duration (e.g. 24h)`},
		{name: "max_lifetime not a duration", file: head + "    max_lifetime: a day\n",
			want: `4: providers[0].max_lifetime: "a day" is not a duration (e.g. 24h)`},
		{name: "required_typ not a media type", file: head + "    required_typ: at jwt\n",
			want: `4: providers[0].required_typ: "at jwt" is not a media type such as at+jwt (e.g. at+jwt)`},
		{name: "required_typ a list", file: head + "    required_typ: [at+jwt]\n",
			want: "4: providers[0].required_typ: must be text, not a list (e.g. at+jwt)"},
		{name: "subjects empty", file: head + "    subjects: {}\n",
			want: "4: providers[0].subjects: names no subject: set exact, prefix or regex (leave subjects out to not check sub)"},
		{name: "subjects with no value", file: head + "    subjects:\n",
			want: "4: providers[0].subjects: names no subject"},
		{name: "subjects regex", file: head + "    subjects:\n      prefix: [user_]\n      regex: 'user_(\\d+'\n",
			want: "6: providers[0].subjects.regex: \"user_(\\\\d+\": error parsing regexp: missing closing ): `user_(\\d+` (e.g. user_[0-9]+)"},
		{name: "subjects regex empty", file: head + "    subjects: {prefix: [a], regex: ''}\n",
			want: `4: providers[0].subjects.regex: "": must not be empty (e.g. user_[0-9]+)`},
		{name: "subjects empty exact", file: head + "    subjects:\n      exact:\n        - alice\n        - ''\n",
			want: "7: providers[0].subjects.exact[1]: must not be empty"},
		{name: "subjects empty prefix", file: head + "    subjects: {prefix: ['']}\n",
			want: "4: providers[0].subjects.prefix[0]: must not be empty"},
		{name: "subjects unknown key", file: head + "    subjects: {exakt: [alice]}\n",
			want: "4: providers[0].subjects.exakt: unknown key; did you mean exact?"},
		{name: "subjects a list", file: head + "    subjects: [alice]\n",
			want: "4: providers[0].subjects: must be a mapping, not a list (e.g. {exact: [alice], prefix: [user_], regex: \"svc-[a-z]+\"})"},
		{name: "template without tenants", file: tmpl,
			want: "2: providers[0].tenants: is required with an issuer template: the tenant ids to accept"},
		{name: "tenants without template", file: head + "    tenants: [a]\n",
			want: "4: providers[0].tenants: goes with an issuer template: an issuer with {tenantid} as a path segment"},
		{name: "placeholder in the host", file: "providers:\n  - name: e\n    issuer: https://{tenantid}.example.com/\n    tenants: [a]\n",
			want: `3: providers[0].issuer: "https://{tenantid}.example.com/": {tenantid} must be a whole segment of the path`},
		{name: "placeholder in a segment", file: "providers:\n  - name: e\n    issuer: https://login.example.com/t{tenantid}/v2.0\n    tenants: [a]\n",
			want: `3: providers[0].issuer: "https://login.example.com/t{tenantid}/v2.0": {tenantid} must be a whole segment of the path`},
		{name: "another placeholder", file: "providers:\n  - name: e\n    issuer: https://login.example.com/{tenant}/v2.0\n    tenants: [a]\n",
			want: `3: providers[0].issuer: "https://login.example.com/{tenant}/v2.0": the only placeholder is {tenantid}, once`},
		{name: "tenant not a plain token", file: tmpl + "    tenants:\n      - 11111111-2222-3333-4444-555555555555\n      - a/b\n",
			want: `6: providers[0].tenants[1]: "a/b" is not a tenant id`},
		{name: "tenant listed twice", file: tmpl + "    tenants: [a, a]\n",
			want: `4: providers[0].tenants[1]: "a" is listed twice`},
		{name: "star among tenants", file: tmpl + "    tenants: [a, '*']\n",
			want: `4: providers[0].tenants[1]: "*" accepts every tenant: write tenants: "*" alone`},
		{name: "tenants some other string", file: tmpl + "    tenants: all\n",
			want: `4: providers[0].tenants: "all" is not a list (e.g. [11111111-2222-3333-4444-555555555555], or "*")`},
		{name: "an introspection provider", file: "providers:\n  - name: hydra\n    issuer: https://idp.example.com/\n    subjects: {exact: [a]}\n" +
			"    introspection: {url: https://idp.example.com/introspect, client_id: jwtauthz, client_secret_file: " + secretFile(t, "s3cret-of-32-bytes-at-the-least!", 0o600) + "}\n",
			want: "4: providers[0].subjects: checks JWTs verified with the provider's keys: an introspection provider's tokens are the endpoint's to judge"},
		{name: "template as --issuer", file: "issuer: " + entraTemplate + "\n",
			want: `1: issuer: "` + entraTemplate + `" is an issuer template: write it in a providers entry, with its tenants`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file)
			_, err := load(t, []string{"--config", path}, envOf())
			if want := path + ":" + tt.want; err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v\nwant  %s", err, want)
			}
		})
	}
}

// TestTokenCheckIssuerConflict: a listed tenant's issuer that another
// provider has is refused by --check-config at the entry.
func TestTokenCheckIssuerConflict(t *testing.T) {
	path := writeFile(t, "providers:\n  - name: one\n    issuer: https://login.microsoftonline.com/a/v2.0\n"+
		"  - name: e\n    issuer: "+entraTemplate+"\n    tenants: [b, a]\n")
	c, err := load(t, []string{"--config", path}, envOf())
	if err != nil {
		t.Fatal(err)
	}
	want := path + `:4: providers[1]: issuer "https://login.microsoftonline.com/a/v2.0" (tenant "a") is also provider "one"'s`
	if err := c.Check(); err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
}

// tokenCheckFile sets every token check key.
const tokenCheckFile = `providers:
  - name: entra
    issuer: ` + entraTemplate + `
    tenants: "*"
    audiences: [api]
  - name: listed
    issuer: https://login.example.com/{tenantid}/v2.0
    jwks_url: https://login.example.com/common/discovery/v2.0/keys
    tenants: [11111111-2222-3333-4444-555555555555, contoso]
    required_typ: application/at+jwt
    max_lifetime: 24h
    subjects:
      exact: [alice]
      prefix: ["user_", "svc:"]
      regex: "[0-9a-f]{8}"
  - name: plain
    issuer: https://plain.example.com
`

// TestTokenCheckKeys: the keys reach the engine's provider as written;
// tenants take a list, "*" or ["*"]; the checks build.
func TestTokenCheckKeys(t *testing.T) {
	c, err := load(t, []string{"--config", writeFile(t, tokenCheckFile)}, envOf())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	ps := c.EngineConfig(map[string]authz.KeySource{}).Providers
	if e := ps[0]; e.Issuer != entraTemplate || !slices.Equal(e.Tenants, []string{"*"}) || e.RequiredTyp != "" || e.MaxLifetime != 0 || !e.Subjects.IsZero() {
		t.Errorf("entra %+v", e)
	}
	l := ps[1]
	if !slices.Equal(l.Tenants, []string{"11111111-2222-3333-4444-555555555555", "contoso"}) || l.RequiredTyp != "application/at+jwt" || l.MaxLifetime != 24*time.Hour ||
		!slices.Equal(l.Subjects.Exact, []string{"alice"}) || !slices.Equal(l.Subjects.Prefix, []string{"user_", "svc:"}) || l.Subjects.Regex != "[0-9a-f]{8}" {
		t.Errorf("listed %+v", l)
	}
	if p := ps[2]; p.Tenants != nil || p.RequiredTyp != "" || p.MaxLifetime != 0 || !p.Subjects.IsZero() {
		t.Errorf("plain %+v", p)
	}
	c, err = load(t, []string{"--config", writeFile(t, "providers:\n  - {name: e, issuer: \""+entraTemplate+"\", tenants: ['*']}\n")}, envOf())
	if err != nil || !slices.Equal(c.Providers[0].Tenants, []string{"*"}) || c.Check() != nil {
		t.Fatalf("[\"*\"]: %v %+v", err, c)
	}
	// The template's keys are discovered at its "common" tenant.
	jc := c.JWKSConfig(c.Providers[0], nil, nil, nil)
	if jc.Issuer != entraTemplate || jc.Discovery != "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration" {
		t.Errorf("jwks config: issuer %q discovery %q", jc.Issuer, jc.Discovery)
	}
}

// TestTokenCheckSummary: --check-config shows each token check that is
// set, in text and JSON, and nothing for a provider that sets none.
func TestTokenCheckSummary(t *testing.T) {
	c, err := load(t, []string{"--config", writeFile(t, tokenCheckFile)}, envOf())
	if err != nil {
		t.Fatal(err)
	}
	s := c.Summary()
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(text.String(), "\n") {
		got = append(got, strings.Join(strings.Fields(l), " "))
	}
	for _, want := range []string{
		"issuer " + entraTemplate,
		"tenants any (every tenant of the IdP, which anyone can create: only audiences and rules restrict them)",
		"keys discovery https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration",
		"tenants 11111111-2222-3333-4444-555555555555, contoso",
		"required typ application/at+jwt",
		"max lifetime 24h0m0s (exp - iat, or exp - now without iat)",
		"subjects exactly alice; or starting with user_, svc:; or matching [0-9a-f]{8}",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no line %q in:\n%s", want, text.String())
		}
	}
	plain := text.String()[strings.Index(text.String(), "provider plain"):]
	plain = plain[:strings.Index(plain, "rules")]
	for _, not := range []string{"tenants", "typ", "lifetime", "subjects"} {
		if strings.Contains(plain, not) {
			t.Errorf("plain shows %q:\n%s", not, plain)
		}
	}
	var js bytes.Buffer
	if err := s.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Providers []map[string]json.RawMessage `json:"providers"`
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	l := out.Providers[1]
	for k, want := range map[string]string{
		"tenants": `["11111111-2222-3333-4444-555555555555","contoso"]`, "required_typ": `"application/at+jwt"`, "max_lifetime": `"24h0m0s"`,
		"subjects": `{"exact":["alice"],"prefix":["user_","svc:"],"regex":"[0-9a-f]{8}"}`,
	} {
		if got := compact(t, l[k]); got != want {
			t.Errorf("listed %s = %s, want %s", k, got, want)
		}
	}
	if compact(t, out.Providers[0]["tenants"]) != `["*"]` {
		t.Errorf("entra tenants = %s", out.Providers[0]["tenants"])
	}
	for _, k := range []string{"tenants", "required_typ", "max_lifetime", "subjects"} {
		if _, ok := out.Providers[2][k]; ok {
			t.Errorf("plain has %s", k)
		}
	}
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return b.String()
}
