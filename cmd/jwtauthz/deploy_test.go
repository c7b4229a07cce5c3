package main

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"

	"github.com/jwtauthz/jwtauthz/envoy"
	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/internal/testutil"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// The deployment files, from this package's directory.
const (
	root         = "../.."
	nginxConf    = root + "/testdata/nginx.conf"
	caddyfile    = root + "/testdata/Caddyfile"
	dockerfile   = root + "/Dockerfile"
	dockerignore = root + "/.dockerignore"
)

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDeployDefaults ties the shipped Envoy configurations to the ports
// jwtauthz listens on when no flag says otherwise.
func TestDeployDefaults(t *testing.T) {
	d := config.Defaults()
	grpcP, httpP, adminP := portOf(t, d.GRPCAddr), portOf(t, d.HTTPAddr), portOf(t, d.AdminAddr)
	for _, tc := range []struct{ file, cluster, want string }{
		{"envoy.yaml", "jwtauthz", "jwtauthz:" + grpcP},
		{"envoy-http.yaml", "jwtauthz_http", "jwtauthz:" + httpP},
	} {
		bs, err := envoy.Load(root + "/envoy/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if got := envoy.Endpoints(envoy.Cluster(bs, tc.cluster)); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("%s: cluster %s reaches %v, want %s (the default)", tc.file, tc.cluster, got, tc.want)
		}
	}
	if !strings.Contains(readText(t, root+"/docker-compose.yaml"), `"127.0.0.1:`+adminP+":"+adminP+`"`) {
		t.Errorf("docker-compose.yaml does not publish the default admin port %s", adminP)
	}
}

// step is one request through a proxy and what the test expects of it.
type step struct {
	name   string
	path   string   // "" is /v1/things?x=1
	header []string // name, value, …; tokenFor and noSubFor in a value are replaced
	status int
	// subject is the X-Auth-Subject the app sees ("": none), and issuer
	// whether it sees X-Auth-Issuer (the IdP's); reach whether the app is
	// reached at all.
	reach   bool
	subject string
	issuer  bool
}

func TestNginxForwardAuth(t *testing.T) {
	bin := findProxy(t, "nginx", "apt-get install -y nginx; macOS: brew install nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx")
	testForwardAuth(t, func(authAddr, appAddr string) *http.Client { return startNginx(t, bin, authAddr, appAddr) },
		// nginx drops a header with an underscore (ignore_invalid_headers).
		step{name: "valid token, claim header with an underscore", header: []string{"Authorization", "Bearer " + tokenFor, "X-Auth_User", "root"}, status: 200, reach: true, subject: "alice", issuer: true})
	// jwtauthz not answering is 503, as jwtauthz's own 503 is, not 500.
	t.Run("jwtauthz unreachable", func(t *testing.T) {
		closed, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := closed.Addr().String()
		closed.Close()
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("the app was reached") }))
		defer app.Close()
		resp, err := startNginx(t, bin, addr, app.Listener.Addr().String()).Get("http://proxy/v1/things")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", resp.StatusCode)
		}
	})
}

// TestCaddyForwardAuth runs the documented Caddyfile (testdata/Caddyfile) as
// TestNginxForwardAuth runs nginx's.
func TestCaddyForwardAuth(t *testing.T) {
	bin := findProxy(t, "caddy", "apt-get install -y caddy; macOS: brew install caddy")
	testForwardAuth(t, func(authAddr, appAddr string) *http.Client { return startCaddy(t, bin, authAddr, appAddr) },
		// Caddy passes a header with an underscore on: jwtauthz refuses it,
		// as the app may read it as X-Auth-User (HTTP_X_AUTH_USER).
		step{name: "valid token, claim header with an underscore", header: []string{"Authorization", "Bearer " + tokenFor, "X-Auth_User", "root"}, status: 400})
}

// In a step's header value, tokenFor is replaced by alice's token and
// noSubFor by a valid token without sub.
const (
	tokenFor = "<alice's token>"
	noSubFor = "<a token without sub>"
)

// spoofed are the values of the client's own identity headers in the
// steps: the app must never see one.
var spoofed = []string{"mallory", "root"}

// testForwardAuth puts a proxy (started by start, in front of jwtauthz's
// forward-auth listener and an app) through its steps, jwtauthz configured
// with a claim header (x-auth-user) and a public path: a valid token
// reaches the app with jwtauthz's identity headers, anything else is
// denied before it; a client's copy of a header jwtauthz sets is refused
// with jwtauthz's 400, on the public path too; and the app never sees such
// a copy, nor a proxy's placeholder where jwtauthz set no header.
func testForwardAuth(t *testing.T, start func(authAddr, appAddr string) *http.Client, extra ...step) {
	idp := issuer.NewServer()
	defer idp.Close()
	a := startApp(t, true, "--config", testutil.WriteFile(t, "providers:\n  - name: idp\n    issuer: "+idp.URL+
		"\n    claim_headers: {x-auth-user: preferred_username}\nrules:\n  - {match: {path_prefix: /public/}, action: allow}\n"))
	tok, err := idp.Mint(jwt.MapClaims{"sub": "alice", "preferred_username": "alice"})
	if err != nil {
		t.Fatal(err)
	}
	noSub, err := idp.Mint(jwt.MapClaims{"preferred_username": "bob"})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan http.Header, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		io.WriteString(w, "app")
	}))
	defer app.Close()
	client := start(a.HTTPAddr(), app.Listener.Addr().String())

	bearer := "Bearer " + tokenFor
	for _, s := range append([]step{
		{name: "valid token", header: []string{"Authorization", bearer}, status: 200, reach: true, subject: "alice", issuer: true},
		{name: "no token", status: 401},
		{name: "invalid token", header: []string{"Authorization", "Bearer x.y.z"}, status: 401},
		{name: "token without sub", header: []string{"Authorization", "Bearer " + noSubFor}, status: 200, reach: true, issuer: true},
		{name: "public path", path: "/public/a", status: 200, reach: true},
		{name: "public path, valid token", path: "/public/a", header: []string{"Authorization", bearer}, status: 200, reach: true},
		{name: "valid token, spoofed subject", header: []string{"Authorization", bearer, "X-Auth-Subject", "mallory"}, status: 400},
		{name: "valid token, spoofed claim header", header: []string{"Authorization", bearer, "X-Auth-User", "root"}, status: 400},
		{name: "valid token, spoofed claim header in lower case", header: []string{"Authorization", bearer, "x-auth-user", "root"}, status: 400},
		{name: "no token, spoofed subject", header: []string{"X-Auth-Subject", "mallory"}, status: 400},
		{name: "public path, spoofed claim header", path: "/public/a", header: []string{"X-Auth-User", "root"}, status: 400},
		{name: "public path, spoofed issuer", path: "/public/a", header: []string{"X-Auth-Issuer", "mallory"}, status: 400},
		{name: "no token, spoofed original URI", header: []string{"X-Forwarded-Uri", "/public/", "X-Forwarded-Method", "OPTIONS"}, status: 401},
		// jwtauthz's 400 for a path it cannot tell reaches the client too.
		{name: "valid token, the other family's original URI", header: []string{"Authorization", bearer, "X-Original-URI", "/public/a"}, status: 400},
	}, extra...) {
		t.Run(s.name, func(t *testing.T) {
			path := s.path
			if path == "" {
				path = "/v1/things?x=1"
			}
			req, _ := http.NewRequest(http.MethodGet, "http://proxy"+path, nil)
			r := strings.NewReplacer(tokenFor, tok, noSubFor, noSub)
			for i := 0; i+1 < len(s.header); i += 2 {
				req.Header[s.header[i]] = []string{r.Replace(s.header[i+1])} // as spelt
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var h http.Header // the app has answered before the proxy did
			select {
			case h = <-seen:
			default:
			}
			if resp.StatusCode != s.status {
				t.Errorf("status %d, want %d", resp.StatusCode, s.status)
			}
			if s.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="jwtauthz"`) {
				t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
			switch {
			case h != nil && !s.reach:
				t.Errorf("the app was reached, with headers %v", slices.Sorted(maps.Keys(h)))
			case h == nil && s.reach:
				t.Error("the app was not reached")
			case h != nil:
				checkAppHeaders(t, h, s.subject, s.issuer, idp.URL)
			}
		})
	}
}

// checkAppHeaders wants the app to see subject and, if issuer, iss as the
// identity headers (none where empty or false), no claim header (the
// proxies are told of none), no value a client sent as its own identity,
// and no proxy placeholder.
func checkAppHeaders(t *testing.T, h http.Header, subject string, issuer bool, iss string) {
	t.Helper()
	want := func(name, v string) {
		var w []string
		if v != "" {
			w = []string{v}
		}
		if got := h.Values(name); !slices.Equal(got, w) {
			t.Errorf("the app saw %s %q, want %q", name, got, w)
		}
	}
	want("X-Auth-Subject", subject)
	if issuer {
		want("X-Auth-Issuer", iss)
	} else {
		want("X-Auth-Issuer", "")
	}
	want("X-Auth-User", "")
	for name, vs := range h {
		for _, v := range vs {
			if strings.Contains(v, "{") || slices.Contains(spoofed, v) {
				t.Errorf("the app saw %s: %q", name, v)
			}
		}
	}
}

// findProxy finds a proxy's binary on PATH or at one of paths, or skips the
// test saying how to install it.
func findProxy(t *testing.T, name, install string, paths ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("%s is not installed; to run this test install it (Debian/Ubuntu: %s). It runs as the current user, in a temporary directory.", name, install)
	return ""
}

// startNginx runs testdata/nginx.conf, its addresses replaced, in the
// foreground as the current user with every file in a temporary directory,
// listening on a Unix socket there. It returns a client for that socket.
func startNginx(t *testing.T, bin, authAddr, appAddr string) *http.Client {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "nginx.sock")
	path := filepath.Join(dir, "nginx.conf")
	writeReplaced(t, nginxConf, path, [][2]string{
		{"server 127.0.0.1:9002;", "server " + authAddr + ";"},
		{"server 127.0.0.1:8081;", "server " + appAddr + ";"},
		{"listen 127.0.0.1:8080;", "listen unix:" + sock + ";"},
		{"http {\n", "http {\n" + scratchPaths(dir)},
	})
	cmd := exec.Command(bin, "-p", dir, "-c", path, "-e", "stderr",
		"-g", "daemon off; master_process off; pid "+filepath.Join(dir, "nginx.pid")+"; error_log stderr notice;")
	return runProxy(t, "nginx", cmd, sock)
}

// startCaddy runs testdata/Caddyfile, its addresses replaced, as
// startNginx runs nginx: on a Unix socket, with no admin endpoint, its
// files in a temporary directory.
func startCaddy(t *testing.T, bin, authAddr, appAddr string) *http.Client {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "caddy.sock")
	path := filepath.Join(dir, "Caddyfile")
	writeReplaced(t, caddyfile, path, [][2]string{
		{"app.example.com {\n", "{\n\tadmin off\n}\n\nhttp:// {\n\tbind unix/" + sock + "\n"},
		{"forward_auth jwtauthz:9002 {", "forward_auth " + authAddr + " {"},
		{"reverse_proxy app:8081", "reverse_proxy " + appAddr},
	})
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	return runProxy(t, "caddy", cmd, sock)
}

// writeReplaced writes src to dst with each old string, which must occur
// once, replaced by its new one.
func writeReplaced(t *testing.T, src, dst string, replace [][2]string) {
	t.Helper()
	conf := readText(t, src)
	for _, r := range replace {
		if strings.Count(conf, r[0]) != 1 {
			t.Fatalf("%s: want exactly one %q to replace", src, r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	if err := os.WriteFile(dst, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runProxy starts cmd, stops it when the test ends, waits until it listens
// on the Unix socket sock and returns a client for that socket.
func runProxy(t *testing.T, name string, cmd *exec.Cmd, sock string) *http.Client {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{}) // closed once cmd has exited, waitErr set
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s:\n%s", name, logs)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("%s exited: %v", name, waitErr)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening within 10s", name)
		}
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// scratchPaths puts what nginx writes inside dir: Debian's nginx compiles
// in absolute paths under /var.
func scratchPaths(dir string) string {
	var b strings.Builder
	for _, d := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		b.WriteString("    " + d + "_temp_path " + filepath.Join(dir, d) + ";\n")
	}
	b.WriteString("    access_log off;\n")
	return b.String()
}

// TestReadmeProxyConfigs keeps the nginx and Caddy examples of
// docs/deployment/forward-auth.md the files the forward-auth tests run.
func TestReadmeProxyConfigs(t *testing.T) {
	readme := readText(t, root+"/docs/deployment/forward-auth.md")
	for _, c := range []struct{ lang, file, test string }{
		{"nginx", nginxConf, "TestNginxForwardAuth"},
		{"caddyfile", caddyfile, "TestCaddyForwardAuth"},
	} {
		want := readText(t, c.file)
		blocks := regexp.MustCompile("(?s)```"+c.lang+"\n(.*?)```").FindAllStringSubmatch(readme, -1)
		if !slices.ContainsFunc(blocks, func(b []string) bool { return b[1] == want }) {
			t.Errorf("docs/deployment/forward-auth.md has no %s block identical to %s, which %s runs: copy the file into it", c.lang, c.file, c.test)
		}
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct{ cmd, args string }

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(readText(t, path)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// finalStage returns the instructions after the last FROM, and that FROM.
func finalStage(df []instruction) (string, []instruction) {
	for i := len(df) - 1; i >= 0; i-- {
		if df[i].cmd == "FROM" {
			return df[i].args, df[i+1:]
		}
	}
	return "", nil
}

func args(stage []instruction, cmd string) []string {
	var out []string
	for _, in := range stage {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// TestDockerfile checks the Dockerfile without Docker: its stages, user,
// ports and health check, that .dockerignore keeps what the build reads,
// and that the healthcheck subcommand the image runs works against a
// running server (this test binary standing in for jwtauthz).
// TestDockerfileBuild builds with the Dockerfile's own go build line.
func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t, dockerfile)
	if len(df) == 0 || df[0].cmd != "FROM" || df[0].args != "golang:1.26 AS build" {
		t.Fatalf("first instruction %v: want FROM golang:1.26 AS build", df[0])
	}
	from, final := finalStage(df)
	if from != "gcr.io/distroless/static:nonroot" {
		t.Errorf("final stage FROM %q, want gcr.io/distroless/static:nonroot", from)
	}
	d := config.Defaults()
	wantExpose := strings.Join([]string{portOf(t, d.GRPCAddr), portOf(t, d.HTTPAddr), portOf(t, d.AdminAddr)}, " ")
	const bin = "/usr/local/bin/jwtauthz"
	for _, w := range []struct{ cmd, want string }{
		{"USER", "nonroot"},
		{"EXPOSE", wantExpose},
		{"COPY", "--from=build /out/jwtauthz " + bin},
		{"ENTRYPOINT", `["` + bin + `"]`},
	} {
		if got := args(final, w.cmd); !slices.Equal(got, []string{w.want}) {
			t.Errorf("final stage %s %q, want %q", w.cmd, got, w.want)
		}
	}
	hc := args(final, "HEALTHCHECK")
	if len(hc) != 1 || !strings.HasSuffix(hc[0], `CMD ["`+bin+`", "healthcheck"]`) {
		t.Errorf("HEALTHCHECK %q: want CMD [%q, \"healthcheck\"]", hc, bin)
	}
	goBuildArgs(t, df)
	checkDockerignore(t)
	t.Run("healthcheck", func(t *testing.T) { testHealthcheck(t, os.Args[0], "JWTAUTHZ_TEST_AS_MAIN=1") })
}

// TestDockerfileBuild runs the Dockerfile's go build line, checks that the
// binary is static and stripped, and runs its healthcheck. The build is one
// of its own (-trimpath, CGO_ENABLED=0: nothing of the test build's cache
// serves it), tens of seconds on a cold cache, so it runs only with
// JWTAUTHZ_SLOW_TESTS=1, as .ci/run sets.
func TestDockerfileBuild(t *testing.T) {
	slowTest(t, "builds jwtauthz with the Dockerfile's go build line")
	exe := buildStatic(t, goBuildArgs(t, parseDockerfile(t, dockerfile)))
	t.Run("healthcheck", func(t *testing.T) { testHealthcheck(t, exe) })
}

// slowTest skips t unless JWTAUTHZ_SLOW_TESTS is true (1, true), saying
// what it would do; a value that is no bool fails t.
func slowTest(t *testing.T, what string) {
	t.Helper()
	v := os.Getenv("JWTAUTHZ_SLOW_TESTS")
	on, err := strconv.ParseBool(v)
	switch {
	case v == "":
		t.Skipf("%s: runs with JWTAUTHZ_SLOW_TESTS=1, as .ci/run sets", what)
	case err != nil:
		t.Fatalf("JWTAUTHZ_SLOW_TESTS=%q: want 1 or 0 (true or false)", v)
	case !on:
		t.Skipf("%s: JWTAUTHZ_SLOW_TESTS=%s", what, v)
	}
}

// goBuildArgs returns the arguments of the Dockerfile's go build, which
// must build with CGO_ENABLED=0 -trimpath -ldflags "-s -w ..." (the -X
// version stamps follow; tools/release_test.go checks them), each ${ARG}
// its default, as in a docker build without --build-arg.
func goBuildArgs(t *testing.T, df []instruction) []string {
	t.Helper()
	for _, run := range args(df, "RUN") {
		pre, rest, ok := strings.Cut(run, "go build ")
		if !ok {
			continue
		}
		if !slices.Contains(strings.Fields(pre), "CGO_ENABLED=0") {
			t.Errorf("go build without CGO_ENABLED=0: %s", run)
		}
		if !strings.Contains(rest, `-trimpath -ldflags "-s -w`) || !strings.HasSuffix(rest, "./cmd/jwtauthz") {
			t.Errorf(`go build %s: want -trimpath -ldflags "-s -w ..." ... ./cmd/jwtauthz`, rest)
		}
		for _, arg := range args(df, "ARG") {
			name, def, _ := strings.Cut(arg, "=")
			rest = strings.ReplaceAll(rest, "${"+name+"}", def)
		}
		var out []string
		for i, part := range strings.Split(rest, `"`) {
			if i%2 == 1 {
				out = append(out, part)
			} else {
				out = append(out, strings.Fields(part)...)
			}
		}
		return out
	}
	t.Fatal("no RUN ... go build in the Dockerfile")
	return nil
}

// buildStatic runs go build with args (its -o sent to a temporary
// directory) as the Dockerfile does, and checks the result is static.
func buildStatic(t *testing.T, args []string) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "jwtauthz")
	args = slices.Clone(args)
	if i := slices.Index(args, "-o"); i >= 0 && i+1 < len(args) {
		args[i+1] = exe
	}
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, out)
	}
	bi, err := buildinfo.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	// With -trimpath, Go records no -ldflags: the ELF checks below see them.
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build settings %v: want CGO_ENABLED=0 and -trimpath", settings)
	}
	if runtime.GOOS == "linux" {
		f, err := elf.Open(exe)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		libs, _ := f.ImportedLibraries()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary has a dynamic loader (PT_INTERP): not static")
			}
		}
		if len(libs) > 0 {
			t.Errorf("the binary links %v: not static", libs)
		}
		if _, err := f.Symbols(); !errors.Is(err, elf.ErrNoSymbols) {
			t.Errorf("symbols present (%v): -s did not apply", err)
		}
		if f.Section(".debug_info") != nil {
			t.Error("DWARF present: -w did not apply")
		}
	}
	return exe
}

// testHealthcheck runs exe's healthcheck as Docker would, with env added
// to its environment.
func testHealthcheck(t *testing.T, exe string, env ...string) {
	idp := issuer.NewServer()
	defer idp.Close()
	ready := startApp(t, true, "--issuer", idp.URL)

	down := issuer.NewServer()
	defer down.Close()
	down.SetFault(issuer.Fail)
	notReady := startApp(t, false, "--issuer", down.URL)

	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	mute, _ := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	defer mute.Close()

	for _, tc := range []struct {
		name, env string
		args      []string
		want      int
		wantErr   string
	}{
		{"ready", "", []string{"--admin-addr", ready.adminAddr()}, 0, ""},
		{"ready, address from the environment", "JWTAUTHZ_ADMIN_ADDR=" + ready.adminAddr(), nil, 0, ""},
		{"not ready", "", []string{"--admin-addr", notReady.adminAddr()}, 1, "503"},
		{"nothing listening", "", []string{"--admin-addr", closedAddr}, 1, "refused"},
		{"no answer", "", []string{"--admin-addr", mute.Addr().String(), "--timeout", "200ms"}, 1, "healthcheck:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(exe, append([]string{"healthcheck"}, tc.args...)...)
			cmd.Env = append(append(os.Environ(), env...), "JWTAUTHZ_ADMIN_ADDR=")
			if tc.env != "" {
				cmd.Env = append(cmd.Env, tc.env)
			}
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != tc.want || !strings.Contains(string(out), tc.wantErr) {
				t.Fatalf("exit %d, output %q; want %d and %q", code, out, tc.want, tc.wantErr)
			}
		})
	}
}

// checkDockerignore wants every file the build reads kept in the context:
// go.mod, go.sum and the Go files of the packages cmd/jwtauthz builds from.
func checkDockerignore(t *testing.T) {
	t.Helper()
	var patterns []*regexp.Regexp
	for _, line := range strings.Split(readText(t, dockerignore), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
			continue
		}
		patterns = append(patterns, ignoreRegexp(strings.TrimPrefix(line, "/")))
	}
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{range .GoFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{end}}`, "./cmd/jwtauthz")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	abs, _ := filepath.Abs(root)
	need := []string{"go.mod", "go.sum"}
	for _, f := range strings.Fields(string(out)) {
		if rel, err := filepath.Rel(abs, f); err == nil && !strings.HasPrefix(rel, "..") {
			need = append(need, filepath.ToSlash(rel))
		}
	}
	if len(need) < 5 {
		t.Fatalf("go list found only %v", need)
	}
	for _, f := range need {
		for _, p := range patterns {
			if ignored(p, f) {
				t.Errorf(".dockerignore pattern %s leaves out %s, which the build needs", p, f)
			}
		}
	}
}

// ignoreRegexp turns a .dockerignore pattern into a regexp: * within a
// path element, ** across elements.
func ignoreRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case p[i] == '*':
			b.WriteString("[^/]*")
		case p[i] == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// ignored reports whether p leaves out f: f itself, or a directory above it.
func ignored(p *regexp.Regexp, f string) bool {
	for {
		if p.MatchString(f) {
			return true
		}
		i := strings.LastIndex(f, "/")
		if i < 0 {
			return false
		}
		f = f[:i]
	}
}

// TestKubernetesConfig runs `jwtauthz serve --check-config` with the
// arguments, environment and mounted ConfigMap files of the jwtauthz
// container of each Kubernetes Deployment, so that a misspelt flag or
// config key fails here rather than in a crash-looping pod.
func TestKubernetesConfig(t *testing.T) {
	for _, dir := range []string{"sidecar", "jwtauthz"} {
		t.Run(dir, func(t *testing.T) {
			var dep *k8sObject
			cms := map[string]*k8sObject{}
			files, _ := filepath.Glob(filepath.Join(root, "kubernetes", dir, "*.yaml"))
			for _, f := range files {
				for _, o := range k8sObjects(t, f) {
					switch o.Kind {
					case "Deployment":
						if dep != nil {
							t.Fatalf("%s: a second Deployment", f)
						}
						dep = o
					case "ConfigMap":
						cms[o.Metadata.Name] = o
					}
				}
			}
			if dep == nil {
				t.Fatal("no Deployment")
			}
			spec := dep.Spec.Template.Spec
			i := slices.IndexFunc(spec.Containers, func(c k8sContainer) bool { return c.Name == "jwtauthz" })
			if i < 0 {
				t.Fatal("no jwtauthz container")
			}
			c := spec.Containers[i]
			args := mountConfigMaps(t, spec, c, cms)
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			var stdout, stderr strings.Builder
			code := run(context.Background(), append(args, "--check-config"), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &stdout, &stderr)
			if code != exitOK || !strings.Contains(stdout.String(), "config ok") {
				t.Fatalf("jwtauthz %v --check-config: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
			}
		})
	}
}

// k8sObject is the part of a Deployment or a ConfigMap that
// TestKubernetesConfig reads. The kubernetes module's tests decode the same
// files strictly into the Kubernetes API's own types.
type k8sObject struct {
	Kind     string                `yaml:"kind"`
	Metadata struct{ Name string } `yaml:"metadata"`
	Data     map[string]string     `yaml:"data"`
	Spec     struct {
		Template struct {
			Spec k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sPodSpec struct {
	Containers []k8sContainer `yaml:"containers"`
	Volumes    []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name  string                       `yaml:"name"`
			Items []struct{ Key, Path string } `yaml:"items"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type k8sContainer struct {
	Name         string                         `yaml:"name"`
	Args         []string                       `yaml:"args"`
	Env          []struct{ Name, Value string } `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

// k8sObjects decodes every document of the YAML file path.
func k8sObjects(t *testing.T, path string) []*k8sObject {
	t.Helper()
	var out []*k8sObject
	dec := yaml.NewDecoder(strings.NewReader(readText(t, path)))
	for {
		o := &k8sObject{}
		err := dec.Decode(o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, o)
	}
}

// mountConfigMaps writes the ConfigMap items c mounts under a temporary
// directory and returns c's arguments with their paths moved there.
func mountConfigMaps(t *testing.T, spec k8sPodSpec, c k8sContainer, cms map[string]*k8sObject) []string {
	t.Helper()
	dir := t.TempDir()
	moved := map[string]string{}
	for _, vm := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != vm.Name || v.ConfigMap == nil {
				continue
			}
			cm := cms[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
			}
			for _, it := range v.ConfigMap.Items {
				to := filepath.Join(dir, vm.MountPath, it.Path)
				os.MkdirAll(filepath.Dir(to), 0o700)
				if err := os.WriteFile(to, []byte(cm.Data[it.Key]), 0o600); err != nil {
					t.Fatal(err)
				}
				moved[filepath.Join(vm.MountPath, it.Path)] = to
			}
		}
	}
	args := slices.Clone(c.Args)
	for i, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && moved[v] != "" {
			args[i] = k + "=" + moved[v]
		}
	}
	return args
}
