package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSharedCacheSettings: the shared cache needs its key file, a usable
// URL, and a key file that is there, long enough and its owner's alone;
// each error names the key (never a key, nor the URL's password), and the
// summary shows the URL without its password and how many keys, not them.
func TestSharedCacheSettings(t *testing.T) {
	dir := t.TempDir()
	const secret = "0123456789abcdef0123456789abcdef-the-key"
	keyFile := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := keyFile("good", secret+"\n"+secret+"-old\n", 0o400)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "off"},
		{name: "on", args: []string{"--shared-cache", "redis://:hunter2@redis:6379/0", "--shared-cache-key-file", good}},
		{name: "unix socket", args: []string{"--shared-cache", "unix:///run/redis.sock", "--shared-cache-key-file", good, "--shared-cache-timeout", "50ms"}},
		{name: "no key file", args: []string{"--shared-cache", "redis://redis"}, wantErr: "shared_cache_key_file: is required"},
		{name: "key file alone", args: []string{"--shared-cache-key-file", good}, wantErr: "--shared-cache-key-file: needs shared_cache"},
		{name: "missing key file", args: []string{"--shared-cache", "redis://redis", "--shared-cache-key-file", filepath.Join(dir, "none")}, wantErr: "--shared-cache-key-file: open"},
		{name: "short key", args: []string{"--shared-cache", "redis://redis", "--shared-cache-key-file", keyFile("short", secret[:31], 0o600)}, wantErr: "--shared-cache-key-file: " + dir + "/short: line 1: key shorter than 32 bytes"},
		{name: "other-readable key", args: []string{"--shared-cache", "redis://redis", "--shared-cache-key-file", keyFile("other", secret, 0o644)}, wantErr: "writable by its group, or readable or writable by others (mode -rw-r--r--)"},
		{name: "empty key file", args: []string{"--shared-cache", "redis://redis", "--shared-cache-key-file", keyFile("empty", "\n", 0o600)}, wantErr: "holds no key"},
		{name: "not redis", args: []string{"--shared-cache", "http://:hunter2@redis", "--shared-cache-key-file", good}, wantErr: `--shared-cache: "http://:xxxxx@redis": not a redis://`},
		{name: "a timeout in the URL", args: []string{"--shared-cache", "redis://redis?read_timeout=1s", "--shared-cache-key-file", good}, wantErr: "URL option jwtauthz sets itself: read_timeout"},
		{name: "zero timeout", args: []string{"--shared-cache", "redis://redis", "--shared-cache-key-file", good, "--shared-cache-timeout", "0s"}, wantErr: "--shared-cache-timeout: must be > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, append([]string{"--issuer", "https://idp.example.com"}, tt.args...), envOf())
			if err == nil {
				err = c.Check()
			}
			if !checkErr(t, err, tt.wantErr) || err != nil {
				if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), secret[:20])) {
					t.Errorf("error %q shows a secret", err)
				}
				return
			}
			s := c.Summary()
			var text bytes.Buffer
			s.WriteText(&text)
			js, _ := json.Marshal(s)
			out := text.String() + string(js)
			if strings.Contains(out, "hunter2") || strings.Contains(out, secret[:20]) {
				t.Errorf("summary shows a secret:\n%s", out)
			}
			switch sc := s.SharedCache; {
			case len(tt.args) == 0 && sc != nil:
				t.Errorf("summary %+v, want none", sc)
			case len(tt.args) > 0 && (sc == nil || sc.Keys != 2 || sc.KeyFile != good || !strings.Contains(text.String(), "shared (introspection verdicts)")):
				t.Errorf("summary %+v, text:\n%s", sc, text.String())
			}
		})
	}
}
