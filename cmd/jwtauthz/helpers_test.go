package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/internal/server"
	"github.com/jwtauthz/jwtauthz/internal/testutil"
)

// load reads the settings of `serve` with args and the variables lookup
// finds (internal/config's tests have the same helper).
func load(t *testing.T, args []string, lookup func(string) (string, bool)) (*config.Config, error) {
	t.Helper()
	c, _, err := config.Load("serve", args, lookup, io.Discard, config.Defaults())
	return c, err
}

// testApp is a jwtauthz server started in-process by a test through
// internal/server's API, on loopback ports. (internal/server's tests have
// their own, which sees inside the server.)
type testApp struct {
	*server.Server
	cancel context.CancelFunc
	done   chan error
	logs   *testutil.SyncBuffer
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
	cfg, _, err := config.Load(cmd, args, testutil.EnvOf(), io.Discard, config.Defaults())
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	opts := []server.Option{server.WithReload(config.Loader(cmd, args, testutil.EnvOf())), server.WithConfigPoll(10 * time.Millisecond)}
	if cmd == "dev" {
		opts = append(opts, server.WithDev())
	}
	logs := &testutil.SyncBuffer{}
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

func (ta *testApp) grpcAddr() string { return ta.GRPCAddr() }
