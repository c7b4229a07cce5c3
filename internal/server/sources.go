package server

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
)

// sourceKey is what makes two providers' key sources the same: a reload
// keeps a source (and its keys) whose key is unchanged.
type sourceKey struct {
	name, issuer, url, file, headers, cacheDir string
	refresh, minRefresh, timeout               time.Duration
}

func keyOf(c jwks.Config) sourceKey {
	var hs []string
	for k, v := range c.Header {
		hs = append(hs, fmt.Sprint(k, v))
	}
	slices.Sort(hs)
	return sourceKey{name: c.Name, issuer: c.Issuer, url: c.URL, file: c.File, headers: fmt.Sprint(hs), cacheDir: c.CacheDir,
		refresh: c.Refresh, minRefresh: c.MinRefresh, timeout: c.Timeout}
}

type runningSource struct {
	src    *jwks.Source
	key    sourceKey
	cancel context.CancelFunc
	done   chan struct{}
}

// sources are the running key sources, one per provider, by name.
type sources struct {
	mu      sync.Mutex
	ctx     context.Context // sources run on it; nil until start
	running map[string]*runningSource
	intros  introspectors    // the introspection providers' clients (introspection.go)
	changed chan struct{}    // closed and replaced when the set changes
	tracer  jwks.FetchTracer // told of every source's fetches; nil: none
}

func newSources() *sources {
	return &sources{running: map[string]*runningSource{}, changed: make(chan struct{})}
}

// update makes the running set match want: a source whose configuration
// is unchanged is kept with its keys, a new or changed one is made (and
// started if the set runs), one no longer wanted is stopped. A changed
// source of the same issuer starts with the keys of the one it replaces,
// which is stopped first: its last fetch is over before its successor,
// which may use the same cache file, starts.
func (s *sources) update(want []jwks.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[string]*runningSource{}
	var fresh []*runningSource
	for _, c := range want {
		k := keyOf(c)
		if r := s.running[c.Name]; r != nil && r.key == k {
			next[c.Name] = r
			continue
		}
		c.Tracer = s.tracer
		r := &runningSource{src: jwks.New(c), key: k}
		fresh = append(fresh, r)
		next[c.Name] = r
	}
	for name, r := range s.running {
		if next[name] != r {
			r.stop()
		}
	}
	for _, r := range fresh {
		if old := s.running[r.src.Name()]; old != nil {
			r.src.Seed(old.src) // a no-op for another issuer
		}
		if s.ctx != nil {
			s.startLocked(r)
		}
	}
	s.running = next
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *sources) startLocked(r *runningSource) {
	ctx, cancel := context.WithCancel(s.ctx)
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		r.src.Run(ctx)
	}()
}

// start runs every source on ctx, and those added later too.
func (s *sources) start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx = ctx
	for _, r := range s.running {
		s.startLocked(r)
	}
}

// stop ends every source and waits for them.
func (s *sources) stop() {
	s.mu.Lock()
	rs := slices.Collect(maps.Values(s.running))
	s.mu.Unlock()
	for _, r := range rs {
		r.stop()
	}
}

// stop ends the source, if it runs, and waits for it.
func (r *runningSource) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
}

// list returns the sources, by provider name.
func (s *sources) list() []*jwks.Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := slices.Sorted(maps.Keys(s.running))
	out := make([]*jwks.Source, len(names))
	for i, n := range names {
		out[i] = s.running[n].src
	}
	return out
}

// keys returns the sources as the engine takes them.
func (s *sources) keys() map[string]authz.KeySource {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]authz.KeySource, len(s.running))
	for n, r := range s.running {
		out[n] = r.src
	}
	return out
}

// watch returns a channel closed at the next change of the set.
func (s *sources) watch() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}
