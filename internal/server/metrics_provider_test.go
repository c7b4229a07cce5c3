package server

import (
	"context"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// TestMetricsDenialsByProvider: a denial of a token whose iss names a
// configured provider counts under that provider's label; a token whose iss
// names none under provider=""; and /metrics holds no series a check cannot
// produce (an allow for expired, a named provider's no_token).
func TestMetricsDenialsByProvider(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	a := startApp(t, true, "--config", writeFile(t, "providers:\n  - name: keycloak\n    issuer: "+idp.URL+"\n    audiences: [api]\n"))
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	sign := func(claims jwt.MapClaims) string {
		c := jwt.MapClaims{"iss": idp.URL, "sub": "alice", "aud": "api", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range claims {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		tok, err := idp.Signing().Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, c := range []struct{ tok, want string }{
		{sign(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}), "expired"},
		{sign(jwt.MapClaims{"aud": nil}), "missing_claim"},
		{sign(jwt.MapClaims{"aud": "web"}), "wrong_audience"},
		{sign(jwt.MapClaims{"iss": "https://evil.example"}), "wrong_issuer"},
		{sign(nil), "ok"},
	} {
		resp, err := client.Check(context.Background(), checkReq(c.tok, "/x"))
		if err != nil || c.want != "ok" && resp.Status.Message != c.want {
			t.Fatalf("check, want %s: %v %v", c.want, resp, err)
		}
	}
	m := a.metrics
	for _, tt := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"deny", "expired", "keycloak"}, 1},
		{[]string{"deny", "missing_claim", "keycloak"}, 1},
		{[]string{"deny", "wrong_audience", "keycloak"}, 1},
		{[]string{"deny", "wrong_issuer", ""}, 1},
		{[]string{"allow", "ok", "keycloak"}, 1},
		{[]string{"deny", "expired", ""}, 0},
		{[]string{"deny", "missing_claim", ""}, 0},
		{[]string{"deny", "wrong_audience", ""}, 0},
	} {
		if got := testutil.ToFloat64(m.checks.WithLabelValues(tt.labels...)); got != tt.want {
			t.Errorf("jwtauthz_check_total%v = %v, want %v", tt.labels, got, tt.want)
		}
	}
	code, body, _ := get(t, a.adminURL()+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d", code)
	}
	for _, series := range []string{
		`jwtauthz_check_total{decision="allow",provider="keycloak",reason="expired"}`,
		`jwtauthz_check_total{decision="allow",provider="",reason="expired"}`,
		`jwtauthz_check_total{decision="allow",provider="",reason="ok"}`,
		`jwtauthz_check_total{decision="deny",provider="",reason="ok"}`,
		`jwtauthz_check_total{decision="deny",provider="keycloak",reason="no_token"}`,
		`jwtauthz_check_total{decision="allow",provider="keycloak",reason="public"}`,
	} {
		if strings.Contains(body, series) {
			t.Errorf("/metrics holds the impossible series %s", series)
		}
	}
	for _, series := range []string{
		`jwtauthz_check_total{decision="deny",provider="keycloak",reason="bad_signature"} 0`,
		`jwtauthz_check_total{decision="deny",provider="keycloak",reason="insufficient_scope"} 0`,
		`jwtauthz_check_total{decision="deny",provider="",reason="no_token"} 0`,
		`jwtauthz_check_total{decision="allow",provider="",reason="public"} 0`,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks the pre-created series %s", series)
		}
	}
}

// TestDenialDescriptionEscapedInHeader: a rule's configured claim value
// holding " and \ reaches the forward-auth WWW-Authenticate header escaped
// for its quoted-string, and the JSON body intact.
func TestDenialDescriptionEscapedInHeader(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	a := startApp(t, true, "--config", writeFile(t, "providers:\n  - name: keycloak\n    issuer: "+idp.URL+"\n"+
		"rules:\n  - match: {path_prefix: /org}\n    require:\n      claims: {org: 'ac\"me\\'}\n"))
	tok, _ := idp.Token("alice", time.Hour)
	resp := forwardAuth(t, a, "/org/x", [][2]string{{"Authorization", "Bearer " + tok}})
	want := `Bearer realm="jwtauthz", error="insufficient_scope", error_description="claim \"org\" must be \"ac\"me\\\""`
	if resp.StatusCode != 403 || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("status %d, WWW-Authenticate %q, want 403 and %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}
}
