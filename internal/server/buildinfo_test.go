package server

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// What a release sets with -ldflags -X wins, field by field; what is left
// empty comes from what Go stamped (the module version, vcs.revision,
// vcs.time, vcs.modified).
func TestResolveBuildInfo(t *testing.T) {
	vcs := func(version string, kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/jwtauthz/jwtauthz", Version: version}}
		for i := 0; i+1 < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	const rev = "6fafb771d5801b475ef2a1c7f5ec5b16f4c9e652"
	checkout := vcs("(devel)", "vcs", "git", "vcs.revision", rev, "vcs.time", "2026-12-06T18:48:58Z", "vcs.modified", "true")
	tests := []struct {
		name                  string
		version, commit, date string // the -ldflags values
		bi                    *debug.BuildInfo
		want                  BuildInfo
	}{
		{
			name: "a release: the ldflags values win", version: "v9.9.9", commit: "abc", date: "2026-01-01T00:00:00Z", bi: checkout,
			want: BuildInfo{Version: "v9.9.9", Commit: "abc", Date: "2026-01-01T00:00:00Z", Modified: "true"},
		},
		{
			name: "go build in a checkout", bi: checkout,
			want: BuildInfo{Version: "(devel)", Commit: rev, Date: "2026-12-06T18:48:58Z", Modified: "true"},
		},
		{
			name: "go build in a checkout, Go's pseudo-version", bi: vcs("v0.0.0-20261206184858-6fafb771d580", "vcs.revision", rev, "vcs.time", "2026-12-06T18:48:58Z", "vcs.modified", "false"),
			want: BuildInfo{Version: "v0.0.0-20261206184858-6fafb771d580", Commit: rev, Date: "2026-12-06T18:48:58Z", Modified: "false"},
		},
		{
			name: "only the version set", version: "v1.0.0", bi: checkout,
			want: BuildInfo{Version: "v1.0.0", Commit: rev, Date: "2026-12-06T18:48:58Z", Modified: "true"},
		},
		{
			name: "go install …@v1.2.3: a module version, no VCS", bi: vcs("v1.2.3"),
			want: BuildInfo{Version: "v1.2.3"},
		},
		{
			name: "go run, or -buildvcs=false: nothing stamped", bi: vcs("(devel)"),
			want: BuildInfo{Version: "(devel)"},
		},
		{
			name: "no build information", bi: nil,
			want: BuildInfo{Version: "(devel)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.GoVersion = runtime.Version()
			if got := resolveBuildInfo(tt.version, tt.commit, tt.date, tt.bi); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The gauge carries the build WithBuildInfo gives, or without it the
// running binary's.
func TestBuildInfoGauge(t *testing.T) {
	b := BuildInfo{Version: "v9.9.9", Commit: "abc", Date: "2026-01-01T00:00:00Z", GoVersion: "go1.26.0", Modified: "false"}
	want := func(b BuildInfo) string {
		return `# HELP jwtauthz_build_info Always 1, labelled with the build of jwtauthz that runs (as ` + "`jwtauthz version`" + ` prints it).
# TYPE jwtauthz_build_info gauge
jwtauthz_build_info{commit="` + b.Commit + `",date="` + b.Date + `",go_version="` + b.GoVersion + `",modified="` + b.Modified + `",version="` + b.Version + `"} 1
`
	}
	for _, tt := range []struct {
		name string
		opts []Option
		want BuildInfo
	}{
		{name: "WithBuildInfo", opts: []Option{WithBuildInfo(b)}, want: b},
		{name: "the running binary's", want: ReadBuildInfo("", "", "")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := defaultOptions()
			for _, opt := range tt.opts {
				opt(&o)
			}
			m := newMetrics()
			m.setBuildInfo(o.buildInfo())
			if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want(tt.want)), "jwtauthz_build_info"); err != nil {
				t.Error(err)
			}
		})
	}
}
