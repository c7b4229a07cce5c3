package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// scenario is one kind of traffic against one server process.
type scenario struct {
	Name   string `json:"name"`
	About  string `json:"about"`
	Server string `json:"server"` // key of the process it drives
	Floor  string `json:"floor"`  // the scenario its ratios are taken to; "" for a floor
	Alg    string `json:"alg,omitempty"`
	pick   picker
}

// Server processes.
const (
	srvFloor    = "floor"
	srvMain     = "jwtauthz"      // scenario a: one cached token, the default cache size
	srvPool     = "jwtauthz-pool" // scenario b: a cache as large as the pool
	srvNew      = "jwtauthz-new"  // scenario c: a small cache the token pool is far larger than
	srvFloorUDS = "floor-uds"
	srvMainUDS  = "jwtauthz-uds"
)

// tokens are the pre-minted tokens of every scenario.
type tokens struct {
	one          string   // (a)
	pool         []string // (b)
	newES, newRS []string // (c)
	opaque       []string // (d)
}

// scenarios returns every scenario, the Unix-socket ones if uds.
func scenarios(t *tokens, uds bool) []*scenario {
	s := []*scenario{
		{Name: "floor", About: "no-op Authorization server, grpc-go default options, TCP", Server: srvFloor, pick: oneToken(t.one)},
		{Name: "a-cached", About: "one cached ES256 token", Server: srvMain, Floor: "floor", pick: oneToken(t.one)},
		{Name: "b-pool", About: fmt.Sprintf("%d cached ES256 tokens, picked uniformly", len(t.pool)), Server: srvPool, Floor: "floor", pick: uniform(t.pool)},
		{Name: "c-new-ES256", About: "every token new, ES256", Server: srvNew, Floor: "floor", Alg: "ES256", pick: &cycle{pool: t.newES}},
		{Name: "c-new-RS256", About: "every token new, RS256 (2048)", Server: srvNew, Floor: "floor", Alg: "RS256", pick: &cycle{pool: t.newRS}},
		{Name: "d-opaque", About: fmt.Sprintf("%d cached opaque tokens of an introspection provider, picked uniformly", len(t.opaque)), Server: srvOpaque, Floor: "floor", pick: uniform(t.opaque)},
	}
	if uds {
		s = append(s,
			&scenario{Name: "floor-uds", About: "the floor over a Unix socket", Server: srvFloorUDS, pick: oneToken(t.one)},
			&scenario{Name: "a-cached-uds", About: "one cached ES256 token over a Unix socket", Server: srvMainUDS, Floor: "floor-uds", pick: oneToken(t.one)},
		)
	}
	return s
}

// selectScenarios keeps those named in list (comma-separated; "" keeps
// all), and the floors they are compared with.
func selectScenarios(all []*scenario, list string) ([]*scenario, error) {
	if list == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var out []*scenario
	for _, s := range all {
		if want[s.Name] {
			want[s.Floor] = true
		}
	}
	for _, s := range all {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	delete(want, "")
	for n := range want {
		return nil, fmt.Errorf("-scenarios: unknown scenario %q", n)
	}
	return out, nil
}

// step is one fixed-time run of the plan.
type step struct {
	round   int
	streams int
	sc      *scenario
}

// plan alternates the servers: in each round, for each stream count, the
// floor and every jwtauthz scenario run one after the other, the order
// reversed every other round so that a drift of the machine hits both
// sides alike.
func plan(scs []*scenario, streams []int, rounds int) []step {
	var steps []step
	for r := range rounds {
		order := slices.Clone(scs)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, n := range streams {
			for _, sc := range order {
				steps = append(steps, step{round: r + 1, streams: n, sc: sc})
			}
		}
	}
	return steps
}

// Run is the record of one fixed-time run.
type Run struct {
	Scenario string  `json:"scenario"`
	Streams  int     `json:"streams"`
	Round    int     `json:"round"`
	Checks   uint64  `json:"checks"`
	Denied   uint64  `json:"denied"`
	Errors   uint64  `json:"errors"`
	Seconds  float64 `json:"seconds"`
	Figures
	Tries int    `json:"tries"`
	Error string `json:"last_error,omitempty"`
}

// Figures are what a run measures, and what a cell takes the medians of.
type Figures struct {
	PerSecond  float64 `json:"checks_per_second"`
	P50        float64 `json:"p50_us"`
	P99        float64 `json:"p99_us"`
	P999       float64 `json:"p999_us"`
	ServerCPU  float64 `json:"server_cpu_us_per_check"`
	ServerUtil float64 `json:"server_cores"`
	ClientCPU  float64 `json:"client_cpu_us_per_check"`
	HitRate    float64 `json:"token_cache_hit_rate"` // -1: not a jwtauthz
	// OtherCores is the CPU the rest of the machine used during the run,
	// in cores: anything much above zero means the run was disturbed.
	OtherCores float64 `json:"other_cores"`
}

// measure runs l against srv for d (or until ctx ends) and reads the server's and this
// process's CPU time around it.
func measure(ctx context.Context, srv *server, l *load, d time.Duration) (Run, error) {
	h0, n0, herr := srv.cacheCounters()
	s0, err := srv.cpu()
	if err != nil {
		return Run{}, err
	}
	c0, _ := cpuTime("self")
	m0, _ := machineBusy()
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d)
	t := l.drive(ctx.Done())
	cancel()
	el := time.Since(t0)
	s1, err := srv.cpu()
	if err != nil {
		return Run{}, err
	}
	c1, _ := cpuTime("self")
	m1, _ := machineBusy()
	h1, n1, _ := srv.cacheCounters()
	r := summarize(t, el, s1-s0, c1-c0)
	r.OtherCores = max(0, (m1-m0-(s1-s0)-(c1-c0)).Seconds()/el.Seconds())
	r.HitRate = -1
	if herr == nil && srv.adminURL != "" && h1+n1 > h0+n0 {
		r.HitRate = float64(h1-h0) / float64(h1+n1-h0-n0)
	}
	return r, nil
}

func summarize(t *tally, el, server, client time.Duration) Run {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	r := Run{Checks: t.checks, Denied: t.denied, Errors: t.errored, Seconds: el.Seconds(),
		Figures: Figures{P50: us(t.hist.Quantile(0.50)), P99: us(t.hist.Quantile(0.99)), P999: us(t.hist.Quantile(0.999)),
			ServerUtil: server.Seconds() / el.Seconds()}}
	if t.lastErr != nil {
		r.Error = t.lastErr.Error()
	}
	if n := t.checks + t.denied + t.errored; n > 0 {
		r.PerSecond = float64(t.checks) / el.Seconds()
		r.ServerCPU = us(server) / float64(n)
		r.ClientCPU = us(client) / float64(n)
	}
	return r
}

// cacheCounters is tokenCache for a jwtauthz, zeros for a floor.
func (s *server) cacheCounters() (hits, misses uint64, err error) {
	if s.adminURL == "" {
		return 0, 0, nil
	}
	return s.tokenCache()
}
