package jwks

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// handlerTransport hands requests straight to an http.Handler: an in-memory
// IdP for tests inside a synctest bubble, whose clock a real socket would
// keep from moving.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { t.h.ServeHTTP(rec, r); close(done) }()
	select {
	case <-done:
		return rec.Result(), nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

// attempts records when fetches happened and how they ended.
type attempts struct {
	mu   sync.Mutex
	at   []time.Time
	errs []error
}

func (a *attempts) observe(r FetchResult) {
	a.mu.Lock()
	a.at = append(a.at, time.Now())
	a.errs = append(a.errs, r.Err)
	a.mu.Unlock()
}

func (a *attempts) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

func (a *attempts) last() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.errs[len(a.errs)-1]
}

// gaps returns the time between consecutive attempts.
func (a *attempts) gaps() []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var g []time.Duration
	for i := 1; i < len(a.at); i++ {
		g = append(g, a.at[i].Sub(a.at[i-1]))
	}
	return g
}

// run starts a Source over an in-memory IdP inside the current bubble.
func run(t *testing.T, idp *issuer.Issuer, cfg Config) (*Source, *attempts) {
	t.Helper()
	return runSeeded(t, idp, cfg, nil)
}

// runSeeded is run with the source seeded from seed before it runs.
func runSeeded(t *testing.T, idp *issuer.Issuer, cfg Config, seed *Source) (*Source, *attempts) {
	t.Helper()
	a := &attempts{}
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.Issuer == "" {
		cfg.Issuer = idp.URL
	}
	if cfg.URL == "" && cfg.File == "" {
		cfg.URL = idp.JWKSURL()
	}
	cfg.Client = &http.Client{Transport: handlerTransport{idp}}
	cfg.Observe = a.observe
	s := New(cfg)
	s.Seed(seed)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, a
}

// awaitReady waits for the first key set and for the fetch that brought it
// to be over.
func awaitReady(s *Source) {
	<-s.ReadyC()
	synctest.Wait()
}

func newIdP(signers ...*issuer.Signer) *issuer.Issuer {
	if len(signers) == 0 {
		signers = []*issuer.Signer{issuer.MustSigner("ES256")}
	}
	return issuer.New("https://idp.test", signers...)
}

func TestStartRetriesWithBackoffUntilTheIdPAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		idp.SetFault(issuer.Fail)
		s, a := run(t, idp, Config{})
		time.Sleep(2 * time.Minute) // two minutes of outage at start
		if s.Ready() {
			t.Fatal("ready without keys")
		}
		gaps := a.gaps()
		if gaps[0] > time.Second {
			t.Errorf("first retry after %v, want ≤ 1s", gaps[0])
		}
		for i, g := range gaps {
			if g > maxRetry {
				t.Errorf("retry %d after %v, want ≤ %v", i+1, g, maxRetry)
			}
		}
		recovered := time.Now()
		idp.SetFault(issuer.OK)
		awaitReady(s)
		took := time.Since(recovered)
		if took > maxRetry {
			t.Errorf("ready %v after the IdP recovered, want ≤ %v", took, maxRetry)
		}
		t.Logf("outage of 2m at start: %d attempts, gaps %v; ready %v after recovery", a.count(), gaps, took)
	})
}

func TestFailedRefreshKeepsTheLastGoodSet(t *testing.T) {
	for _, fault := range []struct {
		name    string
		fault   issuer.Fault
		wantErr error
	}{
		{"500", issuer.Fail, ErrHTTPStatus},
		{"hang", issuer.Hang, context.DeadlineExceeded},
		{"garbage", issuer.Garbage, ErrMalformed},
		{"empty set", issuer.Empty, ErrNoUsableKey},
	} {
		t.Run(fault.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				idp := newIdP()
				kid := idp.Signing().KID
				s, a := run(t, idp, Config{Refresh: time.Hour, Timeout: 5 * time.Second})
				awaitReady(s)
				idp.SetFault(fault.fault)
				time.Sleep(time.Hour + time.Minute)
				synctest.Wait()
				if a.count() < 2 || !errors.Is(a.last(), fault.wantErr) {
					t.Fatalf("%d attempts, last error %v: the refresh should have failed with %v", a.count(), a.last(), fault.wantErr)
				}
				if _, _, ok := s.Key(kid); !ok {
					t.Fatal("a failed refresh dropped the keys")
				}
				st := s.Status()
				if !st.Ready || st.LastError == "" || st.Keys != 1 {
					t.Fatalf("status %+v: want ready with the error of the last attempt", st)
				}
				// It retries with backoff, not after another hour.
				n := a.count()
				time.Sleep(maxRetry + 6*time.Second)
				if a.count() <= n {
					t.Fatal("no retry within the backoff cap")
				}
				idp.SetFault(issuer.OK)
				time.Sleep(maxRetry + 6*time.Second)
				synctest.Wait()
				if st := s.Status(); st.LastError != "" {
					t.Fatalf("after recovery: %+v", st)
				}
			})
		})
	}
}

func TestScheduledRefreshPeriod(t *testing.T) {
	tests := []struct {
		name             string
		refresh, minimum time.Duration
		maxAge           int
		wantMin, wantMax time.Duration
	}{
		{name: "period with jitter", refresh: time.Hour, minimum: 30 * time.Second, wantMin: 54 * time.Minute, wantMax: time.Hour},
		{name: "max-age shortens it", refresh: time.Hour, minimum: 30 * time.Second, maxAge: 300, wantMin: 270 * time.Second, wantMax: 300 * time.Second},
		{name: "never below the minimum", refresh: time.Hour, minimum: 30 * time.Second, maxAge: 5, wantMin: 30 * time.Second, wantMax: 30 * time.Second},
		{name: "max-age longer than the period is ignored", refresh: time.Minute, minimum: 30 * time.Second, maxAge: 86400, wantMin: 54 * time.Second, wantMax: time.Minute},
		// Seconds whose nanoseconds overflow int64 to about 0.29 s.
		{name: "a huge max-age is ignored", refresh: time.Minute, minimum: 30 * time.Second, maxAge: 18446744074, wantMin: 54 * time.Second, wantMax: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				idp := newIdP()
				idp.SetMaxAge(tt.maxAge)
				_, a := run(t, idp, Config{Refresh: tt.refresh, MinRefresh: tt.minimum})
				time.Sleep(3*tt.wantMax + time.Second)
				for _, g := range a.gaps() {
					if g < tt.wantMin || g > tt.wantMax {
						t.Errorf("refreshed after %v, want within [%v, %v]", g, tt.wantMin, tt.wantMax)
					}
				}
				if len(a.gaps()) < 2 {
					t.Fatalf("only %d refreshes", len(a.gaps()))
				}
			})
		})
	}
}

func TestUnknownKIDRefreshIsSharedAndCooledDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		gate := make(chan struct{})
		gated := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-gate // the fetch takes until every check has asked for it
			idp.ServeHTTP(w, r)
		})
		s, a := run(t, idp, Config{Refresh: time.Hour, MinRefresh: 30 * time.Second})
		awaitReady(s)
		s.cfg.Client.Transport = handlerTransport{gated}
		before := a.count()
		newKey := issuer.MustSigner("ES256")
		idp.Publish(newKey, idp.Signing())

		// 100 checks with the new kid at once: one fetch, and all see it.
		var wg sync.WaitGroup
		got := make([]bool, 100)
		for i := range got {
			wg.Go(func() { got[i] = s.Refresh(context.Background()) })
		}
		synctest.Wait()
		close(gate)
		wg.Wait()
		for i, ok := range got {
			if !ok {
				t.Fatalf("waiter %d was denied the shared refresh", i)
			}
		}
		if n := a.count() - before; n != 1 {
			t.Fatalf("%d fetches for 100 concurrent unknown-kid checks, want 1", n)
		}
		if _, _, ok := s.Key(newKey.KID); !ok {
			t.Fatal("the new key is not in the set")
		}

		// Within the cooldown: denied at once, no fetch, no wait.
		start := time.Now()
		for range 1000 {
			if s.Refresh(context.Background()) {
				t.Fatal("a refresh within the cooldown")
			}
		}
		if time.Since(start) != 0 || a.count()-before != 1 {
			t.Fatalf("cooldown: waited %v, %d fetches", time.Since(start), a.count()-before)
		}
		time.Sleep(30 * time.Second)
		if !s.Refresh(context.Background()) || a.count()-before != 2 {
			t.Fatal("no refresh after the cooldown")
		}
	})
}

func TestScheduledRefreshDoesNotUseTheCooldown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		s, a := run(t, idp, Config{Refresh: time.Minute, MinRefresh: 10 * time.Minute})
		awaitReady(s)
		time.Sleep(2 * time.Minute) // scheduled refreshes happen
		synctest.Wait()
		if a.count() < 2 {
			t.Fatalf("%d fetches", a.count())
		}
		if !s.Refresh(context.Background()) {
			t.Fatal("scheduled refreshes used up the unknown-kid allowance")
		}
	})
}

func TestRefreshWaitEndsWithTheCallersContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		s, _ := run(t, idp, Config{Timeout: 5 * time.Second})
		awaitReady(s)
		idp.SetFault(issuer.Hang)
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		if s.Refresh(ctx) {
			t.Fatal("a hung fetch reported success")
		}
		if waited := time.Since(start); waited != 150*time.Millisecond {
			t.Fatalf("waited %v, want the caller's 150ms", waited)
		}
	})
}

func TestRotationAddsAndRemovesKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		old, next := issuer.MustSigner("RS256"), issuer.MustSigner("ES256")
		idp := newIdP(old)
		s, _ := run(t, idp, Config{})
		awaitReady(s)
		idp.Publish(next, old) // the new key appears beside the old
		s.Refresh(context.Background())
		if _, _, ok := s.Key(next.KID); !ok {
			t.Fatal("new key missing")
		}
		time.Sleep(time.Minute)
		idp.Publish(next) // the old key is withdrawn
		s.Refresh(context.Background())
		if _, _, ok := s.Key(old.KID); ok {
			t.Fatal("withdrawn key still served")
		}
	})
}

func TestDiscovery(t *testing.T) {
	t.Run("jwks_uri from the issuer's document", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp := newIdP()
			s := discoverySource(t, idp, "https://idp.test")
			awaitReady(s)
			if idp.DiscoveryRequests() != 1 || s.Status().URL != idp.JWKSURL() {
				t.Fatalf("%d discovery requests, URL %q", idp.DiscoveryRequests(), s.Status().URL)
			}
			time.Sleep(3 * time.Hour) // scheduled refreshes reuse the discovered URL
			if n := idp.DiscoveryRequests(); n != 1 {
				t.Fatalf("%d discovery requests after refreshes, want 1", n)
			}
			idp.SetFault(issuer.Fail) // a JWKS failure: discovery is done again
			time.Sleep(2 * time.Hour)
			idp.SetFault(issuer.OK)
			time.Sleep(15 * time.Second)
			synctest.Wait()
			if n := idp.DiscoveryRequests(); n < 2 {
				t.Fatalf("%d discovery requests after a JWKS failure, want more than 1", n)
			}
		})
	})
	t.Run("issuer must match", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp := newIdP()
			s := discoverySource(t, idp, "https://idp.test/") // trailing slash: a different issuer
			time.Sleep(time.Minute)
			if s.Ready() || s.Status().LastError == "" {
				t.Fatalf("ready with a discovery document for another issuer: %+v", s.Status())
			}
		})
	})
}

// An https issuer's keys are not fetched over plain http, whatever its
// discovery document says.
func TestDiscoveryRefusesAPlainHTTPJWKSURI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/openid-configuration") {
				w.Write([]byte(`{"issuer":"https://idp.test","jwks_uri":"http://idp.test/jwks.json"}`))
				return
			}
			idp.ServeHTTP(w, r)
		})
		s := New(Config{Name: "d", Issuer: "https://idp.test", Client: &http.Client{Transport: handlerTransport{h}}, Refresh: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go s.Run(ctx)
		time.Sleep(time.Minute)
		if st := s.Status(); st.Ready || !strings.Contains(st.LastError, "plain-http jwks_uri") {
			t.Fatalf("%+v", st)
		}
		if n := idp.JWKSRequests(); n != 0 {
			t.Fatalf("%d JWKS requests", n)
		}
	})
}

func discoverySource(t *testing.T, idp *issuer.Issuer, iss string) *Source {
	s := New(Config{Name: "d", Issuer: iss, Client: &http.Client{Transport: handlerTransport{idp}}, Refresh: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func TestFileSourceIsRereadWhenItChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := issuer.MustSigner("ES256"), issuer.MustSigner("EdDSA")
		path := filepath.Join(t.TempDir(), "keys.json")
		write := func(s *issuer.Signer) {
			if err := os.WriteFile(path, doc(jwkJSON(t, s.JWK())), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write(a)
		s, _ := run(t, newIdP(), Config{File: path})
		awaitReady(s)
		if _, _, ok := s.Key(a.KID); !ok {
			t.Fatal("key from the file missing")
		}
		write(b)
		time.Sleep(2 * FilePoll)
		if _, _, ok := s.Key(b.KID); !ok {
			t.Fatal("changed file not re-read")
		}
		os.Remove(path)
		time.Sleep(2 * FilePoll)
		if _, _, ok := s.Key(b.KID); !ok || s.Status().LastError == "" {
			t.Fatal("a missing file should keep the keys and report the error")
		}
	})
}

func TestCacheDirServesARestartDuringAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		idp := newIdP()
		first, _ := run(t, idp, Config{CacheDir: dir})
		awaitReady(first)
		idp.SetFault(issuer.Fail)
		second, _ := run(t, idp, Config{CacheDir: dir})
		synctest.Wait() // no time has passed: no retry could have succeeded
		if !second.Ready() {
			t.Fatal("a restart during an outage is not ready from the cached set")
		}
		if _, _, ok := second.Key(idp.Signing().KID); !ok {
			t.Fatal("cached key missing")
		}
	})
}

func TestProvidersRefreshIndependently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down, up := newIdP(), newIdP()
		down.SetFault(issuer.Fail)
		a, _ := run(t, down, Config{})
		b, bAttempts := run(t, up, Config{Refresh: time.Minute})
		time.Sleep(10 * time.Minute)
		if a.Ready() || !b.Ready() || bAttempts.count() < 5 {
			t.Fatalf("down ready %v, up ready %v with %d fetches", a.Ready(), b.Ready(), bAttempts.count())
		}
	})
}

func TestHTTPStatusAndBodyLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var body []byte
		status := http.StatusNotFound
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			w.Write(body)
		})
		s := New(Config{Name: "t", URL: "https://idp.test/jwks", Client: &http.Client{Transport: handlerTransport{h}}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s.mu.Lock()
		s.ctx = ctx
		s.mu.Unlock()
		if err := s.fetch(ctx, nil); err == nil {
			t.Fatal("404 accepted")
		}
		status, body = http.StatusOK, make([]byte, MaxBody+1)
		if err := s.fetch(ctx, nil); err == nil {
			t.Fatal("body over the limit accepted")
		}
	})
}

// A source that replaces one of the same provider and issuer starts with its
// keys: ready at once, it serves them through an outage until its own first
// fetch succeeds.
func TestSeedKeepsTheReplacedSourcesKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		old, _ := run(t, idp, Config{})
		awaitReady(old)
		kid := idp.Signing().KID
		idp.SetFault(issuer.Fail)

		other := New(Config{Name: "test", Issuer: "https://other.test", URL: idp.JWKSURL()})
		other.Seed(old)
		if other.Ready() {
			t.Fatal("keys were carried over to another issuer")
		}

		next, a := runSeeded(t, idp, Config{Refresh: time.Hour}, old)
		if !next.Ready() {
			t.Fatal("the replacing source is not ready at once")
		}
		time.Sleep(time.Minute) // its fetches fail
		synctest.Wait()
		if _, _, ok := next.Key(kid); !ok || a.count() < 2 || a.last() == nil {
			t.Fatalf("key kept %v after %d failed fetches", ok, a.count())
		}
		if st := next.Status(); !st.Ready || st.LastError == "" || !st.KeysFetched.Equal(old.Status().KeysFetched) {
			t.Fatalf("status %+v: want ready, the error, and the old keys' time", st)
		}
		rotated := issuer.MustSigner("ES256")
		idp.Publish(rotated)
		idp.SetFault(issuer.OK)
		time.Sleep(maxRetry + time.Second)
		synctest.Wait()
		if _, _, ok := next.Key(rotated.KID); !ok {
			t.Fatal("the first good fetch did not replace the seeded set")
		}
	})
}

// Run returns only once its fetch is over, so that a stopped source never
// publishes or writes its cache file after.
func TestRunWaitsForItsFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		gate := make(chan struct{})
		slow := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			<-gate // a fetch that does not heed its context
			return handlerTransport{idp}.RoundTrip(r.WithContext(context.Background()))
		})
		var a attempts
		s := New(Config{Name: "t", URL: idp.JWKSURL(), Client: &http.Client{Transport: slow}, CacheDir: t.TempDir(), Observe: a.observe})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		time.Sleep(time.Second)
		cancel()
		go func() { time.Sleep(time.Second); close(gate) }()
		<-done
		if a.count() != 1 {
			t.Fatal("Run returned with its fetch under way")
		}
		if s.Refresh(context.Background()) {
			t.Fatal("a refresh after Run returned")
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A zero duration of Config is its default: none of them can be off.
func TestZeroDurationsAreTheDefaults(t *testing.T) {
	s := New(Config{Name: "t"})
	tests := []struct {
		name      string
		got, want time.Duration
	}{
		{name: "Refresh", got: s.cfg.Refresh, want: DefaultRefresh},
		{name: "MinRefresh", got: s.cfg.MinRefresh, want: DefaultMinRefresh},
		{name: "Timeout", got: s.cfg.Timeout, want: DefaultTimeout},
		{name: "CacheMaxAge", got: s.cfg.CacheMaxAge, want: DefaultCacheMaxAge},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// A negative duration is an error naming it: Run returns it at once, the
// source never has keys nor fetches, and its status shows why.
func TestNegativeDurationIsAnError(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "Refresh", cfg: Config{Refresh: -time.Second}},
		{name: "MinRefresh", cfg: Config{MinRefresh: -time.Second}},
		{name: "Timeout", cfg: Config{Timeout: -time.Second}},
		{name: "CacheMaxAge", cfg: Config{CacheMaxAge: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idp := newIdP()
			cfg := tt.cfg
			cfg.Name, cfg.Issuer, cfg.URL = "t", idp.URL, idp.JWKSURL()
			cfg.Client = &http.Client{Transport: handlerTransport{idp}}
			s := New(cfg)
			err := s.Run(context.Background())
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.name) {
				t.Fatalf("Run: %v, want ErrConfig naming %s", err, tt.name)
			}
			if s.Refresh(context.Background()) || s.Ready() || idp.JWKSRequests() != 0 {
				t.Fatal("a source with a bad config fetched")
			}
			if st := s.Status(); !strings.Contains(st.LastError, tt.name) {
				t.Fatalf("status %+v does not say why", st)
			}
		})
	}
}

// A Refresh that joins a scheduled fetch under way, which hangs, waits no
// longer than its caller's context, and starts no fetch of its own.
func TestRefreshJoiningAHungScheduledFetchEndsWithTheCallersContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		s, _ := run(t, idp, Config{Refresh: time.Minute, Timeout: time.Hour})
		awaitReady(s)
		idp.SetFault(issuer.Hang)
		time.Sleep(time.Minute) // the scheduled fetch has started, and hangs
		synctest.Wait()
		before := idp.JWKSRequests()
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		if s.Refresh(ctx) {
			t.Fatal("a hung fetch reported success")
		}
		if waited := time.Since(start); waited != 150*time.Millisecond {
			t.Fatalf("waited %v, want the caller's 150ms", waited)
		}
		if n := idp.JWKSRequests(); n != before || n != 2 {
			t.Fatalf("%d JWKS requests, want 2 (the first, the scheduled one): Refresh joined the one under way", n)
		}
	})
}
