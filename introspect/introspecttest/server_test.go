package introspecttest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/introspect/introspecttest"
)

// TestServerIsStrict sends the server requests a sloppy client might, each
// of which RFC 7662 or RFC 6749 refuses.
func TestServerIsStrict(t *testing.T) {
	s := introspecttest.New(t, introspecttest.Options{ClientID: "c", ClientSecret: "p w"})
	tok := s.Issue(nil)
	good := url.Values{"token": {tok}}
	tests := []struct {
		name   string
		method string
		path   string // after Path
		ctype  string
		body   string
		basic  [2]string // id, secret, as sent (already encoded)
		want   int
	}{
		{name: "good, basic", body: good.Encode(), basic: [2]string{"c", "p+w"}, want: 200},
		{name: "good, post", body: good.Encode() + "&client_id=c&client_secret=p+w", want: 200},
		{name: "GET", method: http.MethodGet, basic: [2]string{"c", "p+w"}, want: 405},
		{name: "no credentials", body: good.Encode(), want: 401},
		{name: "wrong secret", body: good.Encode(), basic: [2]string{"c", "p+x"}, want: 401},
		{name: "secret not form-encoded", body: good.Encode(), basic: [2]string{"c", "p%zz"}, want: 401},
		{name: "both methods", body: good.Encode() + "&client_id=c&client_secret=p+w", basic: [2]string{"c", "p+w"}, want: 400},
		{name: "no token", body: "token_type_hint=access_token", basic: [2]string{"c", "p+w"}, want: 400},
		{name: "token twice", body: good.Encode() + "&token=x", basic: [2]string{"c", "p+w"}, want: 400},
		{name: "token in the query", path: "?token=" + tok, basic: [2]string{"c", "p+w"}, want: 400},
		{name: "JSON body", ctype: "application/json", body: `{"token":"` + tok + `"}`, basic: [2]string{"c", "p+w"}, want: 400},
		{name: "unknown hint", body: good.Encode() + "&token_type_hint=id_token", basic: [2]string{"c", "p+w"}, want: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, s.Endpoint()+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			ctype := tt.ctype
			if ctype == "" {
				ctype = "application/x-www-form-urlencoded"
			}
			req.Header.Set("Content-Type", ctype)
			if tt.basic[0] != "" {
				req.SetBasicAuth(tt.basic[0], tt.basic[1])
			}
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without WWW-Authenticate: %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if s.Calls() != len(tests) {
		t.Errorf("%d calls counted, want %d", s.Calls(), len(tests))
	}
}
