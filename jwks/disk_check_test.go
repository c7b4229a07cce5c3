//go:build unix

package jwks

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
)

func TestCheckCacheDir(t *testing.T) {
	tests := []struct {
		name    string
		root    bool
		make    func(t *testing.T) string
		wantErr error // nil: usable; errNotUsable: an error that is neither sentinel
	}{
		{name: "ours, 0700", make: func(t *testing.T) string { return dirMode(t, 0o700, 0) }},
		{name: "ours, sticky 1777", make: func(t *testing.T) string { return dirMode(t, 0o777|os.ModeSticky, 0) }},
		{name: "a symbolic link to ours", make: func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "link")
			must(t, os.Symlink(dirMode(t, 0o700, 0), p))
			return p
		}},
		{name: "missing", make: func(t *testing.T) string { return filepath.Join(t.TempDir(), "none") }, wantErr: os.ErrNotExist},
		{name: "a file", make: func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "f")
			must(t, os.WriteFile(p, nil, 0o600))
			return p
		}, wantErr: errNotUsable},
		{name: "ours, 0777", make: func(t *testing.T) string { return dirMode(t, 0o777, 0) }, wantErr: ErrCacheUntrusted},
		{name: "ours, 0770", make: func(t *testing.T) string { return dirMode(t, 0o770, 0) }, wantErr: ErrCacheUntrusted},
		{name: "another user's, sticky 1777", root: true, make: func(t *testing.T) string { return dirMode(t, 0o777|os.ModeSticky, otherUID) }, wantErr: ErrCacheUntrusted},
		{name: "another user's, 0700", root: true, make: func(t *testing.T) string { return dirMode(t, 0o700, otherUID) }, wantErr: ErrCacheUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				needRoot(t)
			}
			dir := tt.make(t)
			err := CheckCacheDir(dir)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("CheckCacheDir: %v", err)
			case tt.wantErr == errNotUsable && (err == nil || errors.Is(err, ErrCacheUntrusted) || errors.Is(err, os.ErrNotExist)):
				t.Fatalf("CheckCacheDir: %v, want another error", err)
			case tt.wantErr != nil && tt.wantErr != errNotUsable && !errors.Is(err, tt.wantErr):
				t.Fatalf("CheckCacheDir: %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if left, _ := filepath.Glob(filepath.Join(dir, ".jwks-check-*")); len(left) > 0 {
					t.Fatalf("the write check left %v", left)
				}
			}
			t.Logf("%v", err)
		})
	}
}

var errNotUsable = errors.New("not usable")

// dirMode makes a directory with mode, owned by uid unless 0.
func dirMode(t *testing.T, mode os.FileMode, uid int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	must(t, os.Mkdir(dir, 0o700))
	must(t, os.Chmod(dir, mode))
	if uid != 0 {
		must(t, os.Chown(dir, uid, uid))
	}
	return dir
}

// A set that cannot be saved is a warning and the fetch's CacheErr (which
// jwtauthz counts), never silent; the keys fetched are used all the same.
func TestFailedSaveIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		var logs syncBuf
		var mu sync.Mutex
		var saveErrs []error
		s := New(Config{
			Name: "a", Issuer: idp.URL, URL: idp.JWKSURL(), CacheDir: t.TempDir(),
			Client: &http.Client{Transport: handlerTransport{idp}},
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			Observe: func(r FetchResult) {
				mu.Lock()
				saveErrs = append(saveErrs, r.CacheErr)
				mu.Unlock()
			},
		})
		must(t, os.Mkdir(s.cachePath(), 0o700)) // a rename cannot replace it, even as root
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go s.Run(ctx)
		awaitReady(s)
		mu.Lock()
		defer mu.Unlock()
		if len(saveErrs) != 1 || saveErrs[0] == nil {
			t.Fatalf("save errors reported %v, want one", saveErrs)
		}
		if !strings.Contains(logs.String(), "jwks: cannot save key set") {
			t.Fatalf("no warning: %s", logs.String())
		}
	})
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
