//go:build unix

package jwks

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// otherUID owns what another local user planted; chown needs root.
const otherUID = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A saved set is loaded only from a file that no other user can have
// written: a regular file under the provider's name itself (no symbolic
// link followed, no second name), owned by this process's user, writable
// by no one else. Whatever replaced the file, the source is not ready from
// it.
func TestCacheFileOnlyOursIsLoaded(t *testing.T) {
	tests := []struct {
		name  string
		root  bool // chowns: skipped unless root
		plant func(t *testing.T, p string)
		want  bool // ready from the cached set
	}{
		{name: "the saved file", plant: func(*testing.T, string) {}, want: true},
		{name: "a symbolic link to a file of ours", plant: func(t *testing.T, p string) {
			elsewhere := filepath.Join(t.TempDir(), "keys.json")
			must(t, os.Rename(p, elsewhere))
			must(t, os.Symlink(elsewhere, p))
		}},
		{name: "owned by another user, 0600", root: true, plant: func(t *testing.T, p string) {
			must(t, os.Chown(p, otherUID, otherUID))
		}},
		{name: "owned by another user, 0644", root: true, plant: func(t *testing.T, p string) {
			must(t, os.Chown(p, otherUID, otherUID))
			must(t, os.Chmod(p, 0o644))
		}},
		{name: "a symbolic link to another user's file", root: true, plant: func(t *testing.T, p string) {
			elsewhere := filepath.Join(t.TempDir(), "keys.json")
			must(t, os.Rename(p, elsewhere))
			must(t, os.Chown(elsewhere, otherUID, otherUID))
			must(t, os.Symlink(elsewhere, p))
		}},
		{name: "writable by all", plant: func(t *testing.T, p string) { must(t, os.Chmod(p, 0o606)) }},
		{name: "a second hard link", plant: func(t *testing.T, p string) { must(t, os.Link(p, p+".another-name")) }},
		{name: "a directory", plant: func(t *testing.T, p string) {
			must(t, os.Remove(p))
			must(t, os.Mkdir(p, 0o700))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				needRoot(t)
			}
			synctest.Test(t, func(t *testing.T) {
				plant := func(p string) { tt.plant(t, p) }
				if got := readyFromCache(t, Config{Name: "a"}, Config{Name: "a"}, plant); got != tt.want {
					t.Fatalf("ready %v from the cache dir, want %v", got, tt.want)
				}
			})
		})
	}
}

// The directory must be this process's user's, and writable by no one else
// unless it is sticky (then others cannot rename or remove its files, and
// what they add is not trusted): otherwise another user could put any file
// there, or swap two providers' files.
func TestCacheDirOnlyOursIsUsed(t *testing.T) {
	tests := []struct {
		name  string
		root  bool
		mode  os.FileMode
		owner int // 0: ours
		want  bool
	}{
		{name: "ours, 0700", mode: 0o700, want: true},
		{name: "ours, 0755", mode: 0o755, want: true},
		{name: "ours, sticky 1777", mode: 0o777 | os.ModeSticky, want: true},
		{name: "ours, 0777", mode: 0o777},
		{name: "ours, group-writable 0770", mode: 0o770},
		{name: "another user's, sticky 1777", root: true, mode: 0o777 | os.ModeSticky, owner: otherUID},
		{name: "another user's, 0700", root: true, mode: 0o700, owner: otherUID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				needRoot(t)
			}
			synctest.Test(t, func(t *testing.T) {
				plant := func(p string) {
					dir := filepath.Dir(p)
					must(t, os.Chmod(dir, tt.mode))
					if tt.owner != 0 {
						must(t, os.Chown(dir, tt.owner, tt.owner))
					}
				}
				if got := readyFromCache(t, Config{Name: "a"}, Config{Name: "a"}, plant); got != tt.want {
					t.Fatalf("ready %v from the cache dir, want %v", got, tt.want)
				}
			})
		})
	}
}

// A FIFO under the cache file's name neither blocks the start (the source
// goes on to fetch) nor its stop. It runs on the real clock: a goroutine
// blocked opening a FIFO is not idle to synctest.
func TestCacheFIFODoesNotBlock(t *testing.T) {
	idp := newIdP()
	idp.SetFault(issuer.Fail)
	s := New(Config{Name: "a", Issuer: idp.URL, URL: idp.JWKSURL(), CacheDir: t.TempDir(), Client: &http.Client{Transport: handlerTransport{idp}}})
	p := s.cachePath()
	must(t, syscall.Mkfifo(p, 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		// A reader blocked in open is let go by a writer, so that a failing
		// run ends.
		if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		<-done
	})
	deadline := time.Now().Add(5 * time.Second)
	for s.Status().Fetches == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no fetch within 5s: the start is stuck on the FIFO")
		}
		time.Sleep(time.Millisecond)
	}
	if s.Ready() {
		t.Fatal("ready from a FIFO")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of its stop")
	}
}

// A FIFO as the key file is refused at each read, without waiting for a
// writer: the fetch ends, and so does the source at its stop.
func TestKeyFileFIFODoesNotBlock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys.json")
	must(t, syscall.Mkfifo(p, 0o600))
	s := New(Config{Name: "a", Issuer: "https://idp.test", File: p})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close() // lets a reader blocked in open go, so that a failing run ends
		}
		<-done
	})
	deadline := time.Now().Add(5 * time.Second)
	for s.Status().Fetches == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no read of the key file over within 5s: it is stuck on the FIFO")
		}
		time.Sleep(time.Millisecond)
	}
	if st := s.Status(); st.Ready || st.LastError == "" {
		t.Fatalf("a FIFO as the key file: %+v", st)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of its stop")
	}
}
