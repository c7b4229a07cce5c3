package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// instructions is -instructions: instead of timing the servers, it counts
// the user-space instructions each executes per check under valgrind's
// callgrind, which counts the same for the same binary and traffic however
// busy the machine is. Each server runs alone under callgrind at 1 stream;
// warm checks come first, then the counters are zeroed
// (callgrind_control -z), the counted checks run, and the counts are
// dumped (-d) before the server is killed: callgrind does not survive a Go
// server's signal handling. The kernel's work (syscalls, loopback TCP) is
// not counted, nor the cost of a cache miss: this is the work each server
// does, not its time.
func instructions(o *options) error {
	for _, tool := range []string{"valgrind", "callgrind_control"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("-instructions needs valgrind (Debian: apt-get install -y valgrind): %w", err)
		}
	}
	// The servers' logs go to the results, where they outlive a failed
	// count; binaries and callgrind's files to tmp.
	root, err := resultsAt(o)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "jwtauthz-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Printf("machine: %s\njwtauthz: %s\n", machine(), commit(root))
	bin, err := buildJwtauthz(root, tmp)
	if err != nil {
		return err
	}
	// This program, built with its symbols (go run strips them), for
	// callgrind's --toggle-collect.
	self, err := build(filepath.Join(root, "bench"), tmp, ".", "bench")
	if err != nil {
		return err
	}
	tmpl, err := loadTemplate(o.request)
	if err != nil {
		return err
	}
	es, rs := issuer.MustSigner("ES256"), issuer.MustSigner("RS256")
	idp := issuer.NewServer(es, rs)
	defer idp.Close()
	n := o.warm + o.checks // c's tokens are each new
	one, err := mint(es, idp.URL, "one", 1, tokenTTL)
	if err != nil {
		return err
	}
	newES, err := mint(es, idp.URL, "newes", n, tokenTTL)
	if err != nil {
		return err
	}
	newRS, err := mint(rs, idp.URL, "newrs", n, tokenTTL)
	if err != nil {
		return err
	}
	bare := map[string]float64{}
	for _, alg := range []string{"ES256", "RS256"} {
		if bare[alg], err = bareInstructions(self, tmp, alg, o.checks); err != nil {
			return err
		}
	}
	type scenario struct {
		name, alg string
		toks      []string
		cacheSize int // 0: the floor
	}
	// The caches of the timed harness's servers (env.start).
	scenarios := []scenario{
		{name: "floor", toks: one},
		{name: "a-cached", toks: one, cacheSize: 100_000},
		{name: "c-new-ES256", alg: "ES256", toks: newES, cacheSize: newCache},
		{name: "c-new-RS256", alg: "RS256", toks: newRS, cacheSize: newCache},
	}
	counts := map[string]float64{}
	for _, s := range scenarios {
		out := filepath.Join(tmp, s.name+".callgrind")
		// env(1) execs valgrind: the pid stays the one callgrind_control
		// needs.
		wrap := append([]string{"env"}, callgrindEnv...)
		wrap = append(wrap, "valgrind", "--tool=callgrind", "--callgrind-out-file="+out)
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		var srv *server
		if s.cacheSize == 0 {
			srv, err = launch("instructions-"+s.name, o.results, addr, "", valgrindWait, append(wrap, self, "-role", "floor", "-addr", addr))
		} else {
			srv, err = startJwtauthz(bin, o.results, jwtauthzOpts{name: "instructions-" + s.name, grpcAddr: addr, issuer: idp.URL, jwksURL: idp.JWKSURL(),
				cacheSize: s.cacheSize, cacheTTL: cacheTTL, wrap: wrap, wait: valgrindWait})
		}
		if err != nil {
			return err
		}
		total, err := countChecks(srv, out, tmpl, s.toks, o.warm, o.checks, s.alg == "")
		srv.cmd.Process.Kill() // callgrind does not survive SIGTERM
		srv.cmd.Wait()
		if err != nil {
			return fmt.Errorf("%s (log: %s): %w", s.name, srv.log, err)
		}
		counts[s.name] = total / float64(o.checks)
		fmt.Fprintf(os.Stderr, "%s: %.0f instructions per check\n", s.name, counts[s.name])
	}
	fmt.Printf("\nUser-space instructions per check (callgrind), 1 stream, %d checks after %d warm ones; servers with GOMAXPROCS=1, GODEBUG=asyncpreemptoff=1.\n\n", o.checks, o.warm)
	fmt.Println("| scenario | instructions per check | ÷ floor | beyond the floor ÷ bare verification |")
	fmt.Println("|---|---:|---:|---:|")
	floor := counts["floor"]
	for _, s := range scenarios {
		c, ratio, beyond := counts[s.name], "—", "—"
		if s.cacheSize != 0 {
			ratio = fmt.Sprintf("%.2f", c/floor)
		}
		if s.alg != "" {
			beyond = fmt.Sprintf("%.2f", (c-floor)/bare[s.alg])
		}
		fmt.Printf("| %s | %.0f | %s | %s |\n", s.name, c, ratio, beyond)
	}
	fmt.Printf("\nBare verification (golang-jwt SigningMethod.Verify alone): ES256 %.0f, RS256 %.0f instructions.\n", bare["ES256"], bare["RS256"])
	return nil
}

// callgrindEnv is the environment of a process under callgrind: one P (the
// tool runs one thread at a time anyway) and no preemption signals, which
// callgrind's signal handling does not survive.
var callgrindEnv = []string{"GOMAXPROCS=1", "GODEBUG=asyncpreemptoff=1"}

// valgrindWait is how long a server under callgrind may take to come up.
const valgrindWait = 3 * time.Minute

// countChecks sends warm checks, zeroes srv's counters, sends counted
// checks and returns the instructions callgrind counted over them. The
// i-th check carries toks[i % len(toks)] and an x-request-id of its own.
// Of a jwtauthz server, it wants every counted check answered by the token
// cache if cached, and none if not.
func countChecks(srv *server, out string, tmpl *authv3.CheckRequest, toks []string, warm, counted int, cached bool) (float64, error) {
	cc, err := grpc.NewClient(srv.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	client := authv3.NewAuthorizationClient(cc)
	req := proto.Clone(tmpl).(*authv3.CheckRequest)
	h := req.Attributes.Request.Http.Headers
	ids := newRequestIDs(rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	var hits, misses uint64
	for i := range warm + counted {
		if i == warm {
			if srv.adminURL != "" {
				if hits, misses, err = srv.tokenCache(); err != nil {
					return 0, err
				}
			}
			if err := callgrindControl("-z", srv.pid); err != nil {
				return 0, err
			}
		}
		h["authorization"] = "Bearer " + toks[i%len(toks)]
		h["x-request-id"] = ids.next()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		resp, err := client.Check(ctx, req)
		cancel()
		if err == nil && resp.GetStatus().GetCode() != 0 {
			err = fmt.Errorf("denied: %s", resp.GetStatus().GetMessage())
		}
		if err != nil {
			return 0, fmt.Errorf("check %d: %w", i, err)
		}
	}
	if err := callgrindControl("-d", srv.pid); err != nil {
		return 0, err
	}
	if srv.adminURL != "" {
		h, m, err := srv.tokenCache()
		if err != nil {
			return 0, err
		}
		want := [2]uint64{hits + uint64(counted), misses}
		if !cached {
			want = [2]uint64{hits, misses + uint64(counted)}
		}
		if got := [2]uint64{h, m}; got != want {
			return 0, fmt.Errorf("token cache hits and misses %v after the counted checks, want %v", got, want)
		}
	}
	return callgrindTotal(out + ".1")
}

// callgrindControl runs callgrind_control, which exits 0 also when it
// finds no such process: only its "OK" says it did what was asked.
func callgrindControl(flag, pid string) error {
	b, err := exec.Command("callgrind_control", flag, pid).CombinedOutput()
	if err == nil && !strings.Contains(string(b), "OK") {
		err = errors.New("no OK")
	}
	if err != nil {
		return fmt.Errorf("callgrind_control %s %s: %v: %s", flag, pid, err, b)
	}
	return nil
}

// callgrindTotal reads the instruction count of a callgrind output file.
func callgrindTotal(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := parseCallgrindTotal(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// parseCallgrindTotal reads the instructions of a callgrind output's
// "totals:" line: a count of 0 means nothing was collected (a
// --toggle-collect that matched no function), and is an error.
func parseCallgrindTotal(out string) (float64, error) {
	v := field([]byte(out), "totals", ":")
	n, err := strconv.ParseUint(v, 10, 64)
	if err == nil && n == 0 {
		err = errors.New("nothing counted")
	}
	if err != nil {
		return 0, fmt.Errorf("callgrind totals %q: %w", v, err)
	}
	return float64(n), nil
}

// bareInstructions counts the instructions of n bare verifications of one
// token (what bareVerify times) in self, this program, run as -role verify
// under callgrind collecting inside golang-jwt's Verify only.
func bareInstructions(self, dir, alg string, n int) (float64, error) {
	method := map[string]string{"ES256": "SigningMethodECDSA", "RS256": "SigningMethodRSA"}[alg]
	out := filepath.Join(dir, "verify-"+alg+".callgrind")
	cmd := exec.Command("valgrind", "--tool=callgrind", "--callgrind-out-file="+out,
		"--toggle-collect=github.com/golang-jwt/jwt/v5.(*"+method+").Verify",
		self, "-role", "verify", "-alg", alg, "-checks", strconv.Itoa(n))
	cmd.Env = append(os.Environ(), callgrindEnv...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("bare %s under callgrind: %v\n%s", alg, err, b)
	}
	total, err := callgrindTotal(out)
	return total / float64(n), err
}

// runVerify is -role verify: n bare verifications of one fresh token.
func runVerify(alg string, n int) error {
	s := issuer.MustSigner(alg)
	tok, err := s.Sign(claims("https://idp", "verify", 0, time.Now(), tokenTTL))
	if err != nil {
		return err
	}
	verify, err := bareVerifier(s, tok) // the first of the n
	for i := 1; err == nil && i < n; i++ {
		err = verify()
	}
	return err
}
