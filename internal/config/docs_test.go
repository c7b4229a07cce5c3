package config

import (
	"os"
	"strings"
	"testing"
)

// TestDocsDocumentEverySetting wants every flag in the configuration
// reference.
func TestDocsDocumentEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, s := range settings {
		if !strings.Contains(doc, "`--"+s.name+"`") {
			t.Errorf("docs/configuration.md does not document --%s", s.name)
		}
	}
}
