//go:build unix

package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

const adminRule = "rules:\n  - {match: {path_prefix: /admin}, require: {scopes: [admin]}}\n"

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// cacheFileName is the name jwtauthz gives the saved set of the default
// provider of idp: an attacker can work it out, this test lets jwtauthz
// save it once in a scratch directory.
func cacheFileName(t *testing.T, idp *issuer.Server) string {
	t.Helper()
	dir := t.TempDir()
	a := startApp(t, true, "--issuer", idp.URL, "--jwks-cache-dir", dir)
	defer a.stop(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.jwks.json"))
		if len(files) == 1 {
			return filepath.Base(files[0])
		}
		if time.Now().After(deadline) {
			t.Fatalf("no key set saved in %s within 5s: %v", dir, files)
		}
		time.Sleep(time.Millisecond)
	}
}

// attackerKeys returns a key of the attacker's, and a JWKS of it.
func attackerKeys(t *testing.T) (*issuer.Signer, []byte) {
	t.Helper()
	s := issuer.MustSigner("ES256")
	doc, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.JWK()}})
	mustDo(t, err)
	return s, doc
}

// startCached loads serve's configuration with the cache dir and the admin
// rule over idp, and starts it (not waiting for readiness) if it is valid.
func startCached(t *testing.T, idp *issuer.Server, dir string) (*testApp, error) {
	t.Helper()
	args := []string{"--issuer", idp.URL, "--jwks-cache-dir", dir, "--config", writeFile(t, adminRule)}
	if _, _, err := config.Load("serve", append([]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, args...), envOf(), io.Discard, config.Defaults()); err != nil {
		return nil, err
	}
	return startApp(t, false, args...), nil
}

// awaitFirstFetch waits until the provider's first fetch is over: the
// saved set, if any was loaded, was loaded before it.
func awaitFirstFetch(t *testing.T, a *testApp) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for a.sources.list()[0].Status().Fetches == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no fetch within 5s of the start: it is stuck before the first fetch")
		}
		time.Sleep(time.Millisecond)
	}
}

// adminAllowed asks gRPC ext_authz and HTTP forward-auth whether tok may
// GET /admin, and reports each answer.
func adminAllowed(t *testing.T, a *testApp, tok string) (grpcOK, httpOK bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api", Path: "/admin", Headers: map[string]string{"authorization": "Bearer " + tok}},
	}}}
	resp, err := authv3.NewAuthorizationClient(dial(t, a.grpcAddr())).Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	code, _, _ := get(t, a.httpURL()+"/auth", "Authorization", "Bearer "+tok, "X-Original-URI", "/admin", "X-Original-Method", "GET")
	return codes.Code(resp.Status.Code) == codes.OK, code == http.StatusOK
}

// stopWithin stops a as SIGTERM would and fails if it takes more than 5s.
// unblock, if not nil, then lets a stuck start go so that the test ends.
func stopWithin(t *testing.T, a *testApp, unblock func()) {
	t.Helper()
	a.cancel()
	select {
	case err := <-a.done:
		a.done <- err
	case <-time.After(5 * time.Second):
		if unblock != nil {
			unblock()
		}
		t.Error("the app did not stop within 5s of SIGTERM")
	}
}

// Another local user who can put a file under the saved set's predictable
// name, or point that name at a file, must not choose the keys while the
// IdP is down at start: the service stays not ready, gRPC ext_authz and
// HTTP forward-auth refuse a token signed with the planted key, and it
// stops at SIGTERM. The directory is ours and sticky (1777): others can
// add files to it but not touch ours.
func TestPlantedCacheFileIsNotTrusted(t *testing.T) {
	tests := []struct {
		name  string
		root  bool // chowns to another user: skipped unless root
		plant func(t *testing.T, p string, doc []byte)
		keep  bool // the saved file stays: the IdP's key is in use
	}{
		{name: "the saved file", keep: true, plant: func(*testing.T, string, []byte) {}},
		{name: "another user's file, 0644", root: true, plant: func(t *testing.T, p string, doc []byte) {
			mustDo(t, os.Remove(p))
			mustDo(t, os.WriteFile(p, doc, 0o644))
			mustDo(t, os.Chmod(p, 0o644))
			mustDo(t, os.Chown(p, otherUID, otherUID))
		}},
		{name: "a symbolic link to another user's file", root: true, plant: func(t *testing.T, p string, doc []byte) {
			theirs := filepath.Join(t.TempDir(), "keys.json")
			mustDo(t, os.WriteFile(theirs, doc, 0o644))
			mustDo(t, os.Chown(theirs, otherUID, otherUID))
			mustDo(t, os.Remove(p))
			mustDo(t, os.Symlink(theirs, p))
		}},
		{name: "a symbolic link to a file of ours", plant: func(t *testing.T, p string, doc []byte) {
			ours := filepath.Join(t.TempDir(), "keys.json")
			mustDo(t, os.WriteFile(ours, doc, 0o600))
			mustDo(t, os.Remove(p))
			mustDo(t, os.Symlink(ours, p))
		}},
		{name: "a second name of another file of ours", plant: func(t *testing.T, p string, doc []byte) {
			other := filepath.Join(filepath.Dir(p), "other.jwks.json")
			mustDo(t, os.WriteFile(other, doc, 0o600))
			mustDo(t, os.Remove(p))
			mustDo(t, os.Link(other, p))
		}},
		{name: "writable by all", plant: func(t *testing.T, p string, doc []byte) {
			mustDo(t, os.WriteFile(p, doc, 0o600))
			mustDo(t, os.Chmod(p, 0o666))
		}},
		{name: "a FIFO", plant: func(t *testing.T, p string, doc []byte) {
			mustDo(t, os.Remove(p))
			mustDo(t, syscall.Mkfifo(p, 0o644))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("chown to another user needs root")
			}
			idp := issuer.NewServer()
			defer idp.Close()
			dir := filepath.Join(t.TempDir(), "cache")
			mustDo(t, os.Mkdir(dir, 0o700))
			mustDo(t, os.Chmod(dir, 0o777|os.ModeSticky))
			p := filepath.Join(dir, cacheFileName(t, idp))
			first, err := startCached(t, idp, dir)
			mustDo(t, err)
			first.waitReady(t)
			stopWithin(t, first, nil)
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("the set was not saved: %v", err)
			}

			attacker, doc := attackerKeys(t)
			tt.plant(t, p, doc)
			idp.SetFault(issuer.Fail)
			a, err := startCached(t, idp, dir)
			mustDo(t, err)
			unblock := func() { // lets an open of the FIFO that blocks go
				if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
			}
			defer stopWithin(t, a, unblock)
			awaitFirstFetch(t, a)

			now := time.Now()
			forged, err := attacker.Sign(jwt.MapClaims{"iss": idp.URL, "sub": "mallory", "scope": "admin", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
			mustDo(t, err)
			genuine, err := idp.Mint(jwt.MapClaims{"sub": "alice", "scope": "admin"})
			mustDo(t, err)
			code, _, _ := get(t, a.adminURL()+"/readyz")
			if ready := code == http.StatusOK; ready != tt.keep {
				t.Errorf("/readyz %d with the IdP down, want ready %v", code, tt.keep)
			}
			if g, h := adminAllowed(t, a, forged); g || h {
				t.Errorf("the planted key's token allowed on /admin: gRPC %v, forward-auth %v", g, h)
			}
			if g, h := adminAllowed(t, a, genuine); g != tt.keep || h != tt.keep {
				t.Errorf("the IdP's token on /admin: gRPC %v, forward-auth %v, want %v", g, h, tt.keep)
			}
			if !tt.keep && !strings.Contains(a.logs.String(), "jwks: cached key set not loaded") {
				t.Errorf("no warning that the file was refused:\n%s", a.logs.String())
			}
		})
	}
}

// The attack: another local user makes the cache dir, 1777 like
// /tmp, and puts their key in it under the predictable name before
// jwtauthz first starts, while the IdP is down. The start is refused.
func TestCacheDirOfAnotherUserRefusedAtStart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	idp := issuer.NewServer()
	defer idp.Close()
	dir := cacheDir(t, 0o777|os.ModeSticky, otherUID)
	attacker, doc := attackerKeys(t)
	p := filepath.Join(dir, cacheFileName(t, idp))
	mustDo(t, os.WriteFile(p, doc, 0o644))
	mustDo(t, os.Chown(p, otherUID, otherUID))
	idp.SetFault(issuer.Fail)
	a, err := startCached(t, idp, dir)
	if err == nil {
		awaitFirstFetch(t, a)
		now := time.Now()
		forged, _ := attacker.Sign(jwt.MapClaims{"iss": idp.URL, "sub": "mallory", "scope": "admin", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		g, h := adminAllowed(t, a, forged)
		t.Fatalf("started with another user's cache dir; the planted key's token on /admin: gRPC allowed %v, forward-auth allowed %v", g, h)
	}
	if !strings.Contains(err.Error(), "--jwks-cache-dir: ") || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("start refused with %v, want --jwks-cache-dir named with the reason", err)
	}
}

// A key set that cannot be saved is a warning and a metric.
func TestFailedCacheSaveIsCounted(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	dir := cacheDir(t, 0o700, 0)
	mustDo(t, os.Mkdir(filepath.Join(dir, cacheFileName(t, idp)), 0o700)) // a rename cannot replace a directory, even as root
	a, err := startCached(t, idp, dir)
	mustDo(t, err)
	a.waitReady(t)
	const want = `jwtauthz_jwks_cache_save_errors_total{provider="default"} 1`
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body, _ := get(t, a.adminURL()+"/metrics")
		if strings.Contains(body, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in /metrics within 5s", want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(a.logs.String(), `"level":"WARN","msg":"jwks: cannot save key set"`) {
		t.Fatalf("no warning:\n%s", a.logs.String())
	}
}
