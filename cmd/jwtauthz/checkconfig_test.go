package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
)

// checkConfigFile is a configuration with each kind of key source, rule
// and listener, and secrets that --check-config must not print.
const checkConfigFile = `http_addr: ""
cache_ttl: 2m
negative_cache_size: 0
path_case: sensitive
providers:
  - name: auth0
    issuer: https://example.us.auth0.com/
    audiences: [https://api.example.com]
    claim_headers: {x-auth-email: email}
    payload_header: x-auth-payload
  - name: internal
    issuer: https://idp.internal.example.com
    jwks_url: https://user:pw-s3cret@idp.internal.example.com/keys?api_key=q-s3cret
    jwks_headers: {X-Api-Key: h-s3cret}
    token_sources: [{cookie: session}, {header: x-token}]
    forward_token: false
    authorized_parties: [https://app.example.com]
  - name: files
    issuer: https://files.example.com
    jwks_file: /etc/jwtauthz/files-jwks.json
    algorithms: [ES256]
rules:
  - match: {path_prefix: /healthz}
    action: allow
  - match: {hosts: [api.example.com], path_regex: "/orders/[0-9]+", methods: [GET]}
    require: {providers: [auth0], scopes: ["read:orders"], claims: {org: acme}}
  - match: {path: /public}
    action: optional
`

// secrets are values of checkConfigFile and its environment that no output
// may show.
var secrets = []string{"pw-s3cret", "q-s3cret", "h-s3cret", "sk_test_s3cret"}

func runCheckConfig(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errs bytes.Buffer
	args = append([]string{"serve", "--config", testutil.WriteFile(t, checkConfigFile), "--check-config"}, args...)
	code = run(context.Background(), args, testutil.EnvOf("CLERK_SECRET_KEY", "sk_test_s3cret"), &out, &errs)
	for _, s := range secrets {
		if strings.Contains(out.String()+errs.String(), s) {
			t.Errorf("%v prints the secret %q:\n%s%s", args, s, out.String(), errs.String())
		}
	}
	return code, out.String(), errs.String()
}

// TestCheckConfigText: on success --check-config prints, after `config ok`
// on the first line, what it resolved: listeners, providers with where
// their keys come from, the rules in order with what each requires, the
// caches.
func TestCheckConfigText(t *testing.T) {
	code, out, errs := runCheckConfig(t)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(out, "\n")
	if lines[0] != "config ok" {
		t.Fatalf("first line %q, want config ok", lines[0])
	}
	fields := func(l string) string { return strings.Join(strings.Fields(l), " ") } // alignment aside
	var got []string
	for _, l := range lines {
		got = append(got, fields(l))
	}
	for _, want := range []string{
		"grpc :9001", "http off", "admin :9003",
		"provider auth0", "issuer https://example.us.auth0.com/",
		"keys discovery https://example.us.auth0.com/.well-known/openid-configuration",
		"audiences https://api.example.com", `token sources header authorization "Bearer "`,
		"claim headers x-auth-email: email", "payload header x-auth-payload",
		"provider internal", "keys url https://user:xxxxx@idp.internal.example.com/keys?api_key=xxxxx (headers X-Api-Key)",
		"audiences not checked", "token sources cookie session; header x-token", "forward token no: removed before the request goes upstream",
		"authorized parties https://app.example.com",
		"provider files", "keys file /etc/jwtauthz/files-jwks.json", "algorithms ES256",
		"provider clerk", "issuer any (the key set is the instance's alone)", "keys url https://api.clerk.com/v1/jwks (headers Authorization)",
		"0 path_prefix /healthz allow, no token read",
		"1 hosts api.example.com; methods GET; path_regex /orders/[0-9]+ require a token from auth0; scopes read:orders; claims org=acme",
		"2 path /public optional: none, or a valid one from auth0, internal, files, clerk",
		"- any other request require a token from any provider",
		"tokens 100000 entries, 2m0s each at most", "rejected tokens off", "max token size 8192 bytes",
		"path_case sensitive", "network_wait 500ms",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no line %q in:\n%s", want, out)
		}
	}
}

// TestCheckConfigJSON: -o json (or --output json) prints the same as one
// JSON object of a stable shape, and nothing else.
func TestCheckConfigJSON(t *testing.T) {
	type listener struct {
		Address string `json:"address"`
		TLS     string `json:"tls"`
	}
	type tokenSource struct{ Header, Prefix, Cookie, Query string }
	type provider struct {
		Name      string `json:"name"`
		Issuer    string `json:"issuer"`
		AnyIssuer bool   `json:"any_issuer"`
		Keys      struct {
			Source   string   `json:"source"`
			Location string   `json:"location"`
			Headers  []string `json:"headers"`
		} `json:"keys"`
		Audiences         []string          `json:"audiences"`
		Algorithms        []string          `json:"algorithms"`
		ClaimHeaders      map[string]string `json:"claim_headers"`
		PayloadHeader     string            `json:"payload_header"`
		TokenSources      []tokenSource     `json:"token_sources"`
		ForwardToken      bool              `json:"forward_token"`
		AuthorizedParties []string          `json:"authorized_parties"`
		Metadata          bool              `json:"metadata"`
		MetadataClaims    []string          `json:"metadata_claims"`
	}
	type rule struct {
		Index int `json:"index"`
		Match struct {
			Hosts      []string `json:"hosts"`
			Methods    []string `json:"methods"`
			Path       string   `json:"path"`
			PathPrefix string   `json:"path_prefix"`
			PathRegex  string   `json:"path_regex"`
		} `json:"match"`
		Action   string `json:"action"`
		Requires struct {
			Providers []string          `json:"providers"`
			Scopes    []string          `json:"scopes"`
			Claims    map[string]string `json:"claims"`
		} `json:"requires"`
	}
	var s struct {
		File      string `json:"file"`
		Listeners struct {
			GRPC  *listener `json:"grpc"`
			HTTP  *listener `json:"http"`
			Admin *listener `json:"admin"`
		} `json:"listeners"`
		Providers []provider `json:"providers"`
		Rules     []rule     `json:"rules"`
		Cache     struct {
			TokenTTL     string `json:"token_ttl"`
			TokenSize    int    `json:"token_size"`
			NegativeTTL  string `json:"negative_ttl"`
			NegativeSize int    `json:"negative_size"`
			DedupWindow  string `json:"dedup_window"`
			DedupSize    int    `json:"dedup_size"`
			MaxTokenSize int    `json:"max_token_size"`
		} `json:"cache"`
		PathCase      string `json:"path_case"`
		CORSPreflight string `json:"cors_preflight"`
		NetworkWait   string `json:"network_wait"`
		ClockSkew     string `json:"clock_skew"`
		SharedCache   *struct {
			URL     string `json:"url"`
			KeyFile string `json:"key_file"`
			Keys    int    `json:"keys"`
			Timeout string `json:"timeout"`
		} `json:"shared_cache"`
	}
	for _, flag := range [][]string{{"-o", "json"}, {"--output", "json"}, {"--output=json"}} {
		t.Run(strings.Join(flag, " "), func(t *testing.T) {
			code, out, errs := runCheckConfig(t, flag...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errs)
			}
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&s); err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			if dec.More() {
				t.Fatalf("more than one JSON value:\n%s", out)
			}
			if s.Listeners.GRPC == nil || *s.Listeners.GRPC != (listener{":9001", "off"}) || s.Listeners.HTTP != nil || s.Listeners.Admin == nil || s.Listeners.Admin.Address != ":9003" {
				t.Errorf("listeners %+v", s.Listeners)
			}
			names := []string{}
			for _, p := range s.Providers {
				names = append(names, p.Name+" "+p.Keys.Source+" "+p.Keys.Location)
			}
			if want := []string{
				"auth0 discovery https://example.us.auth0.com/.well-known/openid-configuration",
				"internal url https://user:xxxxx@idp.internal.example.com/keys?api_key=xxxxx",
				"files file /etc/jwtauthz/files-jwks.json",
				"clerk url https://api.clerk.com/v1/jwks",
			}; !slices.Equal(names, want) {
				t.Fatalf("providers %q, want %q", names, want)
			}
			a, in, c := s.Providers[0], s.Providers[1], s.Providers[3]
			if !slices.Equal(a.Audiences, []string{"https://api.example.com"}) || a.ClaimHeaders["x-auth-email"] != "email" || a.PayloadHeader != "x-auth-payload" ||
				len(a.TokenSources) != 1 || a.TokenSources[0] != (tokenSource{Header: "authorization", Prefix: "Bearer "}) || !a.ForwardToken || len(a.Algorithms) != 10 {
				t.Errorf("auth0 %+v", a)
			}
			if !slices.Equal(in.Keys.Headers, []string{"X-Api-Key"}) || in.ForwardToken || !slices.Equal(in.AuthorizedParties, []string{"https://app.example.com"}) ||
				len(in.TokenSources) != 2 || in.TokenSources[0].Cookie != "session" || in.TokenSources[1].Header != "x-token" {
				t.Errorf("internal %+v", in)
			}
			if !slices.Equal(s.Providers[2].Algorithms, []string{"ES256"}) {
				t.Errorf("files %+v", s.Providers[2])
			}
			if !c.AnyIssuer || c.Issuer != "" || !slices.Equal(c.Keys.Headers, []string{"Authorization"}) {
				t.Errorf("clerk %+v", c)
			}
			if len(s.Rules) != 3 {
				t.Fatalf("rules %+v", s.Rules)
			}
			r0, r1, r2 := s.Rules[0], s.Rules[1], s.Rules[2]
			if r0.Index != 0 || r0.Action != "allow" || r0.Match.PathPrefix != "/healthz" || len(r0.Requires.Providers) != 0 {
				t.Errorf("rules[0] %+v", r0)
			}
			if r1.Index != 1 || r1.Action != "require" || r1.Match.PathRegex != "/orders/[0-9]+" || !slices.Equal(r1.Match.Hosts, []string{"api.example.com"}) || !slices.Equal(r1.Match.Methods, []string{"GET"}) ||
				!slices.Equal(r1.Requires.Providers, []string{"auth0"}) || !slices.Equal(r1.Requires.Scopes, []string{"read:orders"}) || r1.Requires.Claims["org"] != "acme" {
				t.Errorf("rules[1] %+v", r1)
			}
			if r2.Action != "optional" || r2.Match.Path != "/public" || !slices.Equal(r2.Requires.Providers, []string{"auth0", "internal", "files", "clerk"}) {
				t.Errorf("rules[2] %+v", r2)
			}
			if s.Cache.TokenTTL != "2m0s" || s.Cache.TokenSize != 100000 || s.Cache.NegativeSize != 0 || s.Cache.NegativeTTL != "0s" || s.Cache.DedupSize == 0 || s.Cache.MaxTokenSize != 8192 {
				t.Errorf("cache %+v", s.Cache)
			}
			if s.CORSPreflight != "off" {
				t.Errorf("cors_preflight %q, want off", s.CORSPreflight)
			}
			if s.PathCase != "sensitive" || s.NetworkWait != "500ms" || s.ClockSkew != "1m0s" || !strings.HasSuffix(s.File, "jwtauthz.yaml") || s.SharedCache != nil {
				t.Errorf("path_case %q, network_wait %q, clock_skew %q, file %q, shared_cache %+v", s.PathCase, s.NetworkWait, s.ClockSkew, s.File, s.SharedCache)
			}
		})
	}
}

// TestCheckConfigOutputFlag: -o takes json or text, and goes with
// --check-config; anything else is refused (a usage error), and an invalid
// configuration prints no summary in either format.
func TestCheckConfigOutputFlag(t *testing.T) {
	bad := testutil.WriteFile(t, "providers:\n  - {name: a, issuer: https://a.example.com, algorithms: [HS256]}\n")
	tests := []struct {
		name    string
		args    []string
		wantOK  bool
		wantOut string // in stdout
		wantErr string // in stderr
	}{
		{name: "text", args: []string{"--check-config", "-o", "text"}, wantOK: true, wantOut: "config ok\n"},
		{name: "yaml", args: []string{"--check-config", "-o", "yaml"}, wantErr: `"yaml" is not text or json`},
		{name: "empty", args: []string{"--check-config", "--output="}, wantErr: `"" is not text or json`},
		{name: "without --check-config", args: []string{"-o", "json"}, wantErr: "--output: goes with --check-config"},
		{name: "invalid config, json", args: []string{"--check-config", "-o", "json", "--config", bad}, wantErr: `providers[0].algorithms: "HS256" is not allowed`},
		{name: "invalid config, text", args: []string{"--check-config", "--config", bad}, wantErr: `providers[0].algorithms: "HS256" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := run(context.Background(), append([]string{"serve", "--issuer", "https://d.example.com"}, tt.args...), testutil.EnvOf(), &out, &errs)
			switch {
			case tt.wantOK && code != exitOK, !tt.wantOK && code == exitOK:
				t.Fatalf("exit %d (want ok: %v): %s%s", code, tt.wantOK, out.String(), errs.String())
			case !strings.Contains(out.String(), tt.wantOut) || !strings.Contains(errs.String(), tt.wantErr):
				t.Fatalf("stdout %q, stderr %q; want %q and %q", out.String(), errs.String(), tt.wantOut, tt.wantErr)
			case !tt.wantOK && out.Len() > 0:
				t.Fatalf("stdout %q on an error", out.String())
			}
		})
	}
}

// TestStartErrorsGiveTheLine: at start, what the engine refuses of the
// file names the file and line too, as --check-config does.
func TestStartErrorsGiveTheLine(t *testing.T) {
	ports := []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}
	tests := []struct {
		name, file, want string // want follows the file's path
	}{
		{name: "path_regex", file: "providers:\n  - name: a\n    issuer: https://a.example.com\nrules:\n  - match: {path_regex: \"/api/(v1\"}\n",
			want: ":5: rules[0].match.path_regex: \"/api/(v1\": error parsing regexp: missing closing ): `/api/(v1` (e.g. /api/v[0-9]+/.*)"},
		{name: "claim header", file: "log_level: info\nproviders:\n  - name: a\n    issuer: https://a.example.com\n    claim_headers: {authorization: sub}\n",
			want: `:3: providers[0]: provider "a": header "authorization" is the request's own`},
		{name: "no provider", file: "log_level: info\n", want: ": no provider"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testutil.WriteFile(t, tt.file)
			for _, check := range []bool{true, false} {
				args := append([]string{"serve", "--config", path}, ports...)
				if check {
					args = append(args, "--check-config")
				}
				var out testutil.SyncBuffer
				code := run(context.Background(), args, testutil.EnvOf(), &out, &out)
				if code == exitOK || !strings.Contains(out.String(), path+tt.want) {
					t.Fatalf("%v: exit %d, output %q; want an error with %q", args, code, out.String(), path+tt.want)
				}
			}
		})
	}
}
