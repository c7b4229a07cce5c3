package main

import (
	"fmt"
	"io"

	"github.com/jwtauthz/jwtauthz/internal/server"
)

// versionCmd prints the build: the release's -ldflags values, or what Go
// stamped in the binary.
func versionCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "jwtauthz version: unexpected argument %q\n", args[0])
		return exitUsage
	}
	printBuildInfo(stdout, server.ReadBuildInfo(version, commit, date))
	return exitOK
}

// printBuildInfo prints b one field a line; a field nobody could tell is
// "(unknown)", and a commit built with uncommitted changes ends in
// -modified.
func printBuildInfo(w io.Writer, b server.BuildInfo) {
	unknown := func(s string) string {
		if s == "" {
			return "(unknown)"
		}
		return s
	}
	rev := unknown(b.Commit)
	if b.Modified == "true" {
		rev += "-modified"
	}
	fmt.Fprintf(w, "version %s\ncommit  %s\nbuilt   %s\ngo      %s\n", b.Version, rev, unknown(b.Date), b.GoVersion)
}
