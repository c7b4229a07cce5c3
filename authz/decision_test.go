package authz

import "testing"

// A denial whose reason reads as success must still deny: fail closed.
// (The adapters' answers to every reason: extauthz's TestDenialIsNeverOK.)
func TestDenialIsNeverOK(t *testing.T) {
	for _, r := range Reasons() {
		if d := (Decision{Reason: r}); d.Status() == 200 {
			t.Errorf("denial with reason %v answers 200", r)
		}
	}
	var zero Decision
	if zero.Status() == 200 {
		t.Fatal("the zero Decision allows")
	}
}
