package server

import (
	"runtime"
	"runtime/debug"
)

// BuildInfo says which build of jwtauthz runs: what `jwtauthz version`
// prints, the `starting` log line logs and the jwtauthz_build_info gauge
// is labelled with. A field nobody could tell is "".
type BuildInfo struct {
	// Version is the release (v1.2.3), or the module version Go stamped,
	// or "(devel)".
	Version string
	// Commit is the VCS revision the binary was built from.
	Commit string
	// Date is when the binary was built, or when Commit was committed
	// (RFC 3339).
	Date string
	// GoVersion is the Go the binary was built with (go1.26.1).
	GoVersion string
	// Modified is "true" if the binary was built from a tree with
	// uncommitted changes, "false" if from a clean one, "" if Go stamped
	// no VCS information.
	Modified string
}

// ReadBuildInfo resolves the build information of the running binary:
// version, commit and date are what a release build sets (-ldflags "-X
// main.version=… -X main.commit=… -X main.date=…"); each one left empty is
// read from what Go stamped in the binary (debug.ReadBuildInfo: the module
// version, vcs.revision, vcs.time), which `go build` does in a VCS
// checkout unless -buildvcs=false, and `go run` and `go test` do not.
func ReadBuildInfo(version, commit, date string) BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return resolveBuildInfo(version, commit, date, bi)
}

// resolveBuildInfo is ReadBuildInfo with the stamped information bi, which
// may be nil.
func resolveBuildInfo(version, commit, date string, bi *debug.BuildInfo) BuildInfo {
	b := BuildInfo{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version()}
	stamped := map[string]string{}
	if bi != nil {
		for _, s := range bi.Settings {
			stamped[s.Key] = s.Value
		}
		if v := bi.Main.Version; b.Version == "" && v != "(devel)" {
			b.Version = v
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	if b.Commit == "" {
		b.Commit = stamped["vcs.revision"]
	}
	if b.Date == "" {
		b.Date = stamped["vcs.time"]
	}
	b.Modified = stamped["vcs.modified"]
	return b
}

// WithBuildInfo labels the jwtauthz_build_info gauge with b instead of
// ReadBuildInfo("", "", "").
func WithBuildInfo(b BuildInfo) Option { return func(o *options) { o.build = &b } }

// buildInfo is the build the options name, or the running binary's.
func (o *options) buildInfo() BuildInfo {
	if o.build != nil {
		return *o.build
	}
	return ReadBuildInfo("", "", "")
}
