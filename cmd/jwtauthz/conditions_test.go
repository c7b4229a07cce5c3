package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
)

// TestCheckConfigConditions: --check-config refuses a rule's CEL condition
// (match.when, require.when) that does not compile, is not a bool, reads
// what its place does not have, or may cost too much, naming the file's
// line, the rule's key and the column in the expression; and accepts good
// ones.
func TestCheckConfigConditions(t *testing.T) {
	const head = "providers:\n  - name: a\n    issuer: https://a.example.com\nrules:\n  - match: {path: /healthz}\n    action: allow\n"
	tests := []struct {
		name  string
		rules string
		want  string // after the file's path; "" for a configuration that is fine
	}{
		{name: "fine", rules: "  - match: {path_prefix: /api/, when: 'request.method != \"DELETE\"'}\n    require:\n      when: 'claims.org == \"acme\" || \"admin\" in scopes'\n"},
		{name: "a block scalar", rules: "  - require:\n      when: >-\n        claims.org == \"acme\"\n        && request.path.startsWith(\"/api/\")\n"},
		{name: "syntax error", rules: "  - require:\n      when: 'claims.org =='\n",
			want: ":8: rules[1].require.when: condition: column 14: Syntax error: mismatched input '<EOF>'"},
		{name: "not a bool", rules: "  - require:\n      when: 'claims.org'\n",
			want: ":8: rules[1].require.when: condition: dyn is not a bool (compare it: == true, != \"\")"},
		{name: "unknown variable", rules: "  - require:\n      when: 'claim.org == \"acme\"'\n",
			want: ":8: rules[1].require.when: condition: column 1: undeclared reference to 'claim'"},
		{name: "wrong type", rules: "  - require:\n      when: 'request.method == 1'\n",
			want: ":8: rules[1].require.when: condition: column 16: found no matching overload for '_==_' applied to '(string, int)'"},
		{name: "claims in match.when", rules: "  - match:\n      path_prefix: /api/\n      when: 'claims.org == \"acme\"'\n",
			want: ":9: rules[1].match.when: condition: column 1: claims is not available in match.when"},
		{name: "over the cost limit", rules: "  - require:\n      when: 'request.query.all(k, request.query.all(j, request.query[k] == request.query[j]))'\n",
			want: ":8: rules[1].require.when: condition: may cost up to"},
		{name: "on an allow rule", rules: "  - action: allow\n    require:\n      when: 'true'\n",
			want: ":7: rules[1]: action allow takes no require"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testutil.WriteFile(t, head+tt.rules)
			var out, errs bytes.Buffer
			code := run(context.Background(), []string{"serve", "--config", path, "--check-config"}, testutil.EnvOf(), &out, &errs)
			if tt.want == "" {
				// The summary shows each condition, on one line.
				if code != exitOK || !strings.HasPrefix(out.String(), "config ok") || !strings.Contains(out.String(), "; when ") {
					t.Fatalf("exit %d: %s%s", code, out.String(), errs.String())
				}
				return
			}
			if code != exitUsage || !strings.Contains(errs.String(), path+tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errs.String(), exitUsage, path+tt.want)
			}
		})
	}
}
