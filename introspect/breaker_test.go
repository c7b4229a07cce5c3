package introspect_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/introspect"
	"github.com/jwtauthz/jwtauthz/introspect/introspecttest"
)

func TestBreaker(t *testing.T) {
	s := introspecttest.New(t, introspecttest.Options{})
	clk := newClock()
	var obs observed
	c := clientFor(t, s, func(c *introspect.Config) { c.Now, c.Observe = clk.Now, obs.observe })
	tok := s.Issue(nil)
	ask := func() error { _, err := c.Introspect(context.Background(), tok); return err }
	s.Fail(http.StatusServiceUnavailable)
	for i := range introspect.DefaultBreakerThreshold {
		if err := ask(); !errors.Is(err, introspect.ErrUnavailable) || errors.Is(err, introspect.ErrBreakerOpen) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	step := func(name string, advance time.Duration, wantOpen bool, wantCalls int) {
		t.Helper()
		clk.Add(advance)
		err := ask()
		if errors.Is(err, introspect.ErrBreakerOpen) != wantOpen || !wantOpen && s.Calls() != wantCalls {
			t.Fatalf("%s: %v with %d calls; want open %v, %d calls", name, err, s.Calls(), wantOpen, wantCalls)
		}
		if wantOpen && (!errors.Is(err, introspect.ErrUnavailable) || obs.last() != introspect.OutcomeBreakerOpen || s.Calls() != wantCalls) {
			t.Fatalf("%s: %v, observed %q, %d calls", name, err, obs.last(), s.Calls())
		}
	}
	step("open", 0, true, 5)
	step("still open", introspect.DefaultBreakerCooldown-time.Millisecond, true, 5)
	step("failed probe", time.Millisecond, false, 6)
	step("open twice as long", introspect.DefaultBreakerCooldown, true, 6)
	step("second failed probe", introspect.DefaultBreakerCooldown, false, 7)
	step("open for 20 s", 19*time.Second, true, 7)
	step("third failed probe", time.Second, false, 8)
	step("open for the 30 s cap", 29*time.Second, true, 8)
	s.Fail(0)
	step("probe succeeds", time.Second, false, 9)
	if c.BreakerOpen() {
		t.Fatal("breaker still open after an answer")
	}
	step("closed", 0, false, 10)
	// Closed again, it takes the threshold again, and the first
	// cool-down again.
	s.Fail(http.StatusBadGateway)
	for range introspect.DefaultBreakerThreshold {
		ask()
	}
	step("reopened", 0, true, 15)
	step("first cool-down again", introspect.DefaultBreakerCooldown, false, 16)
}

func TestBreakerHalfOpenLetsOneProbe(t *testing.T) {
	s := introspecttest.New(t, introspecttest.Options{})
	clk := newClock()
	c := clientFor(t, s, func(c *introspect.Config) { c.Now, c.BreakerThreshold = clk.Now, 1 })
	tok := s.Issue(nil)
	s.Fail(http.StatusGatewayTimeout)
	if _, err := c.Introspect(context.Background(), tok); !errors.Is(err, introspect.ErrUnavailable) {
		t.Fatal(err)
	}
	s.Fail(0)
	clk.Add(introspect.DefaultBreakerCooldown)
	arrived := s.Hold()
	done := make(chan error)
	go func() { _, err := c.Introspect(context.Background(), tok); done <- err }()
	<-arrived
	if _, err := c.Introspect(context.Background(), tok); !errors.Is(err, introspect.ErrBreakerOpen) {
		t.Fatalf("a second call while the probe is out: %v", err)
	}
	s.Release()
	if err := <-done; err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got, err := c.Introspect(context.Background(), tok); err != nil || !introspect.Active(got) {
		t.Fatalf("after the probe: %v, %v", got, err)
	}
	if s.Calls() != 3 {
		t.Fatalf("%d calls, want 3", s.Calls())
	}
}

func TestBreakerIgnoresFailedAnswers(t *testing.T) {
	s := introspecttest.New(t, introspecttest.Options{})
	c := clientFor(t, s, func(c *introspect.Config) { c.BreakerThreshold = 1 })
	s.SetFault(introspecttest.FaultNotJSON)
	for range 3 {
		if _, err := c.Introspect(context.Background(), s.Issue(nil)); !errors.Is(err, introspect.ErrFailed) {
			t.Fatal(err)
		}
	}
	if c.BreakerOpen() || s.Calls() != 3 {
		t.Fatalf("breaker open %v after %d answers", c.BreakerOpen(), s.Calls())
	}
}
