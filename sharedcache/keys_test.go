//go:build unix

package sharedcache

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/jwtauthz/jwtauthz/internal/safefile"
)

func TestLoadKeys(t *testing.T) {
	long := strings.Repeat("k", MinKeySize)
	tests := []struct {
		name    string
		body    string
		mode    os.FileMode
		missing bool
		fifo    bool // a FIFO with no writer, mode 0400: a plain read would block
		want    [][]byte
		err     error
	}{
		{name: "one key", body: long + "\n", mode: 0o400, want: [][]byte{[]byte(long)}},
		{name: "rotation, CRLF, blank lines", body: "\r\n " + long + "a\r\n\n" + long + "b", mode: 0o600, want: [][]byte{[]byte(long + "a"), []byte(long + "b")}},
		{name: "short", body: long + "\n" + long[1:] + "\n", mode: 0o600, err: ErrKeyTooShort},
		{name: "empty", body: "\n \n", mode: 0o600, err: ErrNoKey},
		{name: "group-readable (a Secret in a pod with fsGroup)", body: long, mode: 0o440, want: [][]byte{[]byte(long)}},
		{name: "other-readable", body: long, mode: 0o604, err: ErrKeyFileMode},
		{name: "group-writable", body: long, mode: 0o620, err: ErrKeyFileMode},
		{name: "missing", missing: true, err: os.ErrNotExist},
		{name: "a FIFO", fifo: true, err: safefile.ErrNotRegular},
		{name: "too large", body: long + "\n" + strings.Repeat("k", safefile.MaxSecret), mode: 0o400, err: safefile.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "key")
			switch {
			case tt.fifo:
				if err := syscall.Mkfifo(p, 0o400); err != nil {
					t.Fatal(err)
				}
			case !tt.missing:
				if err := os.WriteFile(p, []byte(tt.body), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			got, err := LoadKeys(p)
			if !errors.Is(err, tt.err) || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("LoadKeys = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "kkkk") {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url string
		err error
	}{
		{url: "redis://redis:6379/0"},
		{url: "redis://:secret@redis"},
		{url: "rediss://user:secret@redis.example.com:6380"},
		{url: "unix:///run/redis.sock?db=1"},
		{url: "rediss://redis?skip_verify=true"},
		{url: "http://redis:6379", err: ErrURL},
		{url: "redis://redis?dial_timeout=1s", err: ErrURLOption},
		{url: "redis://redis?max_retries=3", err: ErrURLOption},
		{url: "redis://redis?pool_size=3", err: ErrURLOption},
		{url: "redis://:secret@redis?unknown=1", err: ErrURL},
		{url: "unix://", err: ErrURL},
		{url: "redis://%zz", err: ErrURL},
	}
	for _, tt := range tests {
		err := CheckURL(tt.url)
		if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("CheckURL(%q) = %v, want %v", tt.url, err, tt.err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("CheckURL(%q): %q shows the password", tt.url, err)
		}
	}
}

// FuzzOpen: no value read from Redis panics the cache, and none is an
// entry unless sealed with the key under that Redis key.
func FuzzOpen(f *testing.F) {
	s := newSecret(key1)
	key := s.key("p", "tok")
	f.Add(s.seal(key, []byte(`{"active":true,"until":1}`)))
	f.Add([]byte("\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, value []byte) {
		payload, ok := s.open(key, value)
		if !ok {
			return
		}
		if string(s.seal(key, payload)) != string(value) {
			t.Fatalf("%q opened but is not what seal makes", value)
		}
		decode(payload) // any JSON, never a panic
	})
}
