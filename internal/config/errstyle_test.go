package config

import (
	"strings"
	"testing"
	"time"
)

// TestErrorStyleOverSources gives each bad value by flag, by variable and
// in the file, and wants one error in one style whatever the source:
// `<where>: <key>: <problem> (e.g. <a good value>)`, where a flag or a
// variable names the key itself, and the file says its path and line. The
// problem and the example are the same for all three.
func TestErrorStyleOverSources(t *testing.T) {
	tests := []struct {
		name    string
		flag    string // the setting, by its flag's name
		value   string // as a flag or variable gives it
		yaml    string // as the file gives it, if not value (unquoted)
		problem string
		example string // "": none
	}{
		{name: "not a duration", flag: "cache-ttl", value: "5 minutes", problem: `"5 minutes" is not a duration`, example: "5m"},
		{name: "a duration without a unit", flag: "clock-skew", value: "300", problem: `"300" is not a duration`, example: "30s"},
		{name: "not a whole number", flag: "cache-size", value: "lots", problem: `"lots" is not a whole number`, example: "100000"},
		{name: "a fraction", flag: "max-token-size", value: "8192.5", problem: `"8192.5" is not a whole number`, example: "8192"},
		{name: "not a switch", flag: "pprof", value: "maybe", problem: `"maybe" is not true or false`, example: "true"},
		{name: "zero where 0 means nothing", flag: "jwks-timeout", value: "0s", problem: "must be > 0, got 0s", example: "5s"},
		{name: "negative", flag: "cache-size", value: "-1", problem: "must not be negative, got -1; 0 means no token cache, every check verifies its token", example: "100000"},
		{name: "not a URL", flag: "issuer", value: "auth.example.com", problem: `"auth.example.com" is not an http(s) URL`, example: "https://auth.example.com/"},
		{name: "not host:port", flag: "grpc-addr", value: "9001", problem: `"9001" is not host:port`, example: ":9001"},
		{name: "an algorithm refused", flag: "algorithms", value: "RS256,HS256", yaml: "[RS256, HS256]", problem: `"HS256" is not allowed (allowed: RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA)`},
		{name: "a choice", flag: "log-level", value: "loud", problem: `"loud" is not one of debug, info, warn, error`},
	}
	for _, tt := range tests {
		s := settingNamed(t, tt.flag)
		yamlValue := tt.yaml
		if yamlValue == "" {
			yamlValue = tt.value // plain: 300 is an int, 8192.5 a float to YAML
		}
		suffix := ""
		if tt.example != "" {
			suffix = " (e.g. " + tt.example + ")"
		}
		file := writeFile(t, "log_format: json\n"+s.key()+": "+yamlValue+"\n")
		for _, src := range []struct {
			name string
			args []string
			env  []string
			want string
		}{
			{name: "flag", args: []string{"--" + tt.flag + "=" + tt.value}, want: "--" + tt.flag + ": " + tt.problem + suffix},
			{name: "env", env: []string{s.env(), tt.value}, want: s.env() + ": " + tt.problem + suffix},
			{name: "file", args: []string{"--config", file}, want: file + ":2: " + s.key() + ": " + tt.problem + suffix},
		} {
			t.Run(tt.name+"/"+src.name, func(t *testing.T) {
				_, err := load(t, src.args, envOf(src.env...))
				if err == nil || err.Error() != src.want {
					t.Fatalf("err = %v\nwant  %s", err, src.want)
				}
			})
		}
	}
}

// TestFileErrorsGiveTheLine: every error about the file's content names
// the file and the line of the key, the checks of a value's meaning (the
// URL, the algorithms, a rule's pattern) as much as those of its type; a
// key the file leaves out is found at the entry that lacks it.
func TestFileErrorsGiveTheLine(t *testing.T) {
	const provider = "providers:\n  - name: a\n    issuer: https://a.example.com\n"
	tests := []struct {
		name  string
		file  string
		args  []string
		check bool   // run Check (rules and what authz checks), not Load alone
		want  string // after "<file>:"
	}{
		{name: "algorithm", file: "log_level: info\nproviders:\n  - name: a\n    issuer: https://a.example.com\n    algorithms: [RS256, HS256]\n",
			want: `5: providers[0].algorithms: "HS256" is not allowed (allowed: RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA)`},
		{name: "issuer URL", file: "providers:\n  - name: a\n    issuer: a.example.com\n",
			want: `3: providers[0].issuer: "a.example.com" is not an http(s) URL (e.g. https://auth.example.com/)`},
		{name: "issuer missing", file: "providers:\n  - name: a\n  - name: b\n    jwks_url: https://b.example.com/keys\n",
			want: "2: providers[0].issuer: is required (e.g. https://auth.example.com/)"},
		{name: "flow mapping", file: "providers:\n  - {name: a, issuer: https://a.example.com, jwks_url: https://a.example.com/k, jwks_file: /k}\n",
			want: "2: providers[0].jwks_file: is exclusive with jwks_url"},
		{name: "token source", file: provider + "    token_sources:\n      - header: x-token\n      - {header: x, cookie: y}\n",
			want: "6: providers[0].token_sources[1]: set exactly one of header, cookie, query (e.g. {header: authorization, prefix: \"Bearer \"})"},
		{name: "claim header", file: provider + "    claim_headers:\n      \"x auth\": email\n",
			want: `4: providers[0].claim_headers: "x auth" is not a header name (e.g. {x-auth-email: email})`},
		{name: "empty audience", file: "issuer: https://a.example.com\naudiences:\n  - api\n  - \"\"\n",
			want: "4: audiences[1]: must not be empty (leave audiences out to not check aud)"},
		{name: "path_case", file: provider + "path_case: ignore\n",
			want: `4: path_case: "ignore" is not sensitive or insensitive (leave path_case out when the upstream's way is not known)`},
		{name: "a switch in YAML's other spelling", file: provider + "pprof: yes\n",
			want: `4: pprof: "yes" is not true or false (e.g. true)`},
		{name: "a list where text goes", file: provider + "log_level: [info]\n",
			want: "4: log_level: must be text, not a list (e.g. info)"},
		{name: "text where a list goes", file: "issuer: https://a.example.com\naudiences: api\n",
			want: `2: audiences: "api" is not a list (e.g. [https://api.example.com])`},
		{name: "a mapping in claim_headers", file: provider + "    claim_headers:\n      x-auth-org:\n        id: org\n",
			want: "6: providers[0].claim_headers.x-auth-org: must be text, not a mapping"},
		{name: "an alias to a bad value", file: "issuer: https://a.example.com\nlog_level: &v 5 minutes\ncache_ttl: *v\n", want: `3: cache_ttl: "5 minutes" is not a duration (e.g. 5m)`},
		{name: "a URL's password is not shown", file: "providers:\n  - name: a\n    issuer: https://a.example.com\n    jwks_url: ftp://user:pw-s3cret@a.example.com/k\n",
			want: `4: providers[0].jwks_url: "ftp://user:xxxxx@a.example.com/k" is not an http(s) URL (e.g. https://auth.example.com/.well-known/jwks.json)`},
		{name: "unknown key", file: provider + "    jwks_ur: https://a.example.com/k\n",
			want: "4: providers[0].jwks_ur: unknown key; did you mean jwks_url?"},
		{name: "syntax", file: provider + "  - name: b\n issuer: x\n",
			want: "4: did not find expected key"},
		{name: "path_regex shows the pattern as written", check: true,
			file: provider + "rules:\n  - match: {path_prefix: /public/}\n    action: allow\n  - match:\n      path_regex: /api/(v1\n",
			want: "8: rules[1].match.path_regex: \"/api/(v1\": error parsing regexp: missing closing ): `/api/(v1` (e.g. /api/v[0-9]+/.*)"},
		{name: "rule naming no provider", check: true,
			file: provider + "rules:\n  - require: {providers: [b]}\n",
			want: `5: rules[0].require.providers: no provider named "b"`},
		{name: "rule action", check: true,
			file: provider + "rules:\n  - match: {path: /}\n    action: maybe\n",
			want: `6: rules[0].action: "maybe" is not one of require, optional, optional_or_failed, allow`},
		{name: "issuer twice, after the flag's provider", check: true, args: []string{"--issuer", "https://a.example.com"},
			file: "log_level: info\n" + provider,
			want: `3: providers[0]: issuer "https://a.example.com" is also provider "default"'s`},
		{name: "claim header the engine refuses", check: true,
			file: provider + "    claim_headers: {X-Auth-Subject: email}\n",
			want: `2: providers[0]: provider "a": header "x-auth-subject" would be set twice`},
		{name: "no provider", check: true, file: "log_level: info\n",
			want: " no provider: set --issuer (or JWTAUTHZ_ISSUER), or list providers in the config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file)
			c, err := load(t, append([]string{"--config", path}, tt.args...), envOf())
			if tt.check && err == nil {
				err = c.Check()
			}
			if want := path + ":" + tt.want; err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v\nwant  %s", err, want)
			}
		})
	}
}

// TestErrorsFromTheCommandLine: a check of a value's meaning, or of
// settings together, names the flag or variable that gave it.
func TestErrorsFromTheCommandLine(t *testing.T) {
	pk := publishableKey("pk_test_", "happy-cat-12.clerk.accounts.dev")
	tests := []struct {
		name  string
		args  []string
		env   []string
		check bool
		want  string
	}{
		{name: "jwks_url without an issuer", env: []string{"JWTAUTHZ_JWKS_URL", "https://a.example.com/keys"}, want: "JWTAUTHZ_JWKS_URL: needs issuer"},
		{name: "tls_key alone", args: []string{"--issuer", "https://a.example.com", "--tls-key", "/k.pem"}, want: "--tls-key: needs tls_cert: tls_cert and tls_key go together"},
		{name: "a Clerk variable", env: []string{"CLERK_PUBLISHABLE_KEY", "sk_test_abc"}, want: `CLERK_PUBLISHABLE_KEY: a publishable key is "pk_test_" or "pk_live_" followed by the base64 of the Frontend API host and "$": the prefix is missing (e.g. pk_live_Y2xlcmsuZXhhbXBsZS5jb20k)`},
		{name: "the Clerk preset's issuer is a file provider's", check: true, args: []string{"--issuer", "https://a.example.com", "--clerk-publishable-key", pk, "--config", writeFile(t, "providers:\n  - {name: b, issuer: \"https://happy-cat-12.clerk.accounts.dev\", jwks_url: \"https://b.example.com/k\"}\n")},
			want: `--clerk-publishable-key: issuer "https://happy-cat-12.clerk.accounts.dev" is also provider "b"'s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, envOf(tt.env...))
			if tt.check && err == nil {
				err = c.Check()
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v\nwant  %s", err, tt.want)
			}
		})
	}
}

func settingNamed(t *testing.T, name string) setting {
	t.Helper()
	for _, s := range settings {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("no setting --%s", name)
	return setting{}
}

// TestEverySettingHasAGoodExample: each setting's errors show an example
// (one per setting, whatever the source), and it is a value the setting
// takes.
func TestEverySettingHasAGoodExample(t *testing.T) {
	for _, s := range settings {
		t.Run(s.name, func(t *testing.T) {
			if s.eg == "" {
				t.Fatalf("--%s has no example", s.name)
			}
			if err := applyAll(Defaults(), s, []string{s.eg}); err != nil {
				t.Fatalf("--%s=%s: %v", s.name, s.eg, err)
			}
		})
	}
}

// TestAliases: a YAML alias gives a setting the value it names, read as
// that setting's own.
func TestAliases(t *testing.T) {
	c, err := load(t, []string{"--config", writeFile(t, "issuer: https://a.example.com\nclock_skew: &d 45s\ncache_ttl: *d\n")}, envOf())
	if err != nil || c.CacheTTL != 45*time.Second || c.ClockSkew != 45*time.Second {
		t.Fatalf("err %v, config %+v; want cache_ttl and clock_skew 45s", err, c)
	}
}
