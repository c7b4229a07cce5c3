package jwks

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// checkKey names a check's context in the fake tracer's records.
type checkKey struct{}

func check(name string) context.Context {
	return context.WithValue(context.Background(), checkKey{}, name)
}

func checkName(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	s, _ := ctx.Value(checkKey{}).(string)
	return s
}

// fetchTraces is a FetchTracer that keeps what it is told.
type fetchTraces struct {
	mu     sync.Mutex
	traces []*fetchTrace
}

type fetchTrace struct {
	owner    *fetchTraces
	provider string
	trigger  string   // the triggering check's name; "" scheduled
	joined   []string // the joiners' names, in order
	ended    *FetchResult
	late     bool // a Join after End
}

func (f *fetchTraces) StartFetch(ctx, trigger context.Context, provider string) (context.Context, FetchTrace) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tr := &fetchTrace{owner: f, provider: provider, trigger: checkName(trigger)}
	f.traces = append(f.traces, tr)
	return ctx, tr
}

func (t *fetchTrace) Join(ctx context.Context) {
	t.owner.mu.Lock()
	defer t.owner.mu.Unlock()
	t.late = t.late || t.ended != nil
	t.joined = append(t.joined, checkName(ctx))
}

func (t *fetchTrace) End(r FetchResult) {
	t.owner.mu.Lock()
	defer t.owner.mu.Unlock()
	if t.ended != nil {
		panic("End twice")
	}
	t.ended = &r
}

// all returns copies of the traces so far.
func (f *fetchTraces) all() []fetchTrace {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]fetchTrace, len(f.traces))
	for i, t := range f.traces {
		out[i] = *t
		out[i].joined = append([]string(nil), t.joined...)
	}
	return out
}

func TestFetchTracerHearsOfEveryFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		gate := make(chan struct{})
		gated := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-gate // the fetch takes until every check has asked for it
			idp.ServeHTTP(w, r)
		})
		ft := &fetchTraces{}
		s, _ := run(t, idp, Config{Name: "acme", Refresh: time.Hour, MinRefresh: time.Minute, Tracer: ft})
		awaitReady(s)

		// The first fetch is the schedule's: no trigger.
		first := ft.all()
		if len(first) != 1 || first[0].trigger != "" || first[0].ended == nil || first[0].provider != "acme" {
			t.Fatalf("after the first fetch: %+v", first)
		}
		if r := first[0].ended; r.Err != nil || r.Status != http.StatusOK || r.Keys != 1 || r.Triggered {
			t.Fatalf("first fetch ended with %+v, want ok, 200, 1 key, not triggered", r)
		}

		// An unknown kid: a triggers the fetch, b and c join it.
		s.cfg.Client.Transport = handlerTransport{gated}
		idp.Publish(issuer.MustSigner("ES256"), idp.Signing())
		var wg sync.WaitGroup
		wg.Go(func() { s.Refresh(check("a")) })
		synctest.Wait()
		wg.Go(func() { s.Refresh(check("b")) })
		synctest.Wait()
		wg.Go(func() { s.Refresh(check("c")) })
		synctest.Wait()
		close(gate)
		wg.Wait()
		synctest.Wait()
		all := ft.all()
		if len(all) != 2 {
			t.Fatalf("%d fetch traces, want 2", len(all))
		}
		tr := all[1]
		if tr.trigger != "a" || len(tr.joined) != 2 || tr.joined[0] != "b" || tr.joined[1] != "c" || tr.late {
			t.Fatalf("triggered fetch: trigger %q, joined %v (late %v); want a, [b c]", tr.trigger, tr.joined, tr.late)
		}
		if r := tr.ended; r == nil || r.Err != nil || r.Status != http.StatusOK || r.Keys != 2 || !r.Triggered {
			t.Fatalf("triggered fetch ended with %+v, want ok, 200, 2 keys, triggered", r)
		}

		// A failing IdP: the error and its status.
		idp.SetFault(issuer.Fail)
		time.Sleep(time.Minute) // past the cooldown
		s.Refresh(check("d"))
		synctest.Wait()
		all = ft.all()
		if r := all[len(all)-1].ended; r == nil || !errors.Is(r.Err, ErrHTTPStatus) || r.Status != http.StatusInternalServerError || r.Keys != 2 {
			t.Fatalf("failed fetch ended with %+v, want ErrHTTPStatus, 500, the 2 keys in use", r)
		}

		// A refused connection: no status.
		s.cfg.Client.Transport = roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("refused") })
		time.Sleep(time.Minute)
		s.Refresh(check("e"))
		synctest.Wait()
		all = ft.all()
		if r := all[len(all)-1].ended; r == nil || r.Err == nil || r.Status != 0 {
			t.Fatalf("unanswered fetch ended with %+v, want an error and status 0", r)
		}
	})
}

func TestFetchTracerSeesDiscoverysStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newIdP()
		ft := &fetchTraces{}
		down := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusBadGateway)
		})
		s := New(Config{Name: "d", Issuer: idp.URL, Client: &http.Client{Transport: handlerTransport{down}}, Tracer: ft})
		s.ctx = context.Background()
		<-s.start().done
		all := ft.all()
		if len(all) != 1 || all[0].ended == nil || !errors.Is(all[0].ended.Err, ErrDiscovery) || all[0].ended.Status != http.StatusBadGateway {
			t.Fatalf("discovery failure: %+v, want ErrDiscovery and 502", all)
		}
	})
}
