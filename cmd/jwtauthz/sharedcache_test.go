package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
	"github.com/jwtauthz/jwtauthz/introspect/introspecttest"
)

// Four jwtauthz processes sharing one redis-server (--shared-cache) answer
// a new opaque token with one introspection call between them, and a
// revoked one too; with Redis killed they go on through the IdP.
func TestSharedCacheFourProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs four processes")
	}
	redis := testutil.StartRedis(t)
	idp := introspecttest.New(t, introspecttest.Options{})
	dir := t.TempDir()
	key := filepath.Join(dir, "shared-cache-key")
	if err := os.WriteFile(key, []byte(strings.Repeat("k", 48)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "jwtauthz.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `providers:
  - name: idp
    issuer: %s
    introspection: {url: %s, client_id: %s}
`, idp.Issuer(), idp.Endpoint(), idp.ClientID), 0o600); err != nil {
		t.Fatal(err)
	}
	exe := goBuild(t)
	var fleet []string // each process's forward-auth URL
	for range 4 {
		fleet = append(fleet, startProcess(t, exe, []string{"JWTAUTHZ_PROVIDERS_IDP_CLIENT_SECRET=" + idp.ClientSecret},
			"serve", "--config", cfg, "--shared-cache", redis.URL(), "--shared-cache-key-file", key,
			"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"))
	}
	keys := func() int {
		var n int
		fmt.Sscan(redis.Do(t, "DBSIZE"), &n)
		return n
	}
	// checkAll asks each process in turn, the first one's verdict in Redis
	// before the others ask (it is written in the background).
	checkAll := func(tok string, want int) {
		t.Helper()
		before := keys()
		for i, url := range fleet {
			if code := forwardAuth(t, url, tok); code != want {
				t.Errorf("jwtauthz %d: %d; want %d", i, code, want)
			}
			for deadline := time.Now().Add(5 * time.Second); i == 0 && keys() == before && time.Now().Before(deadline); {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
	alice := idp.Issue(map[string]any{"iss": idp.Issuer(), "sub": "alice"})
	checkAll(alice, http.StatusOK)
	revoked := idp.Issue(map[string]any{"iss": idp.Issuer(), "sub": "mallory"})
	idp.Revoke(revoked)
	checkAll(revoked, http.StatusUnauthorized)
	if a, r := idp.CallsFor(alice), idp.CallsFor(revoked); a != 1 || r != 1 {
		t.Errorf("introspection calls from 4 processes: %d for a new token, %d for a revoked one; want 1 and 1", a, r)
	}
	if dump := redis.Do(t, "KEYS", "*"); strings.Contains(dump, alice) {
		t.Errorf("a Redis key holds the token: %s", dump)
	}

	redis.Kill(t)
	bob := idp.Issue(map[string]any{"iss": idp.Issuer(), "sub": "bob"})
	for i, url := range fleet {
		if code := forwardAuth(t, url, bob); code != http.StatusOK {
			t.Errorf("Redis down, jwtauthz %d: %d; want 200 through the IdP", i, code)
		}
	}
	if n := idp.CallsFor(bob); n != 4 {
		t.Errorf("Redis down: %d introspection calls for 4 processes; want 4", n)
	}
}

// startProcess runs exe with args and env added to the environment, waits
// until it is ready, and returns its forward-auth URL; the process is
// stopped when t ends.
func startProcess(t *testing.T, exe string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	addrs := map[string]string{}
	lines := bufio.NewScanner(stderr)
	for len(addrs) < 3 && lines.Scan() {
		var l struct{ Msg, Listener, Addr string }
		if json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "listener started" {
			addrs[l.Listener] = l.Addr
		}
	}
	if len(addrs) < 3 {
		t.Fatalf("%s: no listener addresses in its log", exe)
	}
	go io.Copy(io.Discard, stderr)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		resp, err := http.Get("http://" + addrs["admin"] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", exe, err)
		}
	}
	return "http://" + addrs["http"] + "/api"
}

// forwardAuth asks a forward-auth URL about a bearer token.
func forwardAuth(t *testing.T, url, tok string) int {
	t.Helper()
	code, _, _ := testutil.Get(t, url, "Authorization", "Bearer "+tok)
	return code
}
