package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// devIssuer is the embedded development issuer of `jwtauthz dev`: a fresh
// ES256 key, its discovery document and JWKS under /dev/ on the admin
// listener, and /dev/token to mint tokens. `serve` never has one.
type devIssuer struct {
	*issuer.Issuer
}

func newDevIssuer(admin net.Addr) (*devIssuer, error) {
	s, err := issuer.NewSigner("ES256")
	if err != nil {
		return nil, err
	}
	// The issuer's URL is where jwtauthz fetches its keys: the admin
	// listener's own IP, or loopback if it listens on every interface.
	host, port := "127.0.0.1", "9003"
	if ta, ok := admin.(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
		if !ta.IP.IsUnspecified() {
			host = ta.IP.String()
		}
	}
	return &devIssuer{issuer.New("http://"+net.JoinHostPort(host, port)+"/dev", s)}, nil
}

func (d *devIssuer) provider() config.ProviderConfig {
	return config.ProviderConfig{Name: "dev", Issuer: d.URL, JWKSURL: d.JWKSURL()}
}

// ServeHTTP serves /dev/token?sub=…&ttl=… and the issuer's documents.
func (d *devIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/dev/token" {
		d.Issuer.ServeHTTP(w, r)
		return
	}
	sub := r.URL.Query().Get("sub")
	if sub == "" {
		sub = "dev-user"
	}
	ttl := time.Hour
	if v := r.URL.Query().Get("ttl"); v != "" {
		var err error
		if ttl, err = time.ParseDuration(v); err != nil || ttl <= 0 || ttl > 24*time.Hour {
			http.Error(w, "ttl: a duration between 1s and 24h, e.g. 10m", http.StatusBadRequest)
			return
		}
	}
	tok, err := d.Token(sub, ttl)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, tok)
}

// banner prints a ready token and commands a newcomer can paste.
func (d *devIssuer) banner(w io.Writer, httpAddr, grpcAddr string) error {
	tok, err := d.Token("dev-user", time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "jwtauthz dev: a development issuer at %s (its key is made anew at every start)\n\n", d.URL)
	fmt.Fprintf(w, "A token for sub=dev-user, valid 1 h:\n\n  TOKEN=%s\n\n", tok)
	if httpAddr != "" {
		fmt.Fprintf(w, "Ask the HTTP forward-auth port (200 with X-Auth-Subject; without the header: 401):\n\n  curl -i -H \"Authorization: Bearer $TOKEN\" http://%s/anything\n\n", config.DialAddr(httpAddr))
	}
	if grpcAddr != "" && !strings.HasPrefix(grpcAddr, "unix://") {
		fmt.Fprintf(w, "Ask the Envoy ext_authz gRPC port:\n\n  grpcurl -plaintext -d '{\"attributes\":{\"request\":{\"http\":{\"method\":\"GET\",\"host\":\"api.local\",\"path\":\"/anything\",\"headers\":{\"authorization\":\"Bearer '\"$TOKEN\"'\"}}}}}' %s envoy.service.auth.v3.Authorization/Check\n\n", config.DialAddr(grpcAddr))
	}
	fmt.Fprintf(w, "More tokens: curl '%s/token?sub=alice&ttl=10m'\n\n", d.URL)
	return nil
}
