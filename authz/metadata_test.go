package authz

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCheckMetadataClaim(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claim  string
		wantOK bool
		form   bool // refused as not a name or path (errMetadataClaim)
	}{
		{name: "name", claim: "org", wantOK: true},
		{name: "dotted path", claim: "o.rol", wantOK: true},
		{name: "unicode", claim: "rôle", wantOK: true},
		{name: "a default", claim: "sub"},
		{name: "reason", claim: "reason"},
		{name: "empty", claim: "", form: true},
		{name: "leading dot", claim: ".org", form: true},
		{name: "trailing dot", claim: "org.", form: true},
		{name: "two dots", claim: "o..rol", form: true},
		{name: "control character", claim: "o\nrol", form: true},
		{name: "not UTF-8", claim: "o\xff", form: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckMetadataClaim(tc.claim)
			if (err == nil) != tc.wantOK || errors.Is(err, errMetadataClaim) != tc.form {
				t.Fatalf("CheckMetadataClaim(%q) = %v", tc.claim, err)
			}
		})
	}
}

func TestNewProviderMetadata(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     ProviderConfig
		wantNil bool
		wantErr string
		claims  []string
	}{
		{name: "default", cfg: ProviderConfig{Name: "p"}},
		{name: "claims sorted", cfg: ProviderConfig{Name: "p", MetadataClaims: []string{"tier", "org"}}, claims: []string{"org", "tier"}},
		{name: "off", cfg: ProviderConfig{Name: "p", NoMetadata: true}, wantNil: true},
		{name: "off with claims", cfg: ProviderConfig{Name: "p", NoMetadata: true, MetadataClaims: []string{"org"}}, wantErr: "metadata is off"},
		{name: "twice", cfg: ProviderConfig{Name: "p", MetadataClaims: []string{"org", "org"}}, wantErr: "named twice"},
		{name: "a default", cfg: ProviderConfig{Name: "p", MetadataClaims: []string{"iss"}}, wantErr: "always sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pm, err := newProviderMetadata(&tc.cfg)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			case tc.wantNil:
				if pm != nil {
					t.Fatal("metadata made for a provider without")
				}
				return
			}
			if !reflect.DeepEqual(pm.claims, tc.claims) || pm.allow.Provider != "p" || pm.deny[ReasonExpired].Reason != "expired" || pm.deny[ReasonOK] != nil {
				t.Fatalf("%+v", pm)
			}
		})
	}
}

// forClaims keeps each claim's JSON type, leaves out what is absent, too
// large or too deep, and makes nothing when the token carries none.
func TestMetadataForClaims(t *testing.T) {
	pm, err := newProviderMetadata(&ProviderConfig{Name: "p", MetadataClaims: []string{"org", "n", "o.id", "list", "big", "deep", "absent"}})
	if err != nil {
		t.Fatal(err)
	}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	all := map[string]json.RawMessage{
		"org": raw(`"acme"`), "n": raw(`1.5`), "o": raw(`{"id":"o_1"}`), "list": raw(`["a",1,true,null]`),
		"big":  raw(`"` + strings.Repeat("b", MaxMetadataClaimSize) + `"`),
		"deep": raw(strings.Repeat("[", MaxMetadataDepth+1) + strings.Repeat("]", MaxMetadataDepth+1)),
	}
	m := pm.forClaims(all)
	want := []MetadataClaim{{"list", []any{"a", 1.0, true, nil}}, {"n", 1.5}, {"o.id", "o_1"}, {"org", "acme"}}
	if m.Provider != "p" || m.Reason != "" || !reflect.DeepEqual(m.Claims, want) {
		t.Fatalf("%+v, want claims %v", m, want)
	}
	if none := pm.forClaims(map[string]json.RawMessage{"other": raw(`1`)}); none != pm.allow {
		t.Fatal("a token without metadata claims got metadata of its own")
	}
}

func TestMetadataDepth(t *testing.T) {
	for raw, want := range map[string]int{
		`1`: 0, `"[{"`: 0, `[]`: 1, `[[1],{"a":[2]}]`: 3, `{"a":"]]]"}`: 1, `["\"[",[]]`: 2, `"\\"`: 0,
	} {
		if got := depth([]byte(raw)); got != want {
			t.Errorf("depth(%s) = %d, want %d", raw, got, want)
		}
	}
}

// Each decision gets the metadata of its kind, prepared once: the same
// pointer for every denial of one reason and provider.
func TestWithMetadata(t *testing.T) {
	pol := &policy{}
	for _, cfg := range []ProviderConfig{{Name: "on"}, {Name: "off", NoMetadata: true}} {
		pm, err := newProviderMetadata(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		pol.providers = append(pol.providers, &provider{name: cfg.Name, meta: pm})
	}
	on := pol.providers[0].meta
	g := &Grant{p: pol.providers[0]}
	for _, tc := range []struct {
		name string
		d    Decision
		want *Metadata
	}{
		{name: "allow", d: Decision{Allow: true, grant: g}, want: on.allow},
		{name: "allow, metadata off", d: Decision{Allow: true, grant: &Grant{p: pol.providers[1]}}},
		{name: "public", d: Decision{Allow: true, Reason: ReasonPublic}, want: reasonMetadata[ReasonPublic]},
		{name: "denial", d: Decision{Reason: ReasonExpired, Provider: "on"}, want: on.deny[ReasonExpired]},
		{name: "denial, metadata off", d: Decision{Reason: ReasonExpired, Provider: "off"}},
		{name: "denial, no provider", d: deny(ReasonNoToken), want: reasonMetadata[ReasonNoToken]},
		{name: "denial, unknown provider", d: Decision{Reason: ReasonExpired, Provider: "gone"}, want: reasonMetadata[ReasonExpired]},
		{name: "out of range", d: Decision{Reason: numReasons}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d
			pol.withMetadata(&d)
			if d.Metadata != tc.want {
				t.Fatalf("metadata %+v, want %+v", d.Metadata, tc.want)
			}
		})
	}
}
