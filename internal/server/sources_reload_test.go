package server

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// A reload that changes only how a provider's keys are fetched replaces its
// key source; during an IdP outage the new one must still have the keys.
func TestReloadDuringAnOutageKeepsTheKeys(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	cfg := func(refresh string) []byte { // no cache dir, whose file would hide the loss
		return []byte("jwks_refresh: " + refresh + "\nproviders:\n  - {name: one, issuer: " + idp.URL + ", jwks_url: " + idp.JWKSURL() + "}\n")
	}
	path := writeFile(t, string(cfg("1h")))
	a := startApp(t, true, "--config", path)
	tok, _ := idp.Token("u", time.Hour)
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	code := func() codes.Code {
		t.Helper()
		resp, err := client.Check(context.Background(), checkReq(tok, "/"))
		if err != nil {
			t.Fatal(err)
		}
		return codes.Code(resp.Status.Code)
	}
	if code() != codes.OK {
		t.Fatal("before the reload")
	}
	src := a.sources.list()[0]

	idp.SetFault(issuer.Fail) // the IdP goes down, then the refresh period changes
	os.WriteFile(path, cfg("2h"), 0o600)
	if err := a.reload("test"); err != nil {
		t.Fatal(err)
	}
	if a.sources.list()[0] == src {
		t.Fatal("the key source was kept: the test tests nothing")
	}
	if c := code(); c != codes.OK {
		t.Fatalf("a valid token after the reload: %v, want OK", c)
	}
	if s, body, _ := get(t, a.adminURL()+"/readyz"); s != http.StatusOK {
		t.Fatalf("/readyz after the reload: %d %s", s, body)
	}
	if !a.ready.Load() {
		t.Fatal("not ready after the reload")
	}
}

// A replaced source is stopped before update returns (so that no late
// fetch of it writes the cache file its successor uses), and hands its
// keys over only to a source of the same issuer.
func TestUpdateStopsAndSeedsReplacedSources(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	s := newSources()
	base := jwks.Config{Name: "one", Issuer: idp.URL, URL: idp.JWKSURL(), Timeout: time.Second}
	s.update([]jwks.Config{base})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.start(ctx)
	defer s.stop()
	first := s.running["one"]
	select {
	case <-first.src.ReadyC():
	case <-time.After(10 * time.Second):
		t.Fatal("the first source never had keys")
	}
	idp.SetFault(issuer.Fail)

	timing := base
	timing.Refresh = time.Minute
	s.update([]jwks.Config{timing})
	select {
	case <-first.done:
	default:
		t.Fatal("the replaced source still runs after update")
	}
	second := s.running["one"]
	if second == first || !second.src.Ready() {
		t.Fatal("the replacing source of the same issuer has no keys")
	}

	moved := base
	moved.Issuer = idp.URL + "/other"
	s.update([]jwks.Config{moved})
	if s.running["one"].src.Ready() {
		t.Fatal("keys were handed over to another issuer")
	}
}
