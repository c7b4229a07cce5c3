package main

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// freeAddr is a loopback address nothing listens on (the system's choice
// of port, freed at once).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// healthcheck asks the admin listener serve would open: --admin-addr,
// else JWTAUTHZ_ADMIN_ADDR, else admin_addr of the config file (--config,
// else JWTAUTHZ_CONFIG), else the default. Here a server's admin address
// comes from its config file alone, and so does the healthcheck's.
func TestHealthcheckReadsTheConfigFile(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	admin, down := freeAddr(t), freeAddr(t)
	path := testutil.WriteFile(t, "issuer: "+idp.URL+"\ngrpc_addr: 127.0.0.1:0\nhttp_addr: \"\"\nadmin_addr: "+admin+"\nshutdown_delay: 0s\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	logs := &testutil.SyncBuffer{}
	go func() { done <- run(ctx, []string{"serve", "--config", path}, testutil.EnvOf(), io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	})
	for deadline := time.Now().Add(10 * time.Second); run(ctx, []string{"healthcheck", "--admin-addr", admin, "--timeout", "1s"}, testutil.EnvOf(), io.Discard, io.Discard) != exitOK; {
		select {
		case code := <-done:
			t.Fatalf("server exited %d before ready:\n%s", code, logs.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 10s:\n%s", logs.String())
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	tests := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
	}{
		{name: "--config", args: []string{"--config", path}, wantCode: exitOK},
		{name: "JWTAUTHZ_CONFIG", env: []string{"JWTAUTHZ_CONFIG", path}, wantCode: exitOK},
		{name: "--config before JWTAUTHZ_CONFIG", args: []string{"--config", path}, env: []string{"JWTAUTHZ_CONFIG", missing}, wantCode: exitOK},
		{name: "JWTAUTHZ_ADMIN_ADDR before the file", args: []string{"--config", path}, env: []string{"JWTAUTHZ_ADMIN_ADDR", down}, wantCode: exitError},
		{name: "--admin-addr before the file", args: []string{"--config", path, "--admin-addr", down}, wantCode: exitError},
		{name: "--admin-addr before JWTAUTHZ_ADMIN_ADDR", args: []string{"--admin-addr", admin}, env: []string{"JWTAUTHZ_ADMIN_ADDR", down, "JWTAUTHZ_CONFIG", path}, wantCode: exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out testutil.SyncBuffer
			if code := run(ctx, append([]string{"healthcheck"}, tt.args...), testutil.EnvOf(tt.env...), &out, &out); code != tt.wantCode {
				t.Errorf("exit %d, want %d: %s", code, tt.wantCode, out.String())
			}
		})
	}
}
