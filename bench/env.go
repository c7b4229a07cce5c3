package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// tokenTTL is the life of every minted token, and cacheTTL that of a cached
// one: longer than any run, so that no cached token expires in the middle
// of the measurements.
const (
	tokenTTL = 3 * time.Hour
	cacheTTL = 2 * time.Hour
	// newCache is the token cache of the server of scenario c: far smaller
	// than its token pools, so that a token has been evicted long before it
	// comes round again.
	newCache = 1024
)

// env is everything a harness run has set up: the jwtauthz binary, the
// test IdP, the tokens, the request and the server processes.
type env struct {
	ctx      context.Context // ends on SIGINT or SIGTERM
	o        *options
	bin, tmp string
	idp      *issuer.Server
	opaque   *opaqueIdP // scenario d's introspection endpoint
	es, rs   *issuer.Signer
	toks     *tokens
	verify   map[string]float64 // µs of CPU per bare signature verification, by alg: the median of
	// verifyRuns, the tries
	verifyRuns map[string][]float64
	template   *authv3.CheckRequest
	servers    map[string]*server
	conns      map[string][]*grpc.ClientConn
}

func newEnv(ctx context.Context, o *options, tmp string) (*env, error) {
	e := &env{ctx: ctx, o: o, tmp: tmp, servers: map[string]*server{}, conns: map[string][]*grpc.ClientConn{},
		verify: map[string]float64{}, verifyRuns: map[string][]float64{}}
	var err error
	if e.template, err = loadTemplate(o.request); err != nil {
		return nil, err
	}
	root, _ := moduleRoot()
	t0 := time.Now()
	if e.bin, err = buildJwtauthz(root, tmp); err != nil {
		return nil, err
	}
	fmt.Printf("built jwtauthz in %.1fs\n", time.Since(t0).Seconds())
	e.es, e.rs = issuer.MustSigner("ES256"), issuer.MustSigner("RS256")
	e.idp = issuer.NewServer(e.es, e.rs)
	e.opaque = newOpaqueIdP()
	if err := e.measureVerify(); err != nil {
		e.close()
		return nil, err
	}
	if err := e.ctx.Err(); err != nil {
		e.close()
		return nil, err
	}
	if err := e.mintAll(); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// measureVerify times the bare signature verifications while the machine
// is otherwise idle. It runs once before the load and again at the start of
// every later round; the median of the tries is the yardstick, since the
// speed of these two virtual cores drifts.
func (e *env) measureVerify() error {
	for _, s := range []*issuer.Signer{e.es, e.rs} {
		tok, err := s.Sign(claims(e.idp.URL, "verify", 0, time.Now(), tokenTTL))
		if err != nil {
			return err
		}
		if e.o.idle > 0 {
			waitIdle(e.ctx, e.o.idle, e.o.idleWait)
		}
		d, err := bareVerify(s, tok)
		if err != nil {
			return fmt.Errorf("bare %s verification: %w", s.Alg, err)
		}
		us := float64(d) / float64(time.Microsecond)
		e.verifyRuns[s.Alg] = append(e.verifyRuns[s.Alg], us)
		e.verify[s.Alg] = median(e.verifyRuns[s.Alg])
		fmt.Fprintf(os.Stderr, "bare %s signature verification: %.1f µs CPU\n", s.Alg, us)
	}
	return nil
}

func (e *env) mintAll() error {
	t0 := time.Now()
	t := &tokens{}
	one, err := mint(e.es, e.idp.URL, "one", 1, tokenTTL)
	if err != nil {
		return err
	}
	t.one = one[0]
	if t.pool, err = mint(e.es, e.idp.URL, "pool", e.o.pool, tokenTTL); err != nil {
		return err
	}
	if t.newES, err = mint(e.es, e.idp.URL, "newes", e.o.newPool, tokenTTL); err != nil {
		return err
	}
	if t.newRS, err = mint(e.rs, e.idp.URL, "newrs", e.o.newPool, tokenTTL); err != nil {
		return err
	}
	t.opaque = e.opaque.issue(e.o.pool)
	e.toks = t
	fmt.Printf("minted %d ES256 and %d RS256 tokens in %.1fs (ES256 token: %d bytes)\n",
		1+len(t.pool)+len(t.newES), len(t.newRS), time.Since(t0).Seconds(), len(t.one))
	return nil
}

// server returns the process name, starting it and its connections on
// first use.
func (e *env) server(name string) (*server, []*grpc.ClientConn, error) {
	if s := e.servers[name]; s != nil {
		return s, e.conns[name], nil
	}
	s, err := e.start(name)
	if err != nil {
		return nil, nil, err
	}
	e.servers[name] = s
	ccs, err := dialAll(s.target, e.o.conns)
	if err != nil {
		return nil, nil, err
	}
	e.conns[name] = ccs
	return s, ccs, nil
}

func (e *env) start(name string) (*server, error) {
	tcp, err := freeAddr()
	if err != nil {
		return nil, err
	}
	sock := func(f string) string { return "unix://" + filepath.Join(e.tmp, f) }
	o := jwtauthzOpts{name: name, grpcAddr: tcp, issuer: e.idp.URL, jwksURL: e.idp.JWKSURL(), cacheTTL: cacheTTL}
	if e.o.gomaxprocs > 0 {
		// env(1) execs jwtauthz: the pid whose CPU is read stays its.
		o.wrap = []string{"env", "GOMAXPROCS=" + strconv.Itoa(e.o.gomaxprocs)}
	}
	switch name {
	case srvFloor:
		return startFloor(name, e.o.results, tcp)
	case srvFloorUDS:
		return startFloor(name, e.o.results, sock("floor.sock"))
	case srvMain:
		o.cacheSize = 100_000 // the default of --cache-size
	case srvPool:
		o.cacheSize = e.o.pool + 1024
	case srvNew:
		o.cacheSize = newCache
	case srvOpaque:
		if o.config, err = e.opaque.config(e.tmp); err != nil {
			return nil, err
		}
		o.cacheSize = e.o.pool + 1024
	case srvMainUDS:
		o.grpcAddr, o.cacheSize = sock("jwtauthz.sock"), newCache
	case srvMem:
		// The cache is sharded and each shard holds its share of the
		// capacity; 5% more than the tokens keeps the fullest shard from
		// evicting.
		n := slices.Max(e.o.memSizes)
		o.cacheSize = n + n/20 + 1024
	default:
		return nil, fmt.Errorf("no server %q", name)
	}
	return startJwtauthz(e.bin, e.o.results, o)
}

// close stops every process the harness started.
func (e *env) close() {
	for name, s := range e.servers {
		closeAll(e.conns[name])
		s.stop()
	}
	if e.idp != nil {
		e.idp.Close()
	}
	if e.opaque != nil {
		e.opaque.Close()
	}
}

// fill sends every token of toks once, over streams streams, and fails
// unless each was allowed.
func (e *env) fill(name string, toks []string, streams int, noRequestID bool) error {
	_, ccs, err := e.server(name)
	if err != nil {
		return err
	}
	l := &load{conns: ccs, template: e.template, streams: streams, timeout: 10 * time.Second,
		pick: &cycle{pool: toks, limit: uint64(len(toks))}, noRequestID: noRequestID}
	t := l.drive(e.ctx.Done())
	if err := e.ctx.Err(); err != nil {
		return err
	}
	if t.checks != uint64(len(toks)) {
		return fmt.Errorf("filling %s: %d of %d allowed, %d denied, %d failed: %v", name, t.checks, len(toks), t.denied, t.errored, t.lastErr)
	}
	return nil
}

// loadRuns runs the plan of fixed-time runs and prints the table.
func (e *env) loadRuns(res *Results) error {
	scs, err := selectScenarios(scenarios(e.toks, e.o.uds), e.o.scenarios)
	if err != nil {
		return err
	}
	res.Scenarios = scs
	if err := e.prepare(scs); err != nil {
		return err
	}
	steps := plan(scs, e.o.streams, e.o.rounds)
	fmt.Printf("%d runs of %s: about %s\n", len(steps), e.o.duration, time.Duration(len(steps))*e.o.duration)
	for i, st := range steps {
		if err := e.ctx.Err(); err != nil {
			return err
		}
		if i > 0 && st.round != steps[i-1].round {
			if err := e.measureVerify(); err != nil {
				return err
			}
		}
		r, err := e.quietRun(st.sc, st.streams)
		if err != nil {
			return err
		}
		r.Round = st.round
		res.Runs = append(res.Runs, r)
		fmt.Fprintf(os.Stderr, "[%3d/%d] round %d %-13s %2d streams: %7.0f/s p50 %6.0fµs p99 %6.0fµs cpu %6.1fµs/check%s others %.2f cores (try %d)%s\n",
			i+1, len(steps), r.Round, r.Scenario, r.Streams, r.PerSecond, r.P50, r.P99, r.ServerCPU, hits(r), r.OtherCores, r.Tries, failures(r))
	}
	res.Verify, res.VerifyRuns = e.verify, e.verifyRuns
	res.Summary = summarizeRuns(scs, e.o.streams, res.Runs, e.verify)
	printTable(os.Stdout, res)
	if slices.ContainsFunc(scs, func(sc *scenario) bool { return sc.Name == "d-opaque" }) {
		res.IntrospectionCallsPerToken = e.opaque.callsPerToken()
		fmt.Printf("d-opaque: %d introspection calls for %d opaque tokens: %.3f per token (1 to fill the cache; more means the cache did not keep them)\n",
			e.opaque.calls.Load(), len(e.toks.opaque), res.IntrospectionCallsPerToken)
	}
	if e.o.profile != "" {
		return e.cpuProfiles(res)
	}
	return nil
}

func hits(r Run) string {
	if r.HitRate < 0 {
		return ""
	}
	return fmt.Sprintf(" hits %5.1f%%", 100*r.HitRate)
}

func failures(r Run) string {
	if r.Denied+r.Errors == 0 {
		return ""
	}
	return fmt.Sprintf(" DENIED %d FAILED %d: %s", r.Denied, r.Errors, r.Error)
}

// prepare starts the servers, fills the cache of scenario b and warms every
// scenario up for 3 s at the largest stream count: a fresh server's first
// seconds (heap growth, goroutine stacks) cost more than its steady state.
func (e *env) prepare(scs []*scenario) error {
	for _, sc := range scs {
		pool := map[string][]string{"b-pool": e.toks.pool, "d-opaque": e.toks.opaque}[sc.Name]
		if pool != nil {
			t0 := time.Now()
			if err := e.fill(sc.Server, pool, 16, false); err != nil {
				return err
			}
			fmt.Printf("filled %s with %d tokens in %.1fs\n", sc.Server, len(pool), time.Since(t0).Seconds())
		}
	}
	for _, sc := range scs {
		if _, err := e.run(sc, slices.Max(e.o.streams), 3*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// quietRun is one measured run of sc, on a machine as quiet as it can be
// had: each try waits for -idle first, and a run that the rest of the
// machine disturbed by more than -idle cores is tried again, up to -retries
// times; the least disturbed try counts.
func (e *env) quietRun(sc *scenario, streams int) (Run, error) {
	var best Run
	for try := 0; try <= e.o.retries; try++ {
		if e.o.idle > 0 {
			waitIdle(e.ctx, e.o.idle, e.o.idleWait)
		}
		r, err := e.run(sc, streams, e.o.duration)
		if err != nil {
			return r, err
		}
		r.Tries = try + 1
		if try == 0 || r.OtherCores < best.OtherCores {
			best = r
		}
		if e.o.idle <= 0 || r.OtherCores < e.o.idle {
			break
		}
	}
	return best, nil
}

// run is one fixed-time run of sc.
func (e *env) run(sc *scenario, streams int, d time.Duration) (Run, error) {
	srv, ccs, err := e.server(sc.Server)
	if err != nil {
		return Run{}, err
	}
	l := &load{conns: ccs, template: e.template, streams: streams, pick: sc.pick, timeout: e.o.timeout}
	r, err := measure(e.ctx, srv, l, d)
	r.Scenario, r.Streams = sc.Name, streams
	return r, err
}
