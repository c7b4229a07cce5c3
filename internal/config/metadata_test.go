package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/authz"
)

// metadata_claims and metadata reach the engine's provider, and the
// summary shows them; a bad form is an error naming the entry and the
// line.
func TestMetadataKeys(t *testing.T) {
	const provider = "providers:\n  - name: a\n    issuer: https://a.example.com\n"
	tests := []struct {
		name       string
		file       string
		wantClaims []string
		wantOff    bool
		wantText   string // a line of the --check-config summary
		wantErr    string // after "<file>:"
	}{
		{name: "not set", file: provider},
		{name: "claims", file: provider + "    metadata_claims: [org, o.id, tier]\n", wantClaims: []string{"org", "o.id", "tier"},
			wantText: "sub, iss, provider, org, o.id, tier"},
		{name: "metadata true", file: provider + "    metadata: true\n    metadata_claims: [org]\n", wantClaims: []string{"org"}, wantText: "sub, iss, provider, org"},
		{name: "metadata false", file: provider + "    metadata: false\n", wantOff: true, wantText: "off: no dynamic metadata"},
		{name: "a claim of the defaults", file: provider + "    metadata_claims: [org, sub]\n",
			wantErr: `4: providers[0].metadata_claims[1]: "sub" is always sent (sub, iss, provider, reason): name another claim`},
		{name: "an empty part", file: provider + "    metadata_claims: [o..id]\n",
			wantErr: `4: providers[0].metadata_claims[0]: "o..id" is not a claim name or dotted path (e.g. o.id)`},
		{name: "empty", file: provider + "    metadata_claims: [\"\"]\n",
			wantErr: `4: providers[0].metadata_claims[0]: "" is not a claim name or dotted path (e.g. o.id)`},
		{name: "a control character", file: provider + "    metadata_claims: [\"a\\tb\"]\n",
			wantErr: `4: providers[0].metadata_claims[0]: "a\tb" is not a claim name or dotted path (e.g. o.id)`},
		{name: "twice", file: provider + "    metadata_claims: [org, org]\n",
			wantErr: `4: providers[0].metadata_claims[1]: "org" is named twice`},
		{name: "claims with metadata off", file: provider + "    metadata: false\n    metadata_claims: [org]\n",
			wantErr: `4: providers[0].metadata: is false, so metadata_claims would not be sent: remove one of them`},
		{name: "not a list", file: provider + "    metadata_claims: org\n",
			wantErr: `4: providers[0].metadata_claims: "org" is not a list (e.g. [org, tier])`},
		{name: "not a switch", file: provider + "    metadata: maybe\n",
			wantErr: `4: providers[0].metadata: "maybe" is not true or false (e.g. false)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file)
			c, err := load(t, []string{"--config", path}, envOf())
			if err == nil {
				err = c.Check()
			}
			if tt.wantErr != "" {
				if want := path + ":" + tt.wantErr; err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("err = %v\nwant  %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := c.EngineConfig(map[string]authz.KeySource{}).Providers[0]
			if !slices.Equal(p.MetadataClaims, tt.wantClaims) || p.NoMetadata != tt.wantOff {
				t.Fatalf("claims %q, off %v; want %q, %v", p.MetadataClaims, p.NoMetadata, tt.wantClaims, tt.wantOff)
			}
			s := c.Summary()
			if sp := s.Providers[0]; sp.Metadata == tt.wantOff || !slices.Equal(sp.MetadataClaims, append([]string{}, tt.wantClaims...)) {
				t.Fatalf("summary metadata %v %q", sp.Metadata, sp.MetadataClaims)
			}
			var b strings.Builder
			if err := s.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			text := b.String()
			if tt.wantText != "" && !strings.Contains(text, tt.wantText) {
				t.Fatalf("summary:\n%s\nwant a line %q", text, tt.wantText)
			}
			if tt.wantText == "" && strings.Contains(text, "metadata") {
				t.Fatalf("summary:\n%s\nsays metadata", text)
			}
		})
	}
}
