package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/internal/server"
	"github.com/jwtauthz/jwtauthz/internal/testutil"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// TestMain lets the test binary be jwtauthz itself, for tests that send it
// real signals.
func TestMain(m *testing.M) {
	if os.Getenv("JWTAUTHZ_TEST_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// child is jwtauthz in a process of its own.
type child struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	addrs map[string]string
	saw   chan string // each log message
}

func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	return startExe(t, os.Args[0], []string{"JWTAUTHZ_TEST_AS_MAIN=1"}, args...)
}

// startExe runs the jwtauthz binary exe with args, the variables env added
// to the test's, and waits until it is ready.
func startExe(t *testing.T, exe string, env []string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(exe, args...), addrs: map[string]string{}, saw: make(chan string, 1024)}
	c.cmd.Env = append(os.Environ(), env...)
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	go c.read(stderr)
	c.await(t, "ready: every provider has keys")
	return c
}

func (c *child) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var l struct{ Msg, Listener, Addr string }
		json.Unmarshal(sc.Bytes(), &l)
		c.mu.Lock()
		c.lines = append(c.lines, sc.Text())
		if l.Msg == "listener started" {
			c.addrs[l.Listener] = l.Addr
		}
		c.mu.Unlock()
		select {
		case c.saw <- l.Msg:
		default:
		}
	}
	close(c.saw)
}

func (c *child) await(t *testing.T, msg string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-c.saw:
			if !ok {
				t.Fatalf("jwtauthz exited before %q:\n%s", msg, c.logs())
			}
			if m == msg {
				return
			}
		case <-timeout:
			t.Fatalf("no %q within 20s:\n%s", msg, c.logs())
		}
	}
}

func (c *child) logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

func (c *child) addr(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs[name]
}

func TestSignals(t *testing.T) {
	idp := testutil.NewHangingIdP(t)
	path := testutil.WriteFile(t, "issuer: "+idp.URL+"\n")
	c := startChild(t, "serve", "--config", path, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--admin-addr", "127.0.0.1:0", "--shutdown-delay", "100ms", "--shutdown-timeout", "5s", "--jwks-timeout", "400ms")

	// SIGHUP reloads.
	c.cmd.Process.Signal(syscall.SIGHUP)
	c.await(t, "config reloaded")

	// Checks in flight at SIGTERM all get answers, and the exit is 0.
	cc, sent := testutil.DialCounting(t, c.addr("grpc"), 10)
	client := authv3.NewAuthorizationClient(cc)
	idp.Hang.Store(true)
	tok, _ := issuer.MustSigner("ES256").Sign(jwt.MapClaims{"iss": idp.URL, "sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // the refresh gives up at 400ms
			defer cancel()
			resp, err := client.Check(ctx, testutil.CheckReq(tok, "/"))
			if err == nil && codes.Code(resp.Status.Code) != codes.Unauthenticated {
				err = errors.New(resp.Status.String())
			}
			errs <- err
		})
	}
	// Every check is on the wire, and the refresh they wait for hangs at
	// the IdP; within the shutdown delay the server reads them all.
	testutil.AwaitN(t, sent, 10, "checks sent")
	testutil.AwaitN(t, idp.Hung, 1, "JWKS requests hanging at the IdP")
	c.cmd.Process.Signal(syscall.SIGTERM)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a check in flight at SIGTERM: %v", err)
		}
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, c.logs())
	}
}

// TestStartLogsRuntime wants the first line to say which build (as
// `jwtauthz version` does), which Go and how many threads of Go code
// (GOMAXPROCS) the process runs with (docs/operations.md, "CPU").
func TestStartLogsRuntime(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	path := testutil.WriteFile(t, "issuer: "+idp.URL+"\n")
	for _, procs := range []int{3, 5} {
		t.Setenv("GOMAXPROCS", strconv.Itoa(procs))
		c := startChild(t, "serve", "--config", path, "--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--admin-addr", "127.0.0.1:0")
		var l struct {
			Msg, Version, Commit, Date, Modified, Go string
			Gomaxprocs                               int
		}
		c.mu.Lock()
		first := c.lines[0] // startChild waited for a later line
		c.mu.Unlock()
		b := server.ReadBuildInfo("", "", "") // this test binary is jwtauthz
		want := struct {
			Msg, Version, Commit, Date, Modified, Go string
			Gomaxprocs                               int
		}{"starting", b.Version, b.Commit, b.Date, b.Modified, runtime.Version(), procs}
		if err := json.Unmarshal([]byte(first), &l); err != nil || l != want {
			t.Errorf("first line %s: want %+v", first, want)
		}
	}
}
