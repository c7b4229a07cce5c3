//go:build unix

package server

import (
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// TestConfigReplacedByAFIFO: a config file replaced by a FIFO that no one
// writes (a plain read would wait forever) neither stops the watcher nor
// changes the running configuration: the change is refused, saying what
// the file is, and the next poll is taken.
func TestConfigReplacedByAFIFO(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	path := writeFile(t, fullRules)
	a, tick := startAppPolled(t, "--issuer", idp.URL, "--config", path)
	const (
		pending  = "config change pending: applied once the file reads the same at the next poll"
		rejected = "config reload rejected; the running configuration stays"
	)
	pollOnce(t, a, tick, func() {
		fifo := path + ".fifo"
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(fifo, path); err != nil {
			t.Fatal(err)
		}
	}, pending)
	pollOnce(t, a, tick, nil, rejected)
	if !strings.Contains(a.logs.String(), "not a regular file (a FIFO)") {
		t.Errorf("the refusal does not say the file is a FIFO:\n%s", a.logs.String())
	}
	pollOnce(t, a, tick, func() { os.Remove(path); os.WriteFile(path, []byte(halfRules), 0o600) }, pending)
	adminChecker(t, a, idp)("the FIFO refused", http.StatusForbidden)
}
