package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/config"
)

// startAppPolled is startApp whose config file is read only when the test
// sends on the returned channel (one poll per send), not every configPoll.
func startAppPolled(t *testing.T, args ...string) (*testApp, chan<- time.Time) {
	t.Helper()
	base := []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--shutdown-delay", "0s", "--log-level", "debug"}
	args = append(base, args...)
	cfg, _, err := config.Load("serve", args, envOf(), io.Discard, config.Defaults())
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	a, err := newApp(cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), false)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	a.load = config.Loader("serve", args, envOf())
	tick := make(chan time.Time)
	a.pollTick = tick
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testApp{app: a, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { ta.done <- a.run(ctx) }()
	t.Cleanup(func() { ta.stop(t) })
	ta.waitReady(t)
	return ta, tick
}
