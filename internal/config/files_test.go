//go:build unix

package config

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFilesThatAreNotRegular: a config file, client secret file or
// jwks_ca that is a FIFO (no writer: a plain read would wait forever) or
// a device (/dev/zero: a plain read would fill the memory) is an error
// naming what it is, at once.
func TestFilesThatAreNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"config file, a FIFO", []string{"--config", fifo}, "a FIFO"},
		{"config file, a device", []string{"--config", "/dev/zero"}, "a device"},
		{"client secret file, a FIFO", []string{"--config", writeFile(t, introspectionYAML("      client_secret_file: "+fifo+"\n"))},
			"providers[0].introspection.client_secret_file: " + fifo + " cannot be read: not a regular file (a FIFO)"},
		{"jwks_ca, a device", []string{"--issuer", "https://idp.example.com/", "--jwks-ca", "/dev/zero"}, "jwks_ca"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				c, err := load(t, tt.args, envOf())
				if err == nil {
					_, err = c.JWKSClient()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%v, want an error saying %q", err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("still reading after 5 s")
			}
		})
	}
}
