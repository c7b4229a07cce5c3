// Package testutil holds the helpers that the tests share: temporary files
// and directories, environment lookups, error checks, a log buffer, HTTP and
// gRPC clients for a server on loopback, CheckRequests, an IdP whose JWKS
// endpoint can be made to hang, a redis-server, and a fake clock. Only tests
// and test helpers (authztest) import it, and it imports nothing of
// jwtauthz's but jwks/issuer, so internal/config's own tests can use it.
package testutil

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// OtherUID is the user that owns what another local user planted in a
// test; chown to it needs root.
const OtherUID = 65534

// WriteFile writes body to a new file, jwtauthz.yaml, in a temporary
// directory and returns its path.
func WriteFile(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jwtauthz.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// CacheDir makes a directory with mode, owned by uid unless uid is 0, and
// returns its path.
func CacheDir(t testing.TB, mode os.FileMode, uid int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	for _, err := range []error{os.Mkdir(dir, 0o700), os.Chmod(dir, mode)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if uid != 0 {
		if err := os.Chown(dir, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// EnvOf is an os.LookupEnv over the variables kv names, given as name,
// value pairs: a name given with "" is set.
func EnvOf(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// CheckErr fails the test unless err is what the case wants: an error
// holding wantErr, or none if wantErr is empty. It reports whether the case
// is done (it wanted an error).
func CheckErr(t testing.TB, err error, wantErr string) bool {
	t.Helper()
	switch {
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Fatalf("err = %v, want %q", err, wantErr)
	case wantErr == "" && err != nil:
		t.Fatal(err)
	}
	return wantErr != ""
}

// PublishableKey is the Clerk publishable key of host, with prefix
// ("pk_test_" or "pk_live_").
func PublishableKey(prefix, host string) string {
	return prefix + base64.StdEncoding.EncodeToString([]byte(host+"$"))
}

// SyncBuffer is a bytes.Buffer safe for a logger and the test at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
