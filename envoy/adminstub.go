package envoy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
)

// AdminStub stands in for Envoy's admin listener in tests of the shell
// snippets that talk to it (health checks, preStop hooks), which bash runs
// over /dev/tcp. It answers HTTP/1.0 with 426 Upgrade Required, as Envoy's
// HTTP/1 codec does unless accept_http_10 is set (the admin listener
// cannot set it), /ready with LIVE, and anything else with 200, and
// records what it answered with 200 ("POST /healthcheck/fail").
type AdminStub struct {
	*httptest.Server
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
			w.Write([]byte("LIVE\n"))
		}
	}))
	return s
}

// TCPPath is the stub's address as bash's /dev/tcp names it.
func (s *AdminStub) TCPPath() string {
	host, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	return "/dev/tcp/" + host + "/" + port
}

// Answered returns the requests answered with 200, in order.
func (s *AdminStub) Answered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.answered...)
}
