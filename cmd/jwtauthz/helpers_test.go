package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/internal/server"
)

// writeFile writes body to a new file in a temporary directory and returns
// its path.
func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jwtauthz.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// envOf is an os.LookupEnv over the variables kv names: a name given with
// "" is set.
func envOf(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// load reads the settings of `serve` with args and the variables lookup
// finds (internal/config's tests have the same helper).
func load(t *testing.T, args []string, lookup func(string) (string, bool)) (*config.Config, error) {
	t.Helper()
	c, _, err := config.Load("serve", args, lookup, io.Discard, config.Defaults())
	return c, err
}

// checkErr fails the test unless err is what the case wants: an error
// holding wantErr, or none if wantErr is empty. It reports whether the case
// is done (it wanted an error).
func checkErr(t *testing.T, err error, wantErr string) bool {
	t.Helper()
	switch {
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Fatalf("err = %v, want %q", err, wantErr)
	case wantErr == "" && err != nil:
		t.Fatal(err)
	}
	return wantErr != ""
}

// publishableKey is the Clerk publishable key of host.
func publishableKey(prefix, host string) string {
	return prefix + base64.StdEncoding.EncodeToString([]byte(host+"$"))
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testApp is a jwtauthz server started in-process by a test through
// internal/server's API, on loopback ports. (internal/server's tests have
// their own, which sees inside the server.)
type testApp struct {
	*server.Server
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

// startApp runs `jwtauthz serve` (or `dev`, if args start with "dev") with
// the given flags on 127.0.0.1:0 listeners, unless the flags name others,
// and stops it when the test ends. It waits until it is ready if wait.
func startApp(t testing.TB, wait bool, args ...string) *testApp {
	t.Helper()
	cmd := "serve"
	if len(args) > 0 && args[0] == "dev" {
		cmd, args = "dev", args[1:]
	}
	args = append([]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--shutdown-delay", "0s", "--log-level", "debug"}, args...)
	cfg, _, err := config.Load(cmd, args, envOf(), io.Discard, config.Defaults())
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	opts := []server.Option{server.WithReload(config.Loader(cmd, args, envOf())), server.WithConfigPoll(10 * time.Millisecond)}
	if cmd == "dev" {
		opts = append(opts, server.WithDev())
	}
	logs := &syncBuffer{}
	s, err := server.New(cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), opts...)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testApp{Server: s, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { ta.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ta.done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	})
	if wait {
		deadline := time.Now().Add(10 * time.Second)
		for !s.Ready() {
			if time.Now().After(deadline) {
				t.Fatal("server not ready within 10s")
			}
			select {
			case <-time.After(2 * time.Millisecond):
			case err := <-ta.done:
				t.Fatalf("server stopped before ready: %v", err)
			}
		}
	}
	return ta
}

func (ta *testApp) adminAddr() string { return ta.AdminAddr() }

// get fetches url and returns the status and body.
func get(t testing.TB, url string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// checkReq is a CheckRequest for GET api{path}, with tok as a bearer token
// unless it is "".
func checkReq(tok, path string) *authv3.CheckRequest {
	h := map[string]string{}
	if tok != "" {
		h["authorization"] = "Bearer " + tok
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api", Path: path, Headers: h},
	}}}
}

func (ta *testApp) grpcAddr() string { return ta.GRPCAddr() }

// dial connects to the gRPC listener at addr, without TLS.
func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}
