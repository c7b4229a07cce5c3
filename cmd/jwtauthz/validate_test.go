package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/internal/testutil"
)

func TestTopLevelAudiencesNeedTheIssuer(t *testing.T) {
	pk := testutil.PublishableKey("pk_test_", "happy-cat-12.clerk.accounts.dev")
	providers := "providers:\n  - {name: a, issuer: https://a.example.com}\n"
	tests := []struct {
		name    string
		file    string
		args    []string
		env     []string
		wantErr string // "" for a valid config
	}{
		{name: "file audiences beside providers", file: providers + "audiences: [api]\n", wantErr: "audiences: applies to the provider of issuer, which is not set"},
		{name: "flag audience beside providers", file: providers, args: []string{"--audience", "api"}, wantErr: "--audience: applies to the provider of issuer"},
		{name: "env audience beside providers", file: providers, env: []string{"JWTAUTHZ_AUDIENCE", "api"}, wantErr: "JWTAUTHZ_AUDIENCE: applies to the provider of issuer"},
		{name: "Clerk preset", args: []string{"--clerk-publishable-key", pk, "--audience", "api"}, wantErr: "the Clerk preset checks no aud"},
		{name: "with the issuer", file: providers + "issuer: https://d.example.com\naudiences: [api]\n"},
		{name: "with the issuer and the Clerk preset", args: []string{"--issuer", "https://d.example.com", "--audience", "api", "--clerk-publishable-key", pk}},
		{name: "providers' own audiences", file: "providers:\n  - {name: a, issuer: https://a.example.com, audiences: [api]}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", testutil.WriteFile(t, tt.file))
			}
			checkConfig(t, args, tt.env, tt.wantErr)
		})
	}
}

func TestTopLevelAudiencesReachTheDefaultProviderOnly(t *testing.T) {
	file := testutil.WriteFile(t, "issuer: https://d.example.com\naudiences: [api]\nproviders:\n  - {name: a, issuer: https://a.example.com, audiences: [other]}\n")
	c, err := load(t, []string{"--config", file}, testutil.EnvOf())
	if err != nil {
		t.Fatal(err)
	}
	ps := c.AllProviders()
	if len(ps) != 2 || !slices.Equal(ps[0].Audiences, []string{"api"}) || !slices.Equal(ps[1].Audiences, []string{"other"}) {
		t.Fatalf("providers %+v", ps)
	}
}

func TestEmptyEnvironmentVariable(t *testing.T) {
	file := testutil.WriteFile(t, "issuer: https://a.example.com\nhttp_addr: 127.0.0.1:7002\n")
	tests := []struct {
		name    string
		env     []string
		check   func(c *config.Config) bool
		wantErr string
	}{
		{name: "empty http address disables the listener", env: []string{"JWTAUTHZ_HTTP_ADDR", ""}, check: func(c *config.Config) bool { return c.HTTPAddr == "" }},
		{name: "empty grpc address", env: []string{"JWTAUTHZ_GRPC_ADDR", ""}, check: func(c *config.Config) bool { return c.GRPCAddr == "" && c.HTTPAddr == "127.0.0.1:7002" }},
		{name: "empty admin address", env: []string{"JWTAUTHZ_ADMIN_ADDR", ""}, check: func(c *config.Config) bool { return c.AdminAddr == "" }},
		{name: "unset keeps the file's", env: nil, check: func(c *config.Config) bool { return c.HTTPAddr == "127.0.0.1:7002" && c.GRPCAddr == ":9001" }},
		{name: "empty duration", env: []string{"JWTAUTHZ_CLOCK_SKEW", ""}, wantErr: "JWTAUTHZ_CLOCK_SKEW: is set but empty"},
		{name: "empty number", env: []string{"JWTAUTHZ_CACHE_SIZE", ""}, wantErr: "JWTAUTHZ_CACHE_SIZE: is set but empty"},
		{name: "empty bool", env: []string{"JWTAUTHZ_PPROF", ""}, wantErr: "JWTAUTHZ_PPROF: is set but empty"},
		{name: "empty list", env: []string{"JWTAUTHZ_ALGORITHMS", ""}, wantErr: "JWTAUTHZ_ALGORITHMS: is set but empty"},
		{name: "empty audience would stop the aud check", env: []string{"JWTAUTHZ_AUDIENCE", ""}, wantErr: "JWTAUTHZ_AUDIENCE: is set but empty"},
		{name: "empty CA would drop mTLS", env: []string{"JWTAUTHZ_TLS_CLIENT_CA", ""}, wantErr: "JWTAUTHZ_TLS_CLIENT_CA: is set but empty"},
		{name: "empty log level", env: []string{"JWTAUTHZ_LOG_LEVEL", ""}, wantErr: "JWTAUTHZ_LOG_LEVEL: is set but empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, []string{"--config", file}, testutil.EnvOf(tt.env...))
			if testutil.CheckErr(t, err, tt.wantErr) {
				return
			}
			if !tt.check(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestEmptyEnvironmentAddressThroughRun(t *testing.T) {
	checkConfig(t, []string{"--issuer", "https://a.example.com"}, []string{"JWTAUTHZ_HTTP_ADDR", "", "JWTAUTHZ_CACHE_TTL", ""}, "JWTAUTHZ_CACHE_TTL: is set but empty")
}

func TestForwardTokenFalseWithAQuerySource(t *testing.T) {
	const query = "providers:\n  - {name: q, issuer: https://q.example.com, forward_token: false, token_sources: [{header: authorization, prefix: \"Bearer \"}, {query: access_token}]}\n"
	tests := []struct {
		name    string
		file    string
		args    []string
		wantErr string
	}{
		{name: "HTTP listener on by default", file: query, wantErr: "providers[0].forward_token: false cannot be honoured for token_sources[1] (query access_token) by the HTTP forward-auth listener"},
		{name: "HTTP listener from the file", file: query + "http_addr: 127.0.0.1:7002\n", wantErr: "disable http_addr"},
		{name: "HTTP listener off by flag", file: query, args: []string{"--http-addr", ""}},
		{name: "HTTP listener off in the file", file: query + "http_addr: \"\"\n"},
		{name: "forwarded query token", file: strings.Replace(query, "forward_token: false", "forward_token: true", 1)},
		{name: "header and cookie", file: "providers:\n  - {name: c, issuer: https://c.example.com, forward_token: false, token_sources: [{cookie: s}, {header: x-token}]}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkConfig(t, append([]string{"--config", testutil.WriteFile(t, tt.file)}, tt.args...), nil, tt.wantErr)
		})
	}
	t.Run("HTTP listener off by an empty variable", func(t *testing.T) {
		if _, err := load(t, []string{"--config", testutil.WriteFile(t, query)}, testutil.EnvOf("JWTAUTHZ_HTTP_ADDR", "")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestEmptyAudience(t *testing.T) {
	tests := []struct {
		name, file, wantErr string
	}{
		{name: "top level", file: "issuer: https://a.example.com\naudiences: [api, \"\"]\n", wantErr: "audiences[1]: must not be empty"},
		{name: "provider", file: "providers:\n  - {name: a, issuer: https://a.example.com, audiences: [\"\"]}\n", wantErr: "providers[0].audiences[0]: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, []string{"--config", testutil.WriteFile(t, tt.file)}, testutil.EnvOf())
			testutil.CheckErr(t, err, tt.wantErr)
		})
	}
}

// checkConfig runs serve --check-config with args and the variables env
// names, and wants exit 0, or exit 2 and wantErr in the output.
func checkConfig(t *testing.T, args, env []string, wantErr string) {
	t.Helper()
	var out bytes.Buffer
	code := run(context.Background(), append([]string{"serve", "--check-config"}, args...), testutil.EnvOf(env...), &out, &out)
	switch {
	case wantErr == "" && code != exitOK:
		t.Fatalf("exit %d: %s", code, out.String())
	case wantErr != "" && (code != exitUsage || !strings.Contains(out.String(), wantErr)):
		t.Fatalf("exit %d, output %q; want 2 and %q", code, out.String(), wantErr)
	}
}

func TestPathCaseCheckConfig(t *testing.T) {
	tests := []struct {
		name, pathCase, wantErr string
	}{
		{name: "insensitive", pathCase: "insensitive"},
		{name: "sensitive", pathCase: "sensitive"},
		{name: "empty: unset", pathCase: `""`},
		{name: "not a value", pathCase: "ignore", wantErr: `jwtauthz.yaml:3: path_case: "ignore" is not sensitive or insensitive`},
		{name: "a value in another case", pathCase: "Sensitive", wantErr: `jwtauthz.yaml:3: path_case: "Sensitive" is not sensitive or insensitive`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := "providers:\n  - {name: a, issuer: https://a.example.com, jwks_url: https://a.example.com/jwks}\npath_case: " + tt.pathCase + "\n"
			checkConfig(t, []string{"--config", testutil.WriteFile(t, cfg)}, nil, tt.wantErr)
		})
	}
}
