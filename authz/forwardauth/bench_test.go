package forwardauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/forwardauth"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
)

// BenchmarkForwardAuth is one forward-auth query whose token the cache
// holds, with a browser's headers (the shared CheckRequest's) and three
// claim headers configured: what the refusal of managed headers costs.
func BenchmarkForwardAuth(b *testing.B) {
	e := authztest.New(b, nil, authztest.RealClock(), func(_ *authz.Config, p *authz.ProviderConfig) {
		p.ClaimHeaders = map[string]string{"x-auth-user": "preferred_username", "x-auth-email": "email", "x-auth-org": "org_id"}
	})
	fa := forwardauth.New(e.Eng)
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
