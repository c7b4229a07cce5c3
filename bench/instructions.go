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
	"github.com/golang-jwt/jwt/v5"
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
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	o.defaults(root)
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
	self, err := build(root, tmp, "./bench")
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
	n := 2 * o.checks
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
		floor     bool
	}
	scenarios := []scenario{
		{name: "floor", toks: one, floor: true},
		{name: "a-cached", toks: one},
		{name: "c-new-ES256", alg: "ES256", toks: newES},
		{name: "c-new-RS256", alg: "RS256", toks: newRS},
	}
	counts := map[string]float64{}
	for _, s := range scenarios {
		out := filepath.Join(tmp, s.name+".callgrind")
		wrap := []string{"valgrind", "--tool=callgrind", "--callgrind-out-file=" + out}
		var srv *server
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		if s.floor {
			srv, err = startWrapped(s.name, tmp, addr, "", append(wrap, self, "-role", "floor", "-addr", addr))
		} else {
			var admin string
			if admin, err = freeAddr(); err != nil {
				return err
			}
			srv, err = startWrapped(s.name, tmp, addr, "http://"+admin, append(wrap, bin, "serve", "--issuer", idp.URL,
				"--jwks-url", idp.JWKSURL(), "--grpc-addr", addr, "--http-addr", "", "--admin-addr", admin,
				"--cache-size", strconv.Itoa(newCache), "--cache-ttl", cacheTTL.String(), "--log-level", "warn", "--shutdown-delay", "0s"))
		}
		if err != nil {
			return err
		}
		total, err := countChecks(srv, out, tmpl, s.toks, o.checks, o.checks)
		srv.cmd.Process.Kill()
		srv.cmd.Wait()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		counts[s.name] = total / float64(o.checks)
		fmt.Fprintf(os.Stderr, "%s: %.0f instructions per check\n", s.name, counts[s.name])
	}
	fmt.Printf("\nUser-space instructions per check (callgrind), 1 stream, %d checks after %d warm ones; servers with GOMAXPROCS=1, GODEBUG=asyncpreemptoff=1.\n\n", o.checks, o.checks)
	fmt.Println("| scenario | instructions per check | ÷ floor | beyond the floor ÷ bare verification |")
	fmt.Println("|---|---:|---:|---:|")
	floor := counts["floor"]
	for _, s := range scenarios {
		c, ratio, beyond := counts[s.name], "—", "—"
		if !s.floor {
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

// startWrapped starts argv (a server under valgrind) and waits up to 3
// minutes for it to answer: readiness on adminURL if set, else a Check.
func startWrapped(name, logDir, target, adminURL string, argv []string) (*server, error) {
	// env(1) execs valgrind: the pid stays the one callgrind_control needs.
	s, err := start(name, logDir, "env", append(callgrindEnv, argv...)...)
	if err != nil {
		return nil, err
	}
	s.target, s.adminURL = target, adminURL
	up := func() error { return pingCheck(target) }
	if adminURL != "" {
		up = func() error { return ready(adminURL) }
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		err := up()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			tail, _ := os.ReadFile(s.log)
			return nil, fmt.Errorf("%s not ready: %v\n%s", name, err, tail)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// countChecks sends warm checks, zeroes srv's counters, sends counted
// checks and returns the instructions callgrind counted over them. The
// i-th check carries toks[i % len(toks)] and an x-request-id of its own.
func countChecks(srv *server, out string, tmpl *authv3.CheckRequest, toks []string, warm, counted int) (float64, error) {
	cc, err := grpc.NewClient(srv.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	client := authv3.NewAuthorizationClient(cc)
	req := proto.Clone(tmpl).(*authv3.CheckRequest)
	h := req.Attributes.Request.Http.Headers
	ids := newRequestIDs(rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	for i := range warm + counted {
		if i == warm {
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
	return callgrindTotal(out + ".1")
}

func callgrindControl(flag, pid string) error {
	if b, err := exec.Command("callgrind_control", flag, pid).CombinedOutput(); err != nil {
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

// parseCallgrindTotal finds the count of a callgrind output's "totals:"
// (or "summary:") line.
func parseCallgrindTotal(out string) (float64, error) {
	for _, line := range strings.Split(out, "\n") {
		for _, key := range []string{"totals:", "summary:"} {
			if v, ok := strings.CutPrefix(line, key); ok {
				if f := strings.Fields(v); len(f) > 0 {
					return strconv.ParseFloat(f[0], 64)
				}
			}
		}
	}
	return 0, errors.New("no totals")
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
	i := strings.LastIndexByte(tok, '.')
	sig, err := jwt.NewParser().DecodeSegment(tok[i+1:])
	if err != nil {
		return err
	}
	m, pub := jwt.GetSigningMethod(alg), s.Private.Public()
	for range n {
		if err := m.Verify(tok[:i], sig, pub); err != nil {
			return err
		}
	}
	return nil
}
