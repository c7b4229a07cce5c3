package authz_test

import (
	"testing"

	"github.com/jwtauthz/jwtauthz/authz"
)

// TestManagedHeader: the engine answers from the running configuration,
// and a reload changes the answer.
func TestManagedHeader(t *testing.T) {
	var pc authz.ProviderConfig
	e := newEnv(t, nil, withConfig(func(_ *authz.Config, p *authz.ProviderConfig) {
		p.ClaimHeaders = map[string]string{"x-auth-user": "preferred_username"}
		pc = *p
	}))
	for _, tc := range []struct {
		name string
		want bool
	}{
		{name: "X-Auth-Subject", want: true},
		{name: "x-auth-issuer", want: true},
		{name: "X_Auth_User", want: true},
		{name: "X-Auth-Users", want: false},
		{name: "Authorization", want: false},
	} {
		if got := e.eng.ManagedHeader(tc.name); got != tc.want {
			t.Errorf("ManagedHeader(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	pc.ClaimHeaders = nil
	if err := e.eng.Update([]authz.ProviderConfig{pc}, nil); err != nil {
		t.Fatal(err)
	}
	if e.eng.ManagedHeader("X-Auth-User") {
		t.Error("after a reload without claim headers, X-Auth-User is still managed")
	}
}
