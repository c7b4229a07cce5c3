package main

import (
	"os"
	"strings"
	"testing"
)

// The README's configuration reference names every flag.
func TestReadmeDocumentsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range settings {
		if !strings.Contains(readme, "`--"+s.name+"`") {
			t.Errorf("README.md does not document --%s", s.name)
		}
	}
	for _, must := range []string{"go run ./cmd/jwtauthz dev", "go test ./..."} {
		if !strings.Contains(readme[:min(len(readme), 800)], must) {
			t.Errorf("README.md does not open with %q", must)
		}
	}
}
