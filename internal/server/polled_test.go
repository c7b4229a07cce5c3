package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/config"
)

// startAppPolled is startApp whose config file is read only when the test
// sends on the returned channel (one poll per send), not every config poll period.
func startAppPolled(t *testing.T, args ...string) (*testApp, chan<- time.Time) {
	t.Helper()
	base := []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--shutdown-delay", "0s", "--log-level", "debug"}
	args = append(base, args...)
	cfg, _, err := config.Load("serve", args, envOf(), io.Discard, config.Defaults())
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	tick := make(chan time.Time)
	a, err := New(cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), WithReload(config.Loader("serve", args, envOf())), WithPollTick(tick))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testApp{Server: a, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { ta.done <- a.Run(ctx) }()
	t.Cleanup(func() { ta.stop(t) })
	ta.waitReady(t)
	return ta, tick
}
