package jwks

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// refusedAddr returns a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// fetchOnce makes one attempt of s as Run would, and returns its error.
func fetchOnce(s *Source) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	return s.fetch(ctx, nil)
}

// A URL's query and user info may hold a secret (an API key): no error,
// status or log line may show them, whatever way the fetch fails.
func TestFailuresDoNotShowTheURLsSecrets(t *testing.T) {
	addr := refusedAddr(t)
	tests := []struct {
		name        string
		url, issuer string
		wantErr     error
	}{
		{name: "refused, secret in the query", url: "http://" + addr + "/jwks.json?api_key=SECRET", wantErr: syscall.ECONNREFUSED},
		{name: "refused, secret in the user info", url: "http://user:SECRET@" + addr + "/jwks.json", wantErr: syscall.ECONNREFUSED},
		{name: "discovery refused", issuer: "http://user:SECRET@" + addr, wantErr: ErrDiscovery},
		{name: "unparsable URL", url: "http://" + addr + "/jwks.json?api_key=SECRET\x7f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := New(Config{Name: "t", Issuer: tt.issuer, URL: tt.url, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			err := fetchOnce(s)
			if err == nil {
				t.Fatal("the fetch succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			st := s.Status()
			for what, text := range map[string]string{"error": err.Error(), "status URL": st.URL, "status error": st.LastError, "logs": logs.String()} {
				if strings.Contains(text, "SECRET") {
					t.Errorf("the %s shows the secret: %s", what, text)
				}
			}
			t.Logf("error: %v; status URL %q", err, st.URL)
		})
	}
}

func TestTimeoutDoesNotShowTheURLsSecrets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		idp.SetFault(issuer.Hang)
		s := New(Config{Name: "t", URL: idp.JWKSURL() + "?api_key=SECRET", Timeout: time.Second, Client: &http.Client{Transport: handlerTransport{idp}}})
		err := fetchOnce(s)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if strings.Contains(err.Error(), "SECRET") || strings.Contains(s.Status().URL, "SECRET") {
			t.Fatalf("the secret shows: %v, %q", err, s.Status().URL)
		}
	})
}

// The cache file belongs to a provider's name and to where its keys come
// from: a provider whose URL, issuer or file changed, or another whose name
// sanitises to the same, starts without the saved set.
func TestCacheFileIsNotSharedWithAnotherSource(t *testing.T) {
	const jwksURL = "https://idp.test/jwks.json" // newIdP's
	tests := []struct {
		name string
		next Config
		want bool // ready from the cached set
	}{
		{name: "the same provider", next: Config{Name: "a b"}, want: true},
		{name: "its jwks_url changed", next: Config{Name: "a b", URL: "https://idp.test/v2/jwks.json"}},
		{name: "its issuer changed", next: Config{Name: "a b", Issuer: "https://other.test", URL: jwksURL}},
		{name: "a name that sanitises alike", next: Config{Name: "a_b"}},
		{name: "a name that sanitises alike, after a slash", next: Config{Name: "a/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				if got := readyFromCache(t, Config{Name: "a b"}, tt.next, nil); got != tt.want {
					t.Fatalf("ready %v from the cache dir, want %v", got, tt.want)
				}
			})
		})
	}
}

// A saved set is not loaded when it is older than CacheMaxAge (the IdP may
// have withdrawn its keys long ago), nor when others than its owner may
// write it (jwtauthz writes it 0600).
func TestCacheFileTooOldOrWritableIsNotLoaded(t *testing.T) {
	tests := []struct {
		name  string
		touch func(t *testing.T, path string)
		want  bool
	}{
		{name: "a day old", touch: func(t *testing.T, p string) { age(t, p, 24*time.Hour) }, want: true},
		{name: "older than the max age", touch: func(t *testing.T, p string) { age(t, p, DefaultCacheMaxAge+time.Hour) }},
		{name: "group-writable", touch: func(t *testing.T, p string) {
			if err := os.Chmod(p, 0o620); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				touch := func(p string) { tt.touch(t, p) }
				if got := readyFromCache(t, Config{Name: "a"}, Config{Name: "a"}, touch); got != tt.want {
					t.Fatalf("ready %v from the cache dir, want %v", got, tt.want)
				}
			})
		})
	}
}

// readyFromCache runs a source of first with a cache dir until it has
// saved its set, calls saved (if not nil) with the file's path, makes the
// IdP fail, and reports whether a source of next with the same dir is
// ready from the saved set alone. It runs inside a synctest bubble.
func readyFromCache(t *testing.T, first, next Config, saved func(path string)) bool {
	t.Helper()
	idp := newIdP()
	dir := t.TempDir()
	first.CacheDir, next.CacheDir = dir, dir
	s, _ := run(t, idp, first)
	awaitReady(s)
	synctest.Wait() // the save is done
	if saved != nil {
		files, err := filepath.Glob(filepath.Join(dir, "*.jwks.json"))
		if err != nil || len(files) != 1 {
			t.Fatalf("cache files %v (%v)", files, err)
		}
		saved(files[0])
	}
	idp.SetFault(issuer.Fail)
	second, _ := run(t, idp, next)
	synctest.Wait() // no time has passed: no retry could have succeeded
	return second.Ready()
}

// age sets the times of the file at p to d before now (the bubble's clock,
// which the sources read).
func age(t *testing.T, p string, d time.Duration) {
	t.Helper()
	at := time.Now().Add(-d)
	if err := os.Chtimes(p, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestCacheFileName(t *testing.T) {
	long := strings.Repeat("x", 300)
	s := New(Config{Name: long + "/../..", CacheDir: "/c"})
	p := s.cachePath()
	if filepath.Dir(p) != "/c" || len(filepath.Base(p)) > 100 {
		t.Fatalf("cache path %q", p)
	}
}

// A discovered jwks_uri that answers 200 with something that is not a
// usable key set is forgotten like one that fails: discovery is done again.
func TestDiscoveryAgainAfterAnUnusableAnswer(t *testing.T) {
	for _, fault := range []struct {
		name  string
		fault issuer.Fault
	}{{"garbage", issuer.Garbage}, {"empty set", issuer.Empty}} {
		t.Run(fault.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				idp := newIdP()
				s := discoverySource(t, idp, "https://idp.test")
				awaitReady(s)
				idp.SetFault(fault.fault)
				time.Sleep(time.Hour + time.Minute)
				synctest.Wait()
				if n := idp.DiscoveryRequests(); n < 2 {
					t.Fatalf("%d discovery requests after a %s answer, want more than 1", n, fault.name)
				}
			})
		})
	}
}

func TestCacheMaxAge(t *testing.T) {
	tests := []struct {
		header string
		want   time.Duration
	}{
		{header: "public, max-age=300", want: 300 * time.Second},
		{header: "max-age=0", want: 0},
		{header: "max-age=-5", want: 0},
		{header: "max-age=x", want: 0},
		{header: "max-age=31536000", want: maxMaxAge},
		// Seconds whose nanoseconds overflow to a few hundred milliseconds.
		{header: "max-age=18446744074", want: maxMaxAge},
		{header: "max-age=9223372036854775807", want: maxMaxAge},
		{header: "max-age=99999999999999999999", want: 0}, // not an int64
	}
	for _, tt := range tests {
		h := http.Header{"Cache-Control": {tt.header}}
		if got := cacheMaxAge(h); got != tt.want {
			t.Errorf("%q: %v, want %v", tt.header, got, tt.want)
		}
	}
}

// hookHandler calls on for every log record.
type hookHandler struct{ on func(slog.Record) }

func (h hookHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h hookHandler) Handle(_ context.Context, r slog.Record) error {
	h.on(r)
	return nil
}
func (h hookHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h hookHandler) WithGroup(string) slog.Handler      { return h }

// A check that misses a new kid just before the refresh that brings it is
// published joins that refresh, rather than meeting the cooldown.
func TestRefreshJustBeforeThePublishJoinsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		var armed atomic.Pointer[Source]
		joined := make(chan bool, 1)
		hook := func(r slog.Record) {
			s := armed.Load()
			if r.Message != "jwks: key set changed" || s == nil {
				return
			}
			// The set is being published: a check that looked the kid up a
			// moment ago asks for a refresh now.
			go func() { joined <- s.Refresh(context.Background()) }()
			synctest.Wait()
		}
		s, _ := run(t, idp, Config{Refresh: time.Hour, MinRefresh: 30 * time.Second, Logger: slog.New(hookHandler{hook})})
		awaitReady(s)
		armed.Store(s)
		next := issuer.MustSigner("ES256")
		idp.Publish(next, idp.Signing())
		if !s.Refresh(context.Background()) {
			t.Fatal("the unknown-kid refresh failed")
		}
		if !<-joined {
			t.Fatal("a check during the publish was refused by the cooldown")
		}
		if _, _, ok := s.Key(next.KID); !ok {
			t.Fatal("the new key is not in the set")
		}
	})
}

// An unchanged key file keeps its snapshot, but it was read: the keys'
// age is that of the last good read.
func TestUnchangedFileCountsAsFetched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys.json")
		if err := os.WriteFile(path, doc(jwkJSON(t, issuer.MustSigner("ES256").JWK())), 0o600); err != nil {
			t.Fatal(err)
		}
		s, a := run(t, newIdP(), Config{File: path})
		awaitReady(s)
		first := s.Keys()
		time.Sleep(10 * FilePoll)
		synctest.Wait()
		st := s.Status()
		if s.Keys() != first || a.count() < 5 {
			t.Fatalf("%d reads; snapshot kept %v", a.count(), s.Keys() == first)
		}
		if age := time.Since(st.KeysFetched); age > FilePoll {
			t.Fatalf("keys %v old after %d good reads of the file, want ≤ %v", age, a.count(), FilePoll)
		}
		os.Remove(path)
		time.Sleep(10 * FilePoll)
		if age := time.Since(s.Status().KeysFetched); age < 9*FilePoll {
			t.Fatalf("keys %v old after failed reads: a failure renewed them", age)
		}
	})
}
