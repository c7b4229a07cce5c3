package main

import (
	"slices"
	"testing"
)

// A reload applies the rules but not path_case, which is read at start: it
// says so rather than leave the rules matched otherwise than the file reads.
func TestPathCaseRestartOnly(t *testing.T) {
	old, cur := defaults(), defaults()
	cur.PathCase = "insensitive"
	if keys := restartOnly(old, cur); !slices.Contains(keys, "path_case") {
		t.Fatalf("restartOnly = %v, want path_case among them", keys)
	}
}
