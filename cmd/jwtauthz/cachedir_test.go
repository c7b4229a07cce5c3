package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
)

// A cache directory that another user could have written is refused at
// start (and so at reload) and by --check-config, which also wants it to
// exist and be writable, and says how to make one.
func TestUntrustedCacheDirIsAConfigError(t *testing.T) {
	tests := []struct {
		name    string
		root    bool // skipped unless root
		notRoot bool // skipped as root, who may write anywhere
		dir     func(t *testing.T) string
		wantErr string // "" for a valid config
	}{
		{name: "ours, 0700", dir: func(t *testing.T) string { return testutil.CacheDir(t, 0o700, 0) }},
		{name: "ours, sticky 1777", dir: func(t *testing.T) string { return testutil.CacheDir(t, 0o777|os.ModeSticky, 0) }},
		{name: "missing", dir: func(t *testing.T) string { return filepath.Join(t.TempDir(), "none") }, wantErr: "no such file or directory"},
		{name: "a file", dir: func(t *testing.T) string { return testutil.WriteFile(t, "") }, wantErr: "is not a directory"},
		{name: "ours, 0777", dir: func(t *testing.T) string { return testutil.CacheDir(t, 0o777, 0) }, wantErr: "without the sticky bit"},
		{name: "another user's, sticky 1777", root: true, dir: func(t *testing.T) string { return testutil.CacheDir(t, 0o777|os.ModeSticky, testutil.OtherUID) }, wantErr: "owned by uid 65534"},
		{name: "ours, not writable", notRoot: true, dir: func(t *testing.T) string { return testutil.CacheDir(t, 0o500, 0) }, wantErr: "cannot write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			switch {
			case tt.root && os.Geteuid() != 0:
				t.Skip("chown to another user needs root")
			case tt.notRoot && os.Geteuid() == 0:
				t.Skip("root may write anywhere")
			}
			dir := tt.dir(t)
			var out bytes.Buffer
			code := run(context.Background(), []string{"serve", "--check-config", "--issuer", "https://a.example.com", "--jwks-cache-dir", dir}, testutil.EnvOf(), &out, &out)
			if tt.wantErr == "" {
				if code != exitOK {
					t.Fatalf("exit %d: %s", code, out.String())
				}
				return
			}
			for _, want := range []string{"--jwks-cache-dir: ", tt.wantErr, "mkdir -p -m 0700 " + dir} {
				if code != exitUsage || !strings.Contains(out.String(), want) {
					t.Fatalf("exit %d, output %q; want 2 and %q", code, out.String(), want)
				}
			}
		})
	}
}
