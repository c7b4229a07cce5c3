package envoy

import "testing"

// TestHTTPServiceSendsManagedHeaders: envoy-http.yaml sends a client's
// x-auth-* headers to jwtauthz, which refuses (400) a request carrying one
// it sets, identity and claim headers alike, as behind nginx or Caddy.
func TestHTTPServiceSendsManagedHeaders(t *testing.T) {
	az := extAuthz(t, onlyHCM(t, load(t, "envoy-http.yaml")))
	for _, h := range []string{"X-Auth-Subject", "X-Auth-Issuer", "x-auth-user", "X-AUTH-EMAIL"} {
		if !matches(az.GetAllowedHeaders(), h) {
			t.Errorf("allowed_headers does not send a client's %s to jwtauthz", h)
		}
	}
}
