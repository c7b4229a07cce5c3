package server

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// The file the regression tests rewrite: the issuer comes from the flags,
// the rules from the file. halfRules is fullRules cut off before the
// /admin rule, as a reader sees a file rewritten in place mid-write; it is
// valid YAML and a valid configuration, which lets any valid token on
// /admin.
const (
	fullRules = "rules:\n  - {match: {path_prefix: /public}, action: allow}\n  - {match: {path_prefix: /admin}, require: {scopes: [admin]}}\n"
	halfRules = "rules:\n  - {match: {path_prefix: /public}, action: allow}\n"
)

// configMap lays out a directory as kubelet does for a mounted ConfigMap
// or Secret: config.yaml -> ..data/config.yaml, ..data -> ..<version>/.
type configMap struct {
	t       *testing.T
	dir     string
	name    string      // config.yaml
	mode    os.FileMode // of the file
	version int
}

func newConfigMap(t *testing.T, content string) *configMap {
	return newVolume(t, "config.yaml", 0o644, content)
}

// newVolume is a configMap whose one file is name, with mode.
func newVolume(t *testing.T, name string, mode os.FileMode, content string) *configMap {
	cm := &configMap{t: t, dir: t.TempDir(), name: name, mode: mode}
	cm.update(content)
	if err := os.Symlink(filepath.Join("..data", name), cm.path()); err != nil {
		t.Fatal(err)
	}
	return cm
}

func (cm *configMap) path() string { return filepath.Join(cm.dir, cm.name) }

// update writes content into a new version directory, then swaps ..data to
// it with a rename, and removes the old version, as kubelet's AtomicWriter.
func (cm *configMap) update(content string) {
	cm.t.Helper()
	cm.version++
	ver := "..2025_01_01_00_00_0" + strconv.Itoa(cm.version)
	must := func(err error) {
		if err != nil {
			cm.t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(cm.dir, ver), 0o755))
	must(os.WriteFile(filepath.Join(cm.dir, ver, cm.name), []byte(content), 0o600))
	must(os.Chmod(filepath.Join(cm.dir, ver, cm.name), cm.mode))
	tmp := filepath.Join(cm.dir, "..data_tmp")
	must(os.Symlink(ver, tmp))
	must(os.Rename(tmp, filepath.Join(cm.dir, "..data")))
	if cm.version > 1 {
		must(os.RemoveAll(filepath.Join(cm.dir, "..2025_01_01_00_00_0"+strconv.Itoa(cm.version-1))))
	}
}

// logCount counts the lines a has logged with message msg.
func logCount(a *testApp, msg string) int {
	return strings.Count(a.logs.String(), `"msg":"`+msg+`"`)
}

// pollOnce makes change (if not nil) to the config file, has a's watcher
// read it once, and waits until it has logged one of msgs, which it
// returns.
func pollOnce(t *testing.T, a *testApp, tick chan<- time.Time, change func(), msgs ...string) string {
	t.Helper()
	before := make([]int, len(msgs))
	for i, m := range msgs {
		before[i] = logCount(a, m)
	}
	if change != nil {
		change()
	}
	select {
	case tick <- time.Now():
	case <-time.After(10 * time.Second):
		t.Fatal("the config watcher took no poll")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		for i, m := range msgs {
			if logCount(a, m) > before[i] {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a poll, none of %q was logged:\n%s", msgs, a.logs.String())
		}
	}
}

// wantMetric fails t unless a's /metrics has the line series.
func wantMetric(t *testing.T, a *testApp, series string) {
	t.Helper()
	if _, body, _ := get(t, a.adminURL()+"/metrics"); !strings.Contains(body, "\n"+series+"\n") {
		t.Errorf("/metrics has no %q", series)
	}
}

// adminChecker returns a function that asks a, over gRPC Check and over
// HTTP forward-auth, whether a valid token without the admin scope may
// GET /admin/x, and fails the test if either answer is not want.
func adminChecker(t *testing.T, a *testApp, idp *issuer.Server) func(step string, want int) {
	tok, err := idp.Token("mallory", time.Hour) // no scope
	if err != nil {
		t.Fatal(err)
	}
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	grpcWant := map[int]codes.Code{http.StatusOK: codes.OK, http.StatusForbidden: codes.PermissionDenied}
	return func(step string, want int) {
		t.Helper()
		resp, err := client.Check(context.Background(), checkReq(tok, "/admin/x"))
		if err != nil {
			t.Fatalf("%s: Check: %v", step, err)
		}
		if got := codes.Code(resp.Status.Code); got != grpcWant[want] {
			t.Errorf("%s: gRPC Check of a non-admin token on /admin/x: %v, want %v", step, got, grpcWant[want])
		}
		if got, _, _ := get(t, a.httpURL()+"/admin/x", "Authorization", "Bearer "+tok); got != want {
			t.Errorf("%s: forward-auth of a non-admin token on /admin/x: %d, want %d", step, got, want)
		}
	}
}

// TestReloadWaitsForAWholeFile is issue 17's item 3: a config file read in
// the middle of an in-place rewrite, cut before the /admin rules, must not
// be applied, nor a file truncated to 0 bytes; a non-admin token stays
// 403 on /admin throughout. A cut-off file that then stays as it is for
// the settle time cannot be told from an edit, and is applied.
func TestReloadWaitsForAWholeFile(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	path := writeFile(t, fullRules)
	a, tick := startAppPolled(t, "--issuer", idp.URL, "--config", path)
	admin := adminChecker(t, a, idp)
	write := func(s string) func() {
		return func() {
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil { // in place: truncate, then write
				t.Error(err)
			}
		}
	}
	const (
		pending  = "config change pending: applied once the file reads the same at the next poll"
		reverted = "config file is back to the content last loaded; the pending change is dropped"
		reloaded = "config reloaded"
		rejected = "config reload rejected; the running configuration stays"
	)
	admin("at start", http.StatusForbidden)

	// Read mid-write, then whole again before the next poll.
	pollOnce(t, a, tick, write(halfRules), pending, reloaded)
	admin("a half-written file, read once", http.StatusForbidden)
	pollOnce(t, a, tick, write(fullRules), reverted, reloaded)
	admin("the whole file back within the settle time", http.StatusForbidden)

	// Truncated to 0 bytes, and left so: refused.
	truncate := func() {
		if err := os.Truncate(path, 0); err != nil {
			t.Error(err)
		}
	}
	pollOnce(t, a, tick, truncate, pending, reloaded, rejected)
	admin("a file truncated to 0 bytes, read once", http.StatusForbidden)
	if got := pollOnce(t, a, tick, nil, rejected, reloaded); got != rejected || !strings.Contains(a.logs.String(), "the document is empty") {
		t.Errorf("a file truncated to 0 bytes and left so: %q, want %q saying the document is empty", got, rejected)
	}
	admin("a file truncated to 0 bytes and left so", http.StatusForbidden)
	wantMetric(t, a, "jwtauthz_config_last_reload_successful 0")
	if n := logCount(a, reloaded); n != 0 {
		t.Fatalf("%d reloads so far, want none:\n%s", n, a.logs.String())
	}

	// The cut-off file left as it is: an edit like any other, applied at
	// the second poll, and the log line says what it changed.
	pollOnce(t, a, tick, write(halfRules), pending, reloaded)
	admin("the cut-off file, read once", http.StatusForbidden)
	if got := pollOnce(t, a, tick, nil, reloaded, rejected); got != reloaded {
		t.Fatalf("a valid file that stayed the same: %s, want applied", got)
	}
	admin("the cut-off file, applied", http.StatusOK)
	wantMetric(t, a, "jwtauthz_config_last_reload_successful 1")
	var line struct {
		Trigger, Rules   string
		RulesChanged     []int    `json:"rules_changed"`
		ProvidersAdded   []string `json:"providers_added"`
		ProvidersRemoved []string `json:"providers_removed"`
	}
	for _, l := range strings.Split(a.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"`+reloaded+`"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line.Trigger != "config file changed" || line.Rules != "2→1" || !slices.Equal(line.RulesChanged, []int{1}) || len(line.ProvidersAdded)+len(line.ProvidersRemoved) != 0 {
		t.Errorf("reload line %+v: want trigger config file changed, rules 2→1, rules_changed [1], no provider added or removed", line)
	}
}

// A ConfigMap update (kubelet swaps the ..data link to a directory written
// in full) is applied at the first poll that sees it, and the reload's log
// line names the providers it adds and removes.
func TestReloadConfigMapSwapAtOnce(t *testing.T) {
	idp, idp2 := issuer.NewServer(), issuer.NewServer()
	defer idp.Close()
	defer idp2.Close()
	cm := newConfigMap(t, fullRules)
	a, tick := startAppPolled(t, "--issuer", idp.URL, "--config", cm.path())
	admin := adminChecker(t, a, idp)
	admin("at start", http.StatusForbidden)

	update := func(s string) func() { return func() { cm.update(s) } }
	if got := pollOnce(t, a, tick, update(halfRules+"providers:\n  - {name: second, issuer: "+idp2.URL+"}\n"), "config reloaded", "config change pending: applied once the file reads the same at the next poll"); got != "config reloaded" {
		t.Fatalf("a ConfigMap update: %s, want applied at once", got)
	}
	admin("after the ConfigMap update", http.StatusOK)
	logs := a.logs.String()
	if !strings.Contains(logs, `"trigger":"config file replaced (symlink swap)"`) || !strings.Contains(logs, `"providers_added":["second"]`) || !strings.Contains(logs, `"rules":"2→1"`) {
		t.Errorf("the reload's line does not say what changed:\n%s", logs)
	}

	pollOnce(t, a, tick, update(fullRules), "config reloaded")
	admin("after the ConfigMap's second update", http.StatusForbidden)
	if !strings.Contains(a.logs.String(), `"providers_removed":["second"]`) {
		t.Errorf("the second reload's line does not name the provider removed:\n%s", a.logs.String())
	}
}

// SIGHUP reloads at once: the operator asked, nothing waits for a poll.
func TestSIGHUPReloadsAtOnce(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	path := writeFile(t, fullRules)
	a, _ := startAppPolled(t, "--issuer", idp.URL, "--config", path) // no poll is ever taken
	// run catches SIGHUP before it starts the listeners: once one has
	// started, a SIGHUP cannot meet the default action (exit).
	for deadline := time.Now().Add(10 * time.Second); logCount(a, "listener started") == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no listener started")
		}
	}
	if err := os.WriteFile(path, []byte(halfRules), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); logCount(a, "config reloaded") == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload after SIGHUP:\n%s", a.logs.String())
		}
	}
	if !strings.Contains(a.logs.String(), `"trigger":"SIGHUP"`) {
		t.Errorf("the reload was not SIGHUP's:\n%s", a.logs.String())
	}
	adminChecker(t, a, idp)("after SIGHUP", http.StatusOK)
}
