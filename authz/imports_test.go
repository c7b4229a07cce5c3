package authz_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The dependencies point one way: cmd → the adapters → authz → cache, and
// cmd builds jwks and hands it to authz through KeySource. The core (authz's
// files, not its tests) reaches no protobuf (but through cel-go: celProto),
// gRPC or Envoy package, and no
// key source; forward-auth reaches no protobuf, gRPC or Envoy package
// either; cache and jwks import nothing of ours. Each rule is held over
// every package the non-test files reach (go list -deps), not only their
// own imports.
func TestImportRules(t *testing.T) {
	const mod = "github.com/jwtauthz/jwtauthz"
	wire := []string{"google.golang.org/protobuf", "google.golang.org/grpc", "google.golang.org/genproto", "github.com/envoyproxy", "github.com/cncf/xds"}
	tests := []struct {
		pkg       string
		forbidden []string // import path prefixes
		ours      []string // the packages of this module it may reach, itself included
	}{
		// The core declares its Tracer; the OpenTelemetry SDK and API
		// stay in the adapters.
		{pkg: mod + "/authz", forbidden: append(slices.Clone(wire), "go.opentelemetry.io"), ours: []string{mod + "/authz", mod + "/cache"}},
		{pkg: mod + "/authz/forwardauth", forbidden: wire, ours: []string{mod + "/authz/forwardauth", mod + "/authz", mod + "/cache"}},
		{pkg: mod + "/cache", ours: []string{mod + "/cache"}},
		{pkg: mod + "/jwks", ours: []string{mod + "/jwks"}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			bad := func(dep string) bool {
				if (dep == mod || strings.HasPrefix(dep, mod+"/")) && !slices.Contains(tt.ours, dep) {
					return true
				}
				return slices.ContainsFunc(tt.forbidden, func(p string) bool { return dep == p || strings.HasPrefix(dep, p+"/") })
			}
			// Named: where a package the rule allows imports one it does
			// not (what the forbidden one imports in turn is left out).
			imports := deps(t, tt.pkg)
			var found []string
			for p, is := range imports {
				for _, dep := range is {
					if !bad(p) && bad(dep) && !celProto(p, dep) {
						found = append(found, p+" imports "+dep)
					}
				}
			}
			slices.Sort(found)
			for _, f := range found {
				t.Errorf("%s: %s", tt.pkg, f)
			}
		})
	}
}

// deps returns every package pkg's non-test files reach, itself included,
// each with its own imports.
func deps(t *testing.T, pkg string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", pkg).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	m := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 0 {
			m[f[0]] = f[1:]
		}
	}
	if _, ok := m[pkg]; !ok {
		t.Fatalf("go list -deps %s does not list the package itself:\n%s", pkg, out)
	}
	return m
}

// celProto reports whether p is a package of cel-go (rules' conditions)
// that imports dep, a protobuf package: CEL's values are protobuf's types,
// so the core reaches protobuf through it, and through it only; never gRPC
// or Envoy.
func celProto(p, dep string) bool {
	cel := strings.HasPrefix(p, "github.com/google/cel-go/") || p == "cel.dev/expr" || strings.HasPrefix(p, "cel.dev/expr/")
	proto := strings.HasPrefix(dep, "google.golang.org/protobuf/") || strings.HasPrefix(dep, "google.golang.org/genproto/googleapis/api/")
	return cel && proto
}
