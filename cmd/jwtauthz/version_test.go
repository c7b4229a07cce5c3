package main

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/server"
	"github.com/jwtauthz/jwtauthz/internal/testutil"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

func TestPrintBuildInfo(t *testing.T) {
	tests := []struct {
		name string
		b    server.BuildInfo
		want string
	}{
		{
			name: "a release",
			b:    server.BuildInfo{Version: "v9.9.9", Commit: "abc", Date: "2026-01-01T00:00:00Z", GoVersion: "go1.26.1", Modified: "false"},
			want: "version v9.9.9\ncommit  abc\nbuilt   2026-01-01T00:00:00Z\ngo      go1.26.1\n",
		},
		{
			name: "built from a modified tree",
			b:    server.BuildInfo{Version: "(devel)", Commit: "6fafb771d5801b475ef2a1c7f5ec5b16f4c9e652", Date: "2026-12-06T18:48:58Z", GoVersion: "go1.26.1", Modified: "true"},
			want: "version (devel)\ncommit  6fafb771d5801b475ef2a1c7f5ec5b16f4c9e652-modified\nbuilt   2026-12-06T18:48:58Z\ngo      go1.26.1\n",
		},
		{
			name: "nothing stamped",
			b:    server.BuildInfo{Version: "(devel)", GoVersion: "go1.26.1"},
			want: "version (devel)\ncommit  (unknown)\nbuilt   (unknown)\ngo      go1.26.1\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			printBuildInfo(&out, tt.b)
			if out.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), tt.want)
			}
		})
	}
}

// goBuild builds jwtauthz with the go build flags args into a temporary
// directory and returns its path.
func goBuild(t *testing.T, args ...string) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "jwtauthz")
	cmd := exec.Command("go", append(append([]string{"build"}, args...), "-o", exe, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, out)
	}
	return exe
}

// versionOf runs exe version and returns its lines by their first word.
func versionOf(t *testing.T, exe string) map[string]string {
	t.Helper()
	out, err := exec.Command(exe, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", exe, err)
	}
	fields := map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		k, v, _ := strings.Cut(l, " ")
		fields[k] = strings.TrimSpace(v)
	}
	return fields
}

// A release build's -X main.version, main.commit and main.date are what
// `jwtauthz version` prints, the starting line logs and
// jwtauthz_build_info carries. (TestBuildInfoGauge and
// TestStartLogsRuntime check the same in-process, at every run.)
func TestVersionFromLdflags(t *testing.T) {
	slowTest(t, "builds jwtauthz with -ldflags -X")
	// -buildvcs=false: what is printed comes from the -X values alone.
	exe := goBuild(t, "-buildvcs=false", "-ldflags", "-X main.version=v9.9.9 -X main.commit=abc -X main.date=2026-01-01T00:00:00Z")
	want := map[string]string{"version": "v9.9.9", "commit": "abc", "built": "2026-01-01T00:00:00Z", "go": runtime.Version()}
	if got := versionOf(t, exe); !maps.Equal(got, want) {
		t.Errorf("version: %v, want %v", got, want)
	}

	idp := issuer.NewServer()
	defer idp.Close()
	// Through a file, as TestStartLogsRuntime does: writing it orders, for
	// the race detector, issuer.NewServer's setting of its URL before the
	// fetch from the other process that its server goroutine answers.
	path := testutil.WriteFile(t, "issuer: "+idp.URL+"\n")
	c := startExe(t, exe, nil, "serve", "--config", path, "--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--admin-addr", "127.0.0.1:0")
	c.mu.Lock()
	first := c.lines[0]
	c.mu.Unlock()
	for _, kv := range []string{`"msg":"starting"`, `"version":"v9.9.9"`, `"commit":"abc"`, `"date":"2026-01-01T00:00:00Z"`, `"modified":""`, `"go":"` + runtime.Version() + `"`} {
		if !strings.Contains(first, kv) {
			t.Errorf("first line %s: want %s", first, kv)
		}
	}
	_, body, _ := testutil.Get(t, "http://"+c.addr("admin")+"/metrics")
	wantGauge := `jwtauthz_build_info{commit="abc",date="2026-01-01T00:00:00Z",go_version="` + runtime.Version() + `",modified="",version="v9.9.9"} 1`
	if !strings.Contains(body, wantGauge+"\n") {
		t.Errorf("/metrics has no %s:\n%s", wantGauge, grepLines(body, "jwtauthz_build_info"))
	}
}

// Built without -ldflags in this git checkout, jwtauthz names the
// revision Go stamped (go build does, go run does not).
func TestVersionFromVCS(t *testing.T) {
	slowTest(t, "builds jwtauthz in this checkout")
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git: go build stamps no revision without it")
	}
	if out, err := exec.Command(git, "-C", root, "rev-parse", "--is-inside-work-tree").CombinedOutput(); err != nil {
		t.Skipf("not a git checkout, so no revision to stamp (git rev-parse: %v %s)", err, bytes.TrimSpace(out))
	}
	if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
		t.Skip("the checkout's .git is not a directory (a linked git worktree or a submodule): go build stamps no revision there")
	}
	// -buildvcs=true, not the default auto: GOFLAGS may say false.
	got := versionOf(t, goBuild(t, "-buildvcs=true"))
	rev := regexp.MustCompile(`^([0-9a-f]{40})(-modified)?$`).FindStringSubmatch(got["commit"])
	if rev == nil {
		t.Fatalf("commit %q: want a 40-hex revision, -modified if the tree is", got["commit"])
	}
	if out, err := exec.Command(git, "-C", root, "cat-file", "-e", rev[1]+"^{commit}").CombinedOutput(); err != nil {
		t.Errorf("commit %s: not a commit of this checkout: %v %s", rev[1], err, out)
	}
	if _, err := time.Parse(time.RFC3339, got["built"]); err != nil {
		t.Errorf("built %q: want the commit's time, RFC 3339: %v", got["built"], err)
	}
	// Go 1.24+ stamps a pseudo-version v0.0.0-<time>-<rev>[+dirty].
	if v := got["version"]; v != "(devel)" && !strings.HasPrefix(v, "v") || got["go"] != runtime.Version() {
		t.Errorf("version %q, go %q: want (devel) or a module version, and %s", v, got["go"], runtime.Version())
	}
}

// grepLines returns the lines of s that hold sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
