// Command bench is jwtauthz's end-to-end load harness. In one run
// on one machine it builds jwtauthz, starts it with a test IdP and, beside
// it, a no-op Authorization server with grpc-go's defaults (the floor),
// each in its own process; drives each over real gRPC with realistic
// CheckRequests at several stream counts, alternating them; and prints
// throughput, latency percentiles and server CPU per check (from
// /proc/<pid>/stat) with the ratios to the floor. -mem measures the memory
// per cached token.
//
//	go run -C bench .                 # the table, bench/results/{results.json,plot.svg}
//	go run -C bench . -uds -mem -out plot.svg
//
// It is a module of its own (bench/go.mod), so that the main module needs
// none of its dependencies. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	role, addr string // -role floor: serve the floor on addr
	alg        string // -role verify: verify a token of alg -checks times

	instructions bool // count instructions under callgrind instead of timing
	checks       int
	warm         int

	duration   time.Duration
	rounds     int
	streams    []int
	conns      int
	scenarios  string
	pool       int
	newPool    int
	timeout    time.Duration
	idle       float64
	idleWait   time.Duration
	retries    int
	uds        bool
	gomaxprocs int
	profile    string
	mem        bool
	memSizes   []int
	memStreams int
	settle     time.Duration
	request    string
	results    string
	out        string
	replot     string
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err == nil {
		switch {
		case o.role == "floor":
			err = runFloor(o.addr)
		case o.role == "verify":
			err = runVerify(o.alg, o.checks)
		case o.instructions:
			err = instructions(o)
		default:
			err = harness(o)
		}
	}
	if errors.Is(err, context.Canceled) {
		err = errors.New("interrupted; the servers are stopped")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.role, "role", "", `internal: "floor" serves the floor on -addr`)
	fs.StringVar(&o.addr, "addr", "", "internal: the floor's listen address, host:port or unix:///path")
	fs.StringVar(&o.alg, "alg", "ES256", `internal: the algorithm of -role verify`)
	fs.BoolVar(&o.instructions, "instructions", false, "run nothing timed: count each server's instructions per check under valgrind's callgrind (see bench/README.md)")
	fs.IntVar(&o.checks, "checks", 300, "-instructions: checks counted per server")
	fs.IntVar(&o.warm, "warm", 3000, "-instructions: checks per server before the counted ones")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of one fixed-time run")
	fs.IntVar(&o.rounds, "rounds", 3, "alternations: how many times every scenario runs at every stream count")
	streams := fs.String("streams", "1,16,64", "concurrent streams, comma-separated")
	fs.IntVar(&o.conns, "conns", 2, "gRPC connections the streams share, as Envoy keeps a few")
	fs.StringVar(&o.scenarios, "scenarios", "", "comma-separated subset: floor,a-cached,b-pool,c-new-ES256,c-new-RS256,d-opaque (with -uds also floor-uds,a-cached-uds); empty: all")
	fs.IntVar(&o.pool, "pool", 100_000, "tokens of scenario b")
	fs.IntVar(&o.newPool, "new-pool", 20_000, "tokens of each scenario c, cycled through a 1024-entry cache")
	fs.DurationVar(&o.timeout, "timeout", time.Second, "deadline of each Check, as Envoy sends one")
	fs.Float64Var(&o.idle, "idle", 0.2, "before each run, wait until the rest of the machine uses fewer cores than this (0: do not wait)")
	fs.DurationVar(&o.idleWait, "idle-wait", 30*time.Second, "longest wait for -idle before running anyway")
	fs.IntVar(&o.retries, "retries", 3, "runs again a run during which the rest of the machine used -idle cores or more, up to this many times")
	fs.BoolVar(&o.uds, "uds", false, "also run scenario a and the floor over Unix sockets")
	fs.IntVar(&o.gomaxprocs, "gomaxprocs", 0, "GOMAXPROCS of the harness's jwtauthz servers, e.g. 1 as kubernetes/sidecar sets it (0: Go's default; the floor always keeps it, and -instructions runs every server with 1)")
	fs.StringVar(&o.profile, "profile", "", "after the runs, take a 5 s CPU profile of the server of each of these scenarios (comma-separated, e.g. a-cached) at 16 streams into the results")
	fs.BoolVar(&o.mem, "mem", false, "measure memory per cached token (1M tokens take minutes)")
	memSizes := fs.String("mem-sizes", "100000,1000000", "cached-token counts of -mem, ascending")
	fs.IntVar(&o.memStreams, "mem-streams", 16, "streams that fill the cache in -mem")
	fs.DurationVar(&o.settle, "settle", 30*time.Second, "-mem: longest wait after the GCs for RSS to stop falling (Go's scavenger returns freed memory in the background)")
	fs.StringVar(&o.request, "request", "", "protojson CheckRequest with REPLACE_WITH_TOKEN (default testdata/checkrequest-browser.json)")
	fs.StringVar(&o.results, "results", "", "results directory (default bench/results)")
	fs.StringVar(&o.replot, "replot", "", "run nothing: print the tables of this results.json and redraw its plot")
	fs.StringVar(&o.out, "out", "", "also write the plot here, e.g. plot.svg (the committed one, in bench/)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if o.streams, err = ints(*streams); err != nil {
		return nil, fmt.Errorf("-streams: %w", err)
	}
	if o.memSizes, err = ints(*memSizes); err != nil {
		return nil, fmt.Errorf("-mem-sizes: %w", err)
	}
	if o.rounds < 1 || o.conns < 1 || o.pool < 1 || o.newPool < 1 || o.checks < 1 || o.warm < 0 || o.gomaxprocs < 0 {
		return nil, fmt.Errorf("-rounds, -conns, -pool, -new-pool and -checks must be positive, -warm and -gomaxprocs not negative")
	}
	return o, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// resultsAt finds the module's root, fills in o's defaults from it and
// makes the results directory.
func resultsAt(o *options) (root string, err error) {
	if root, err = moduleRoot(); err != nil {
		return "", err
	}
	o.defaults(root)
	return root, os.MkdirAll(o.results, 0o755)
}

// harness is the whole run but for the floor role.
func harness(o *options) error {
	root, err := resultsAt(o)
	if err != nil {
		return err
	}
	if o.replot != "" {
		return replot(o)
	}
	m := machine()
	rev := commit(root) // before the build: others may commit during the run
	fmt.Printf("machine: %s\njwtauthz: %s\n", m, rev)
	if m.ClkTck != strconv.Itoa(clockTicks) {
		fmt.Printf("warning: getconf CLK_TCK is %q, the harness assumes %d\n", m.ClkTck, clockTicks)
	}
	tmp, err := os.MkdirTemp("", "jwtauthz-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := newEnv(ctx, o, tmp)
	if err != nil {
		return err
	}
	defer e.close()
	res := &Results{Machine: m, Commit: rev, Options: o.record(), TokenBytes: len(e.toks.one)}
	if err := e.loadRuns(res); err != nil {
		return err
	}
	if o.mem {
		if res.Memory, err = e.memory(); err != nil {
			return err
		}
		printMemory(os.Stdout, res.Memory)
	}
	return res.write(o)
}

func (o *options) defaults(root string) {
	if o.request == "" {
		o.request = filepath.Join(root, "testdata", "checkrequest-browser.json")
	}
	if o.results == "" {
		o.results = filepath.Join(root, "bench", "results")
	}
}

// record is what the results file says of the options.
func (o *options) record() map[string]any {
	return map[string]any{"duration": o.duration.String(), "rounds": o.rounds, "streams": o.streams,
		"conns": o.conns, "pool": o.pool, "new_pool": o.newPool, "timeout": o.timeout.String(), "uds": o.uds,
		"idle": o.idle, "retries": o.retries, "gomaxprocs": o.gomaxprocs}
}

// moduleRoot is the jwtauthz checkout the harness builds from: the
// directory above the bench module's own go.mod.
func moduleRoot() (string, error) {
	gomod, err := goEnv("GOMOD")
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run the harness inside the jwtauthz bench module (go env GOMOD: %q, %v)", gomod, err)
	}
	root := filepath.Dir(filepath.Dir(gomod))
	if _, err := os.Stat(filepath.Join(root, "cmd", "jwtauthz")); err != nil {
		return "", fmt.Errorf("%s holds no cmd/jwtauthz: run the harness from the bench module of a jwtauthz checkout", root)
	}
	return root, nil
}

// commit names the revision of the checkout that is built, and says if
// it has uncommitted changes.
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); len(st) > 0 {
		c += " with uncommitted changes"
	}
	return c
}

// replot prints the tables of a saved results.json and redraws its plot.
func replot(o *options) error {
	b, err := os.ReadFile(o.replot)
	if err != nil {
		return err
	}
	res := &Results{}
	if err := json.Unmarshal(b, res); err != nil {
		return fmt.Errorf("%s: %w", o.replot, err)
	}
	printTable(os.Stdout, res)
	if res.Memory != nil {
		printMemory(os.Stdout, res.Memory)
	}
	return res.writePlot(o)
}
