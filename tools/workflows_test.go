package tools

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// workflow is the part of a GitHub Actions workflow these tests read.
type workflow struct {
	On   map[string]any `yaml:"on"`
	Jobs map[string]struct {
		Permissions map[string]string
		Steps       []step
	}
}

type step struct {
	Uses string
	Run  string
	With map[string]any
}

func readWorkflow(t *testing.T, name string) workflow {
	t.Helper()
	var w workflow
	readYAML(t, ".github/workflows/"+name, &w)
	return w
}

// steps returns the workflow's steps that use action (any version), or
// every step for "".
func (w workflow) steps(action string) []step {
	var out []step
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			if name, _, _ := strings.Cut(s.Uses, "@"); action == "" || name == action {
				out = append(out, s)
			}
		}
	}
	return out
}

// TestReleaseWorkflow checks that a v* tag runs the GoReleaser version that
// .ci/release checks the configuration with, with what it needs to publish:
// the full history, QEMU and buildx for the arm64 image, a ghcr.io login,
// syft for the SBOMs, and write permission on the release and packages.
func TestReleaseWorkflow(t *testing.T) {
	w := readWorkflow(t, "release.yml")
	push, _ := w.On["push"].(map[string]any)
	if tags, _ := push["tags"].([]any); !slices.Equal(tags, []any{"v*"}) || len(w.On) != 1 {
		t.Errorf("release.yml on %v: want only push of tags v*", w.On)
	}
	gr := w.steps("goreleaser/goreleaser-action")
	if len(gr) != 1 {
		t.Fatalf("release.yml: %d goreleaser-action steps, want 1", len(gr))
	}
	if got, want := gr[0].With["version"], toolVersion(t, "tools/go.mod", "github.com/goreleaser/goreleaser/v2"); got != want {
		t.Errorf("release.yml runs GoReleaser %v, .ci/release checks with %s (tools/go.mod)", got, want)
	}
	if got := gr[0].With["args"]; got != "release --clean" {
		t.Errorf("goreleaser args %q, want release --clean", got)
	}
	if co := w.steps("actions/checkout"); len(co) != 1 || co[0].With["fetch-depth"] != 0 {
		t.Errorf("release.yml checkout %v: want fetch-depth: 0 (GoReleaser reads the tags)", co)
	}
	for _, a := range []string{"docker/setup-qemu-action", "docker/setup-buildx-action", "anchore/sbom-action/download-syft"} {
		if len(w.steps(a)) != 1 {
			t.Errorf("release.yml: no %s step", a)
		}
	}
	if login := w.steps("docker/login-action"); len(login) != 1 || login[0].With["registry"] != strings.Split(image, "/")[0] {
		t.Errorf("release.yml login %v: want registry %s", login, strings.Split(image, "/")[0])
	}
	for name, j := range w.Jobs {
		if j.Permissions["contents"] != "write" || j.Permissions["packages"] != "write" {
			t.Errorf("release.yml job %s permissions %v: want contents and packages write", name, j.Permissions)
		}
	}
}

// TestCIWorkflow checks that pull requests run .ci/run, that .ci/run runs
// .ci/release, and that the Go both workflows install satisfies every
// module's go line (setup-go sets GOTOOLCHAIN=local: a newer line fails).
func TestCIWorkflow(t *testing.T) {
	w := readWorkflow(t, "ci.yml")
	if _, ok := w.On["pull_request"]; !ok {
		t.Errorf("ci.yml on %v: want pull_request", w.On)
	}
	if !slices.ContainsFunc(w.steps(""), func(s step) bool { return strings.TrimSpace(s.Run) == "bash .ci/run" }) {
		t.Error("ci.yml: no step runs bash .ci/run")
	}
	if !regexp.MustCompile(`(?m)^for stage in .*\.ci/release\b`).MatchString(readText(t, ".ci/run")) {
		t.Error(".ci/run: its stage loop does not run .ci/release")
	}
	if fi, err := os.Stat(filepath.Join(root, ".ci/release")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf(".ci/release: %v, want an executable file", err)
	}
	var mods []string
	walk(t, func(rel string) {
		if filepath.Base(rel) == "go.mod" && !strings.Contains(rel, "testdata") {
			mods = append(mods, rel)
		}
	})
	for _, name := range []string{"ci.yml", "release.yml"} {
		sg := readWorkflow(t, name).steps("actions/setup-go")
		if len(sg) != 1 {
			t.Errorf("%s: %d setup-go steps, want 1", name, len(sg))
			continue
		}
		goVersion, _ := sg[0].With["go-version"].(string)
		if goVersion == "" || sg[0].With["check-latest"] != true {
			t.Errorf("%s setup-go %v: want a go-version (1.26: its newest patch release) and check-latest", name, sg[0].With)
		}
		for _, mod := range mods {
			line := regexp.MustCompile(`(?m)^go (\S+)`).FindStringSubmatch(readText(t, mod))
			if line == nil {
				t.Errorf("%s: no go line", mod)
			} else if line[1] != goVersion && !strings.HasPrefix(line[1], goVersion+".") {
				t.Errorf("%s: go %s, but %s installs Go %s", mod, line[1], name, goVersion)
			}
		}
	}
}

// toolVersion returns the version at which the module at rel requires path.
func toolVersion(t *testing.T, rel, path string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(path) + `\s+(v\S+)`).FindStringSubmatch(readText(t, rel))
	if m == nil {
		t.Fatalf("%s does not require %s", rel, path)
	}
	return m[1]
}
