package introspect_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNothingOfOurs keeps introspect a leaf: authz declares the
// interface it implements (authz.Introspector), and the server adapts its
// errors, so that neither package reaches the other.
func TestImportsNothingOfOurs(t *testing.T) {
	const mod = "github.com/jwtauthz/jwtauthz"
	out, err := exec.Command("go", "list", "-deps", mod+"/introspect").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, mod+"/") && dep != mod+"/introspect" {
			t.Errorf("introspect reaches %s", dep)
		}
	}
}
