package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
)

// TestExitCodes: 0 ok, 1 a runtime failure, 2 a usage or configuration
// error, the same for every command.
func TestExitCodes(t *testing.T) {
	good := testutil.WriteFile(t, "providers:\n  - {name: a, issuer: https://a.example.com}\nrules:\n  - {match: {path_prefix: /p}, action: allow}\n")
	badRule := testutil.WriteFile(t, "providers:\n  - {name: a, issuer: https://a.example.com}\nrules:\n  - require: {providers: [b]}\n")
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	taken := listenLoopback(t) // held: a listener on it cannot be opened
	down := listenLoopback(t)
	downAddr := down.Addr().String()
	down.Close() // nothing listens: connections are refused
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	// Loopback ports of the system's choosing, so that a start gets as
	// far as the configuration allows.
	ports := []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}
	tests := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		wantOut  string
	}{
		{name: "no command", args: nil, wantCode: exitUsage, wantOut: "Usage:"},
		{name: "unknown command", args: []string{"bogus"}, wantCode: exitUsage, wantOut: `unknown command "bogus"`},
		{name: "help", args: []string{"help"}, wantCode: exitOK, wantOut: "Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error."},
		{name: "version", args: []string{"version"}, wantCode: exitOK, wantOut: "version "},
		{name: "version with an argument", args: []string{"version", "--short"}, wantCode: exitUsage, wantOut: `unexpected argument "--short"`},

		{name: "serve -h", args: []string{"serve", "-h"}, wantCode: exitOK, wantOut: "-check-config"},
		{name: "serve, unknown flag", args: []string{"serve", "--bogus-flag"}, wantCode: exitUsage, wantOut: "flag provided but not defined: -bogus-flag"},
		{name: "serve, extra argument", args: []string{"serve", "--issuer", "https://a.example.com", "extra"}, wantCode: exitUsage, wantOut: `unexpected argument "extra"`},
		{name: "dev, bad flag value", args: []string{"dev", "--cache-ttl", "5x"}, wantCode: exitUsage, wantOut: `--cache-ttl: "5x" is not a duration`},
		{name: "serve, bad variable", args: []string{"serve", "--issuer", "https://a.example.com"}, env: []string{"JWTAUTHZ_CACHE_TTL", "5x"}, wantCode: exitUsage, wantOut: "JWTAUTHZ_CACHE_TTL"},
		{name: "serve, config file missing", args: []string{"serve", "--config", missing}, wantCode: exitUsage, wantOut: missing},

		{name: "--check-config, valid", args: []string{"serve", "--config", good, "--check-config"}, wantCode: exitOK, wantOut: "config ok"},
		{name: "--check-config, a rule naming no provider", args: []string{"serve", "--config", badRule, "--check-config"}, wantCode: exitUsage, wantOut: `no provider named "b"`},
		{name: "--check-config, no provider at all", args: []string{"serve", "--check-config"}, wantCode: exitUsage, wantOut: "no provider"},
		{name: "--check-config, config file missing", args: []string{"serve", "--config", missing, "--check-config"}, wantCode: exitUsage, wantOut: missing},

		// At start, what server.New finds wrong with the configuration.
		{name: "serve, a rule naming no provider", args: append([]string{"serve", "--config", badRule}, ports...), wantCode: exitUsage, wantOut: `no provider named "b"`},
		{name: "serve, no provider at all", args: append([]string{"serve"}, ports...), wantCode: exitUsage, wantOut: "no provider"},
		{name: "serve, TLS files missing", args: append([]string{"serve", "--issuer", "https://a.example.com", "--tls-cert", missing, "--tls-key", missing}, ports...), wantCode: exitUsage, wantOut: "tls_cert/tls_key"},
		{name: "dev, admin listener disabled", args: []string{"dev", "--admin-addr", "", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, wantCode: exitUsage, wantOut: "admin_addr must not be empty"},
		// A listener that cannot be opened is the host's failure.
		{name: "serve, admin address taken", args: []string{"serve", "--issuer", "https://a.example.com", "--admin-addr", taken.Addr().String()}, wantCode: exitError, wantOut: "address already in use"},

		{name: "healthcheck -h", args: []string{"healthcheck", "-h"}, wantCode: exitOK, wantOut: "-admin-addr"},
		{name: "healthcheck, config file missing", args: []string{"healthcheck", "--config", missing}, wantCode: exitUsage, wantOut: missing},
		{name: "healthcheck, JWTAUTHZ_CONFIG missing", env: []string{"JWTAUTHZ_CONFIG", missing}, args: []string{"healthcheck", "--admin-addr", downAddr}, wantCode: exitUsage, wantOut: missing},
		{name: "healthcheck, unknown flag", args: []string{"healthcheck", "--bogus-flag"}, wantCode: exitUsage, wantOut: "flag provided but not defined"},
		{name: "healthcheck, extra argument", args: []string{"healthcheck", "--admin-addr", downAddr, "extra"}, wantCode: exitUsage, wantOut: `unexpected argument "extra"`},
		{name: "healthcheck, zero timeout", args: []string{"healthcheck", "--admin-addr", downAddr, "--timeout", "0s"}, wantCode: exitUsage, wantOut: "--timeout: must be positive"},
		{name: "healthcheck, empty --admin-addr", args: []string{"healthcheck", "--admin-addr", ""}, wantCode: exitUsage, wantOut: "--admin-addr: is empty"},
		{name: "healthcheck, empty JWTAUTHZ_ADMIN_ADDR", env: []string{"JWTAUTHZ_ADMIN_ADDR", ""}, args: []string{"healthcheck"}, wantCode: exitUsage, wantOut: "JWTAUTHZ_ADMIN_ADDR: is empty"},
		{name: "healthcheck, address no host:port", args: []string{"healthcheck", "--admin-addr", "localhost"}, wantCode: exitUsage, wantOut: `"localhost" is not host:port`},
		{name: "healthcheck, server down", args: []string{"healthcheck", "--admin-addr", downAddr}, wantCode: exitError, wantOut: "connection refused"},
		{name: "healthcheck, server not ready", args: []string{"healthcheck", "--admin-addr", strings.TrimPrefix(notReady.URL, "http://")}, wantCode: exitError, wantOut: "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out testutil.SyncBuffer
			code := run(context.Background(), tt.args, testutil.EnvOf(tt.env...), &out, &out)
			if code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Fatalf("exit %d, output %q; want %d and %q", code, out.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}

// listenLoopback holds a TCP listener on a loopback port until the test ends.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// An empty config file at start: exit 2, and the message names the file
// (config's TestEmptyConfigIsRefused checks the error itself).
func TestEmptyConfigIsRefusedAtStart(t *testing.T) {
	path := testutil.WriteFile(t, "")
	var out testutil.SyncBuffer
	if code := run(context.Background(), []string{"serve", "--config", path, "--issuer", "https://issuer.example.com"}, testutil.EnvOf(), &out, &out); code != exitUsage || !strings.Contains(out.String(), path) {
		t.Fatalf("serve with an empty config file: exit %d, %q; want %d naming the file", code, out.String(), exitUsage)
	}
}
