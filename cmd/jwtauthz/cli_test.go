package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	good := writeFile(t, "providers:\n  - {name: a, issuer: https://a.example.com}\nrules:\n  - {match: {path_prefix: /p}, action: allow}\n")
	badRule := writeFile(t, "providers:\n  - {name: a, issuer: https://a.example.com}\nrules:\n  - require: {providers: [b]}\n")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{name: "valid", args: []string{"serve", "--config", good, "--check-config"}, wantCode: 0, wantOut: "config ok"},
		{name: "a rule naming no provider", args: []string{"serve", "--config", badRule, "--check-config"}, wantCode: 1, wantOut: `no provider named "b"`},
		{name: "no provider at all", args: []string{"serve", "--check-config"}, wantCode: 1, wantOut: "no provider"},
		{name: "unknown flag", args: []string{"serve", "--nope"}, wantCode: 1, wantOut: "flag provided but not defined"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantOut: "unknown command"},
		{name: "version", args: []string{"version"}, wantCode: 0, wantOut: "jwtauthz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(context.Background(), tt.args, envOf(), &out, &out)
			if code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Fatalf("exit %d, output %q; want %d and %q", code, out.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}

// An empty config file at start: exit 1, and the message names the file
// (config's TestEmptyConfigIsRefused checks the error itself).
func TestEmptyConfigIsRefusedAtStart(t *testing.T) {
	path := writeFile(t, "")
	var out syncBuffer
	if code := run(context.Background(), []string{"serve", "--config", path, "--issuer", "https://issuer.example.com"}, envOf(), &out, &out); code != exitError || !strings.Contains(out.String(), path) {
		t.Fatalf("serve with an empty config file: exit %d, %q; want %d naming the file", code, out.String(), exitError)
	}
}
