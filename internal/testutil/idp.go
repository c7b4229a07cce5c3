package testutil

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// HangingIdP is an IdP on loopback (an ES256 issuer.Issuer) whose JWKS
// endpoint, once Hang is set, answers nothing until the client gives up,
// and sends on Hung (while it has room) as each such request arrives.
type HangingIdP struct {
	*issuer.Issuer
	// Hang makes requests for the JWKS hang while it is true.
	Hang atomic.Bool
	// Hung receives once for each JWKS request that hangs (up to 64
	// unreceived).
	Hung chan struct{}
}

// NewHangingIdP starts a HangingIdP, not hanging yet, and stops it when
// the test ends.
func NewHangingIdP(t testing.TB) *HangingIdP {
	t.Helper()
	p := &HangingIdP{Issuer: issuer.New("", issuer.MustSigner("ES256")), Hung: make(chan struct{}, 64)}
	hs := httptest.NewUnstartedServer(p)
	p.URL = "http://" + hs.Listener.Addr().String()
	hs.Start()
	t.Cleanup(hs.Close)
	return p
}

// ServeHTTP serves the issuer's endpoints, hanging on the JWKS if Hang is
// set.
func (p *HangingIdP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.Hang.Load() && strings.HasSuffix(r.URL.Path, "/jwks.json") {
		select {
		case p.Hung <- struct{}{}:
		default:
		}
		<-r.Context().Done()
		return
	}
	p.Issuer.ServeHTTP(w, r)
}
