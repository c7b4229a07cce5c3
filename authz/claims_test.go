package authz

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestScopes: a scope string is split at U+0020 alone (RFC 6749 §3.3); an
// array holds one scope per element.
func TestScopes(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    []string
	}{
		{name: "space-separated", payload: `{"scope":"read admin"}`, want: []string{"read", "admin"}},
		{name: "spaces in a row and around", payload: `{"scope":"  read   admin "}`, want: []string{"read", "admin"}},
		{name: "no-break space", payload: `{"scope":"read\u00a0admin"}`, want: []string{"read\u00a0admin"}},
		{name: "tab", payload: `{"scope":"read\tadmin"}`, want: []string{"read\tadmin"}},
		{name: "line feed", payload: `{"scope":"read\nadmin"}`, want: []string{"read\nadmin"}},
		{name: "em space", payload: `{"scope":"read\u2003admin"}`, want: []string{"read\u2003admin"}},
		{name: "next line (NEL)", payload: `{"scope":"read\u0085admin"}`, want: []string{"read\u0085admin"}},
		{name: "ideographic space", payload: `{"scope":"read\u3000admin"}`, want: []string{"read\u3000admin"}},
		{name: "scp array (Okta)", payload: `{"scp":["orders:read","admin"]}`, want: []string{"orders:read", "admin"}},
		{name: "scp array element with a space", payload: `{"scp":["orders:read admin"]}`, want: []string{"orders:read admin"}},
		{name: "scope array element with a space", payload: `{"scope":["read admin"]}`, want: []string{"read admin"}},
		{name: "scp string (Entra ID)", payload: `{"scp":"User.Read admin"}`, want: []string{"User.Read", "admin"}},
		{name: "both claims", payload: `{"scope":"a","scp":["b"]}`, want: []string{"a", "b"}},
		{name: "empty string", payload: `{"scope":""}`, want: nil},
		{name: "null", payload: `{"scope":null}`, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tt.payload), &m); err != nil {
				t.Fatal(err)
			}
			got, err := scopes(m)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("scopes(%s) = %q, %v; want %q", tt.payload, got, err, tt.want)
			}
		})
	}
}

// TestClaimValuesAreWhole: a claim requirement matches a string claim, or
// an element of an array claim, whole, as scopes match array elements.
func TestClaimValuesAreWhole(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []string
	}{
		{name: "string with a space", raw: `"x admin"`, want: []string{"x admin"}},
		{name: "string with a no-break space", raw: `"x\u00a0admin"`, want: []string{"x\u00a0admin"}},
		{name: "array element with a space", raw: `["x admin","y"]`, want: []string{"x admin", "y"}},
	}
	for _, tt := range tests {
		if got := claimValues(json.RawMessage(tt.raw)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: claimValues(%s) = %q, want %q", tt.name, tt.raw, got, tt.want)
		}
	}
}
