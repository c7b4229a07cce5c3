package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/config"
)

// testApp is a jwtauthz started in-process by a test, on loopback ports.
type testApp struct {
	*Server
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

// startApp runs `jwtauthz serve` (or `dev`, if args start with "dev") with
// the given flags on 127.0.0.1:0 listeners, unless the flags name others,
// and stops it when the test ends. It waits until /readyz is 200 if wait.
func startApp(t testing.TB, wait bool, args ...string) *testApp {
	t.Helper()
	return startAppEnv(t, wait, envOf(), args...)
}

// startAppEnv is startApp with environment variables.
func startAppEnv(t testing.TB, wait bool, lookup func(string) (string, bool), args ...string) *testApp {
	t.Helper()
	cmd := "serve"
	if len(args) > 0 && args[0] == "dev" {
		cmd, args = "dev", args[1:]
	}
	base := []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--shutdown-delay", "0s", "--log-level", "debug"}
	def := config.Defaults()
	cfg, _, err := config.Load(cmd, append(base, args...), lookup, io.Discard, def)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	// Tests need not wait 2 s for a reload.
	opts := []Option{WithReload(config.Loader(cmd, append(base, args...), lookup)), WithConfigPoll(10 * time.Millisecond)}
	if cmd == "dev" {
		opts = append(opts, WithDev())
	}
	ta := runApp(t, cfg, logs, slog.LevelDebug, opts...)
	if wait {
		ta.waitReady(t)
	}
	return ta
}

// runApp builds the app of cfg with opts, logging at level to logs, runs it
// until the test ends, and returns at once.
func runApp(t testing.TB, cfg *config.Config, logs *syncBuffer, level slog.Level, opts ...Option) *testApp {
	t.Helper()
	a, err := New(cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level})), opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testApp{Server: a, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { ta.done <- a.Run(ctx) }()
	t.Cleanup(func() { ta.stop(t) })
	return ta
}

// stop ends the app as SIGTERM would and waits for run to return.
func (ta *testApp) stop(t testing.TB) error {
	ta.cancel()
	select {
	case err := <-ta.done:
		ta.done <- err // stop may be called again by the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("app did not stop")
		return nil
	}
}

func (ta *testApp) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ta.ready.Load() {
			return
		}
		select {
		case <-time.After(2 * time.Millisecond):
		case err := <-ta.done:
			t.Fatalf("app stopped before ready: %v", err)
		}
	}
	t.Fatal("app not ready within 10s")
}

func (ta *testApp) grpcAddr() string  { return ta.grpcLis.Addr().String() }
func (ta *testApp) httpURL() string   { return "http://" + ta.httpLis.Addr().String() }
func (ta *testApp) adminURL() string  { return "http://" + ta.adminLis.Addr().String() }
func (ta *testApp) adminAddr() string { return ta.adminLis.Addr().String() }
