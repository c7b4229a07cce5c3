package sharedcache

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImports: the package stays a leaf: beyond what authz (for
// SharedVerdict) reaches, it reaches only go-redis and what go-redis needs,
// and internal/safefile (authz's own test keeps authz from reaching this
// package).
func TestImports(t *testing.T) {
	const mod = "github.com/jwtauthz/jwtauthz"
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	authz := deps(mod + "/authz")
	allowed := []string{mod + "/sharedcache", mod + "/internal/safefile", "github.com/redis/go-redis/v9", "github.com/cespare/xxhash/v2", "go.uber.org/atomic", "golang.org/x/sys"}
	for _, p := range deps(mod + "/sharedcache") {
		first, _, _ := strings.Cut(p, "/")
		if !strings.Contains(first, ".") || slices.Contains(authz, p) {
			continue // the standard library, or authz's
		}
		if !slices.ContainsFunc(allowed, func(a string) bool { return p == a || strings.HasPrefix(p, a+"/") }) {
			t.Errorf("sharedcache reaches %s", p)
		}
	}
}
