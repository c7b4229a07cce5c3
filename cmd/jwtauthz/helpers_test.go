package main

import (
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/internal/config"
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
