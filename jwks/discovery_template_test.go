package jwks

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// TestDiscoveryAtAnotherURL: with Config.Discovery, the document is read
// there (Entra ID's common tenant for the issuer template), and must still
// name Issuer: one that names another issuer gives no keys.
func TestDiscoveryAtAnotherURL(t *testing.T) {
	const tmpl = "https://idp.test/{tenantid}/v2.0"
	for _, tt := range []struct {
		name, docIssuer string
		wantReady       bool
	}{
		{name: "the document names the template", docIssuer: tmpl, wantReady: true},
		{name: "the document names its own URL", docIssuer: "https://idp.test/common/v2.0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				idp := issuer.New(tt.docIssuer, issuer.MustSigner("ES256"))
				var paths []string
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					paths = append(paths, r.URL.Path)
					idp.ServeHTTP(w, r)
				})
				s := New(Config{Name: "d", Issuer: tmpl, Discovery: "https://idp.test/common/v2.0/.well-known/openid-configuration",
					Client: &http.Client{Transport: handlerTransport{h}}, Refresh: time.Hour})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { s.Run(ctx); close(done) }()
				defer func() { cancel(); <-done }()
				time.Sleep(time.Minute)
				synctest.Wait()
				if s.Ready() != tt.wantReady || idp.DiscoveryRequests() == 0 {
					t.Fatalf("ready %v after %d discovery requests, want %v", s.Ready(), idp.DiscoveryRequests(), tt.wantReady)
				}
				if paths[0] != "/common/v2.0/.well-known/openid-configuration" {
					t.Errorf("asked %q first, want the common document", paths)
				}
			})
		})
	}
}
