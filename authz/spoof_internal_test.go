package authz

import (
	"encoding/json"
	"net/http"
	"os"
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
	for k, v := range browserHeaders(b) {
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

// browserHeaders are the headers of the shared realistic CheckRequest
// (testdata/checkrequest-browser.json), read without Envoy's types.
func browserHeaders(t testing.TB) map[string]string {
	b, err := os.ReadFile("../testdata/checkrequest-browser.json")
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		Attributes struct {
			Request struct {
				HTTP struct {
					Headers map[string]string `json:"headers"`
				} `json:"http"`
			} `json:"request"`
		} `json:"attributes"`
	}
	if err := json.Unmarshal(b, &req); err != nil || len(req.Attributes.Request.HTTP.Headers) == 0 {
		t.Fatalf("checkrequest-browser.json: %v", err)
	}
	return req.Attributes.Request.HTTP.Headers
}
