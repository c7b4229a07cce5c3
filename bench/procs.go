package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// server is one server process under test.
type server struct {
	name     string
	cmd      *exec.Cmd
	pid      string
	target   string // for grpc.NewClient: host:port or unix:///path
	adminURL string // jwtauthz only: http://host:port
	log      string // the file its stderr goes to
}

// buildJwtauthz builds ./cmd/jwtauthz of the checkout at root into dir.
func buildJwtauthz(root, dir string) (string, error) {
	return build(root, dir, "./cmd/jwtauthz", "jwtauthz")
}

// build builds the main package pkg of the module in moduleDir into
// dir/name.
func build(moduleDir, dir, pkg, name string) (string, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	return strings.TrimSpace(string(out)), err
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// jwtauthzOpts are the settings of one jwtauthz process.
type jwtauthzOpts struct {
	name      string
	grpcAddr  string // host:port or unix:///path
	issuer    string
	jwksURL   string
	cacheSize int
	cacheTTL  time.Duration
	// wrap, if set, runs bin under another program (env, valgrind), which
	// then gets wait to come up instead of 30 s.
	wrap []string
	wait time.Duration
	// config, if set, is a config file (scenario d's introspection provider).
	config string
}

// startJwtauthz starts bin serve and waits for /readyz.
func startJwtauthz(bin, logDir string, o jwtauthzOpts) (*server, error) {
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--issuer", o.issuer, "--jwks-url", o.jwksURL,
		"--grpc-addr", o.grpcAddr, "--http-addr", "", "--admin-addr", admin,
		"--cache-size", strconv.Itoa(o.cacheSize), "--cache-ttl", o.cacheTTL.String(),
		"--log-level", "warn", "--pprof", "--shutdown-delay", "0s"}
	if o.config != "" {
		args = append(args, "--config", o.config)
	}
	argv := append(slices.Clip(o.wrap), bin)
	return launch(o.name, logDir, o.grpcAddr, "http://"+admin, o.wait, append(argv, args...))
}

// startFloor re-executes this program as the floor on addr and waits until
// it answers a Check.
func startFloor(name, logDir, addr string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return launch(name, logDir, addr, "", 0, []string{self, "-role", "floor", "-addr", addr})
}

// launch starts argv as server name on target and waits up to wait (30 s
// if 0) until it is ready: /readyz on adminURL if set, else an answered
// Check. It stops the server if it never is.
func launch(name, logDir, target, adminURL string, wait time.Duration, argv []string) (*server, error) {
	s, err := start(name, logDir, argv[0], argv[1:]...)
	if err != nil {
		return nil, err
	}
	s.target, s.adminURL = target, adminURL
	up := func() error { return pingCheck(target) }
	if adminURL != "" {
		up = func() error { return ready(adminURL) }
	}
	if err := waitFor(s, up, cmp.Or(wait, 30*time.Second)); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func start(name, logDir, bin string, args ...string) (*server, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child keeps its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Should the harness die, its servers go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &server{name: name, cmd: cmd, pid: strconv.Itoa(cmd.Process.Pid), log: logPath}, nil
}

// waitFor polls ok for up to wait.
func waitFor(s *server, ok func() error, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := ok()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			tail, _ := os.ReadFile(s.log)
			return fmt.Errorf("%s not ready: %v\n%s", s.name, err, tail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ready(adminURL string) error {
	resp, err := http.Get(adminURL + "/readyz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}

func pingCheck(target string) error {
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = authv3.NewAuthorizationClient(cc).Check(ctx, &authv3.CheckRequest{})
	return err
}

// stop sends SIGTERM and waits up to 10 s before killing.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// cpu returns the CPU time the server process has used so far.
func (s *server) cpu() (time.Duration, error) { return cpuTime(s.pid) }

// tokenCache returns the token cache's hits and misses from /cache/health.
func (s *server) tokenCache() (hits, misses uint64, err error) {
	var h struct {
		Components struct {
			Tokens struct{ Hits, Misses uint64 } `json:"jwt_validation_cache"`
		} `json:"components"`
	}
	b, err := get(s.adminURL + "/cache/health")
	if err == nil {
		err = json.Unmarshal(b, &h)
	}
	return h.Components.Tokens.Hits, h.Components.Tokens.Misses, err
}

// heapAfterGC asks pprof for the heap profile, which runs a GC first, and
// returns HeapAlloc from its trailer.
func (s *server) heapAfterGC() (int64, error) {
	b, err := get(s.adminURL + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	return parseHeapAlloc(b)
}

// parseHeapAlloc finds "# HeapAlloc = N" in a debug=1 heap profile.
func parseHeapAlloc(b []byte) (int64, error) {
	v := field(b, "# HeapAlloc", " =")
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("heap profile: HeapAlloc %q: %w", v, err)
	}
	return n, nil
}

// get fetches url with a timeout long enough for a CPU profile.
func get(url string) ([]byte, error) {
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}
