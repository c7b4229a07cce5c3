// Package introspecttest is an RFC 7662 introspection endpoint for tests,
// behind httptest: strict about what a client sends (POST, a form-encoded
// token, client authentication by exactly one method), answering about the
// opaque tokens the test Issues and Revokes, counting calls, and made slow,
// failing or answering garbage on demand. Nothing in it sleeps: a slow
// answer waits until the test releases it or the request ends.
package introspecttest

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Path is where the endpoint is served; the discovery documents are at
// their well-known paths.
const Path = "/introspect"

// Method is a client authentication method the server accepts.
type Method string

// The methods; MethodAny accepts either (but never both in one request).
const (
	MethodAny   Method = ""
	MethodBasic Method = "client_secret_basic"
	MethodPost  Method = "client_secret_post"
)

// Discovery says which discovery documents the server serves.
type Discovery int

// The choices.
const (
	DiscoveryOIDC    Discovery = iota // /.well-known/openid-configuration and RFC 8414's
	DiscoveryRFC8414                  // /.well-known/oauth-authorization-server only
	DiscoveryNone                     // neither
)

// Options configure New; the zero value is a plain-HTTP server accepting
// either method, with a generated client ID and secret.
type Options struct {
	ClientID, ClientSecret string // empty: "jwtauthz" and a random secret with characters form-encoding changes
	Method                 Method
	TLS                    bool
	Discovery              Discovery
}

// Server is the endpoint. Its exported fields are read-only.
type Server struct {
	*httptest.Server
	ClientID, ClientSecret string
	method                 Method
	discovery              Discovery

	mu      sync.Mutex
	tokens  map[string]map[string]any
	calls   int
	perTok  map[string]int
	fault   Fault
	status  int
	hold    chan struct{} // closed on release; nil: not holding
	arrived chan struct{}
}

// New starts a server, closed at the test's end.
func New(t testing.TB, o Options) *Server {
	s := &Server{
		ClientID: o.ClientID, ClientSecret: o.ClientSecret, method: o.Method, discovery: o.Discovery,
		tokens: map[string]map[string]any{}, perTok: map[string]int{},
	}
	if s.ClientID == "" {
		s.ClientID = "jwtauthz"
	}
	if s.ClientSecret == "" {
		s.ClientSecret = "s3cr:t/+ %&=é" + random()
	}
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.introspect)
	mux.HandleFunc("/.well-known/openid-configuration", s.metadata(DiscoveryOIDC))
	mux.HandleFunc("/.well-known/oauth-authorization-server", s.metadata(DiscoveryRFC8414))
	if o.TLS {
		s.Server = httptest.NewTLSServer(mux)
	} else {
		s.Server = httptest.NewServer(mux)
	}
	t.Cleanup(s.Close)
	return s
}

// Close releases held requests and stops the server.
func (s *Server) Close() {
	s.Release()
	s.Server.Close()
}

// Issuer is the server's issuer: its URL.
func (s *Server) Issuer() string { return s.URL }

// Endpoint is the introspection endpoint's URL.
func (s *Server) Endpoint() string { return s.URL + Path }

// Issue makes a new random opaque token whose answer is claims with
// "active": true added (unless claims sets "active" itself).
func (s *Server) Issue(claims map[string]any) string {
	tok := random()
	answer := map[string]any{"active": true}
	for k, v := range claims {
		answer[k] = v
	}
	s.mu.Lock()
	s.tokens[tok] = answer
	s.mu.Unlock()
	return tok
}

// Revoke makes the answer for token {"active":false}.
func (s *Server) Revoke(token string) {
	s.mu.Lock()
	delete(s.tokens, token)
	s.mu.Unlock()
}

// Calls is the number of requests to the endpoint so far, refused ones
// included.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// CallsFor is the number of requests that asked about token.
func (s *Server) CallsFor(token string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perTok[token]
}

// Fail makes every later answer of the endpoint this status (with a JSON
// error body); 0 or 200 stops it.
func (s *Server) Fail(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

// Hold makes later requests to the endpoint wait, after they are counted
// and checked, until Release (or Close) or until the request ends. Each
// request that starts waiting sends on the returned channel (buffered for
// 1024; more are not announced).
func (s *Server) Hold() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold, s.arrived = make(chan struct{}), make(chan struct{}, 1024)
	}
	return s.arrived
}

// Release lets held requests go on and stops holding new ones.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

func (s *Server) metadata(kind Discovery) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.discovery == DiscoveryNone || (s.discovery == DiscoveryRFC8414 && kind == DiscoveryOIDC) {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                 s.Issuer(),
			"introspection_endpoint": s.Endpoint(),
			"introspection_endpoint_auth_methods_supported": []string{string(MethodBasic), string(MethodPost)},
		})
	}
}

func random() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// errorAnswer is an RFC 6749 §5.2 error.
func errorAnswer(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspecttest"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// equal compares secrets in constant time.
func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// form parses a form-encoded body strictly: every parameter at most once
// (RFC 6749 §3.2), none in the URL's query.
func form(r *http.Request) (url.Values, error) {
	if r.URL.RawQuery != "" {
		return nil, fmt.Errorf("parameters in the URL's query")
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, fmt.Errorf("Content-Type %q is not application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, 1<<20)); err != nil {
		return nil, err
	}
	v, err := url.ParseQuery(buf.String())
	if err != nil {
		return nil, err
	}
	for k, vs := range v {
		if len(vs) != 1 {
			return nil, fmt.Errorf("parameter %s given %d times", k, len(vs))
		}
	}
	return v, nil
}

func accepts(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return a == "" || strings.Contains(a, "application/json") || strings.Contains(a, "*/*")
}
