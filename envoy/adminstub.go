package envoy

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
)

// AdminStub stands in for Envoy's admin listener in tests of the shell
// snippets that talk to it (health checks, preStop hooks), which bash runs
// over /dev/tcp. It answers HTTP/1.0 with 426 Upgrade Required, as Envoy's
// HTTP/1 codec does unless accept_http_10 is set (the admin listener
// cannot set it), /ready with LIVE (503 PRE_INITIALIZING after
// SetReady(false)), and anything else with 200, and records the requests
// it answered in HTTP/1.1 ("POST /healthcheck/fail").
type AdminStub struct {
	*httptest.Server
	notReady atomic.Bool
	mu       sync.Mutex
	answered []string
}

// NewAdminStub starts an AdminStub on 127.0.0.1; Close stops it.
func NewAdminStub() *AdminStub {
	s := &AdminStub{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
			w.WriteHeader(http.StatusUpgradeRequired)
			return
		}
		s.mu.Lock()
		s.answered = append(s.answered, r.Method+" "+r.URL.RequestURI())
		s.mu.Unlock()
		if r.URL.Path == "/ready" {
			if s.notReady.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte("PRE_INITIALIZING\n"))
				return
			}
			w.Write([]byte("LIVE\n"))
		}
	}))
	return s
}

// SetReady says whether /ready answers LIVE (the default) or 503.
func (s *AdminStub) SetReady(ready bool) { s.notReady.Store(!ready) }

// ErrNoBash is RunScript's error where bash is not installed.
var ErrNoBash = errors.New("no bash here to run the script with")

// RunScript runs script with bash, its admin listener address tcp
// (/dev/tcp/host/port) replaced by the stub's and sleep made to print
// "sleep N" instead of waiting. It returns what the script printed and
// the error of its exit.
func (s *AdminStub) RunScript(script, tcp string) (string, error) {
	if _, err := exec.LookPath("bash"); err != nil {
		return "", ErrNoBash
	}
	host, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	script = "sleep() { echo sleep \"$@\"; }\n" + strings.ReplaceAll(script, tcp, "/dev/tcp/"+host+"/"+port)
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	return string(out), err
}

// Answered returns the requests answered in HTTP/1.1, in order.
func (s *AdminStub) Answered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.answered...)
}
