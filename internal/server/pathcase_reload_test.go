package server

import (
	"slices"
	"testing"

	"github.com/jwtauthz/jwtauthz/internal/config"
)

// A reload applies the rules but not path_case, which is read at start: it
// says so rather than leave the rules matched otherwise than the file reads.
func TestPathCaseRestartOnly(t *testing.T) {
	old, cur := config.Defaults(), config.Defaults()
	cur.PathCase = "insensitive"
	if keys := restartOnly(old, cur); !slices.Contains(keys, "path_case") {
		t.Fatalf("restartOnly = %v, want path_case among them", keys)
	}
}
