package authz

import (
	"net/http"
	"strings"
	"testing"
)

func TestSameHeaderName(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{a: "X-Auth-User", b: "x-auth-user", want: true},
		{a: "X_AUTH_USER", b: "x-auth-user", want: true},
		{a: "x-auth-user", b: "x_auth_user", want: true},
		{a: "X-Auth-Users", b: "x-auth-user", want: false},
		{a: "X-Auth-Usr", b: "x-auth-user", want: false},
		{a: "X-Auth-User\u212a", b: "x-auth-userk", want: false}, // Kelvin sign: not ASCII
		{a: "X.Auth.User", b: "x-auth-user", want: false},
	} {
		if got := sameHeaderName(tc.a, tc.b); got != tc.want {
			t.Errorf("sameHeaderName(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// BenchmarkSpoofedHeader is the refusal's own cost per forward-auth query:
// a browser's headers against five managed names.
func BenchmarkSpoofedHeader(b *testing.B) {
	pol := &policy{managed: []string{HeaderSubject, HeaderIssuer, "x-auth-email", "x-auth-org", "x-auth-user"}}
	h := http.Header{}
	for k, v := range browserCheckRequest(b).Attributes.Request.Http.Headers {
		if !strings.HasPrefix(k, ":") {
			h.Set(k, v)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if pol.spoofedHeader(h) != "" {
			b.Fatal("spoofed")
		}
	}
}
