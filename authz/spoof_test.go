package authz_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
)

// BenchmarkForwardAuth is one forward-auth query whose token the cache
// holds, with a browser's headers (the shared CheckRequest's) and three
// claim headers configured: what the refusal of managed headers costs.
func BenchmarkForwardAuth(b *testing.B) {
	e := authztest.New(b, nil, authztest.RealClock(), func(_ *authz.Config, p *authz.ProviderConfig) {
		p.ClaimHeaders = map[string]string{"x-auth-user": "preferred_username", "x-auth-email": "email", "x-auth-org": "org_id"}
	})
	fa := authz.NewForwardAuth(e.Eng)
	hr := httptest.NewRequest(http.MethodGet, "/auth", nil)
	for k, v := range authztest.BrowserCheckRequest(b).Attributes.Request.Http.Headers {
		if !strings.HasPrefix(k, ":") {
			hr.Header.Set(k, v)
		}
	}
	hr.Header.Set("Authorization", e.Bearers(e.IdP.Signing(), 1)[0])
	hr.Header.Set("X-Forwarded-Uri", "/v1/things")
	hr.Header.Set("X-Forwarded-Method", "GET")
	rec := httptest.NewRecorder()
	if fa.ServeHTTP(rec, hr); rec.Code != http.StatusOK {
		b.Fatalf("status %d", rec.Code)
	}
	b.ReportAllocs()
	for b.Loop() {
		fa.ServeHTTP(httptest.NewRecorder(), hr)
	}
}

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
