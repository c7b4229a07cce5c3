package introspect_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/introspect"
	"github.com/jwtauthz/jwtauthz/introspect/introspecttest"
)

func TestDiscoverFromTheTestServer(t *testing.T) {
	for _, d := range []struct {
		name string
		kind introspecttest.Discovery
	}{{"openid-configuration", introspecttest.DiscoveryOIDC}, {"RFC 8414 only", introspecttest.DiscoveryRFC8414}} {
		t.Run(d.name, func(t *testing.T) {
			s := introspecttest.New(t, introspecttest.Options{TLS: true, Discovery: d.kind})
			got, err := introspect.Discover(context.Background(), s.Client(), s.Issuer())
			if err != nil || got != s.Endpoint() {
				t.Fatalf("got %q, %v; want %q", got, err, s.Endpoint())
			}
		})
	}
}

// docServer serves documents at paths; {{URL}} in a document is the
// server's URL.
func docServer(t *testing.T, tls bool, docs map[string]string) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(strings.ReplaceAll(doc, "{{URL}}", srv.URL)))
	})
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestDiscover(t *testing.T) {
	doc := func(issuer, endpoint string) string {
		b, _ := json.Marshal(map[string]string{"issuer": issuer, "introspection_endpoint": endpoint})
		return string(b)
	}
	tests := []struct {
		name    string
		tls     bool
		path    string // the issuer's path
		docs    map[string]string
		want    string // "": an error
		wantMsg string
	}{
		{
			name: "issuer with a path, openid-configuration under it", path: "/realms/acme",
			docs: map[string]string{"/realms/acme/.well-known/openid-configuration": doc("{{URL}}/realms/acme", "{{URL}}/realms/acme/protocol/openid-connect/token/introspect")},
			want: "{{URL}}/realms/acme/protocol/openid-connect/token/introspect",
		},
		{
			name: "issuer with a path, RFC 8414 inserts the well-known part", path: "/tenant/a",
			docs: map[string]string{"/.well-known/oauth-authorization-server/tenant/a": doc("{{URL}}/tenant/a", "{{URL}}/tenant/a/introspect")},
			want: "{{URL}}/tenant/a/introspect",
		},
		{
			name: "openid-configuration without an endpoint falls back", path: "",
			docs: map[string]string{
				"/.well-known/openid-configuration":       `{"issuer":"{{URL}}"}`,
				"/.well-known/oauth-authorization-server": doc("{{URL}}", "{{URL}}/oauth2/introspect"),
			},
			want: "{{URL}}/oauth2/introspect",
		},
		{
			name: "issuer mismatch in both documents",
			docs: map[string]string{
				"/.well-known/openid-configuration":       doc("https://evil.example", "{{URL}}/introspect"),
				"/.well-known/oauth-authorization-server": doc("{{URL}}/", "{{URL}}/introspect"),
			},
			wantMsg: "names issuer",
		},
		{
			name: "plain-http endpoint for an https issuer", tls: true,
			docs:    map[string]string{"/.well-known/openid-configuration": doc("{{URL}}", "http://127.0.0.1:1/introspect")},
			wantMsg: "plain-http",
		},
		{
			name:    "endpoint not a URL",
			docs:    map[string]string{"/.well-known/openid-configuration": doc("{{URL}}", "/introspect")},
			wantMsg: "no usable introspection_endpoint",
		},
		{
			name:    "duplicate issuer member",
			docs:    map[string]string{"/.well-known/openid-configuration": `{"issuer":"https://evil.example","issuer":"{{URL}}","introspection_endpoint":"{{URL}}/i"}`},
			wantMsg: "twice",
		},
		{
			name:    "oversized document",
			docs:    map[string]string{"/.well-known/openid-configuration": `{"issuer":"{{URL}}","introspection_endpoint":"{{URL}}/i","pad":"` + strings.Repeat("x", introspect.MaxBody) + `"}`},
			wantMsg: "larger than",
		},
		{name: "no document", wantMsg: "status 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := docServer(t, tt.tls, tt.docs)
			got, err := introspect.Discover(context.Background(), srv.Client(), srv.URL+tt.path)
			if tt.want != "" {
				if want := strings.ReplaceAll(tt.want, "{{URL}}", srv.URL); err != nil || got != want {
					t.Fatalf("got %q, %v; want %q", got, err, want)
				}
				return
			}
			if !errors.Is(err, introspect.ErrDiscovery) || got != "" || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("got %q, %v; want ErrDiscovery saying %q", got, err, tt.wantMsg)
			}
		})
	}
}

func TestClientDiscoversTheEndpoint(t *testing.T) {
	s := introspecttest.New(t, introspecttest.Options{TLS: true})
	c, err := introspect.New(introspect.Config{
		Issuer: s.Issuer(), ClientID: s.ClientID, ClientSecret: s.ClientSecret,
		Timeout: 5 * time.Second, HTTPClient: s.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := s.Issue(map[string]any{"sub": "u"})
	for range 2 {
		if got, err := c.Introspect(context.Background(), tok); err != nil || !introspect.Active(got) {
			t.Fatalf("%v, %v", got, err)
		}
	}
}

func TestClientDiscoveryFailureIsUnavailable(t *testing.T) {
	s := introspecttest.New(t, introspecttest.Options{Discovery: introspecttest.DiscoveryNone})
	c, err := introspect.New(introspect.Config{
		Issuer: s.Issuer(), ClientID: s.ClientID, ClientSecret: s.ClientSecret,
		Timeout: 5 * time.Second, HTTPClient: s.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Introspect(context.Background(), s.Issue(nil))
	if !errors.Is(err, introspect.ErrUnavailable) || !errors.Is(err, introspect.ErrDiscovery) || s.Calls() != 0 {
		t.Fatalf("%v, %d calls", err, s.Calls())
	}
}

func TestConcurrentCallsShareOneDiscovery(t *testing.T) {
	s := introspecttest.New(t, introspecttest.Options{})
	var (
		mu      sync.Mutex
		gets    int
		arrived = make(chan struct{}, 1)
		release = make(chan struct{})
		disc    *httptest.Server
	)
	disc = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gets++
		mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"issuer": disc.URL, "introspection_endpoint": s.Endpoint()})
	}))
	defer disc.Close()
	c, err := introspect.New(introspect.Config{Issuer: disc.URL, ClientID: s.ClientID, ClientSecret: s.ClientSecret, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tok := s.Issue(nil)
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() { _, err := c.Introspect(context.Background(), tok); errs <- err }()
	}
	<-arrived
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if gets != 1 || s.CallsFor(tok) != n {
		t.Fatalf("%d discovery requests and %d introspections, want 1 and %d", gets, s.CallsFor(tok), n)
	}
}
