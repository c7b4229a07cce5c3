package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
)

// TestCheckConfigRefusesBadActions: --check-config refuses a misspelt rule
// action and a cors_preflight that is not allow or off, naming the key,
// its line, and the values it takes.
func TestCheckConfigRefusesBadActions(t *testing.T) {
	const provider = "providers:\n  - {name: a, issuer: https://a.example.com}\n"
	tests := []struct {
		name string
		args []string
		env  []string
		file string
		want string
	}{
		{name: "action misspelt", file: provider + "rules:\n  - match: {path_prefix: /feed/}\n    action: optional_or_faild\n",
			want: `:5: rules[0].action: "optional_or_faild" is not one of require, optional, optional_or_failed, allow`},
		{name: "cors_preflight yes", file: "cors_preflight: yes\n" + provider,
			want: `:1: cors_preflight: "yes" is not allow or off`},
		{name: "cors_preflight true", file: "cors_preflight: true\n" + provider,
			want: `:1: cors_preflight: "true" is not allow or off`},
		{name: "--cors-preflight on", file: provider, args: []string{"--cors-preflight", "on"},
			want: `--cors-preflight: "on" is not allow or off`},
		{name: "JWTAUTHZ_CORS_PREFLIGHT Allow", file: provider, env: []string{"JWTAUTHZ_CORS_PREFLIGHT", "Allow"},
			want: `JWTAUTHZ_CORS_PREFLIGHT: "Allow" is not allow or off`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			args := append([]string{"serve", "--check-config", "--config", testutil.WriteFile(t, tt.file)}, tt.args...)
			code := run(context.Background(), args, testutil.EnvOf(tt.env...), &out, &errs)
			if code == 0 || !strings.Contains(errs.String(), tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant an error with %s", code, errs.String(), tt.want)
			}
		})
	}
	for _, v := range []string{"allow", "off"} {
		var out, errs bytes.Buffer
		code := run(context.Background(), []string{"serve", "--check-config", "--config", testutil.WriteFile(t, "cors_preflight: "+v+"\n"+provider+"rules:\n  - {action: optional_or_failed}\n")}, testutil.EnvOf(), &out, &errs)
		if code != 0 {
			t.Errorf("cors_preflight: %s with an optional_or_failed rule: exit %d, %s", v, code, errs.String())
		}
		for _, want := range []string{"optional_or_failed: any, identity headers only for a valid one from a", "cors_preflight " + v} {
			if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), want) {
				t.Errorf("--check-config output lacks %q:\n%s", want, out.String())
			}
		}
	}
}
