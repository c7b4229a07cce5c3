package server

import (
	"bytes"
	"errors"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// TestMemoryLimit sets Go's soft memory limit from a container limit of
// 1000 MiB as serve does from its cgroup's: 90 % of it, unless GOMEMLIMIT
// or AUTOMEMLIMIT say otherwise, and nothing without a limit.
func TestMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	const limit = 1000 << 20
	for _, tc := range []struct {
		name                     string
		gomemlimit, automemlimit string // "-": unset
		provider                 memlimit.Provider
		want                     int64
		log                      string // "": no line
	}{
		{"90 % of the container's", "-", "-", memlimit.Limit(limit), limit * 9 / 10, `"level":"INFO","msg":"Go memory limit","bytes":943718400`},
		{"GOMEMLIMIT wins", "512MiB", "-", memlimit.Limit(limit), math.MaxInt64, ""},
		{"AUTOMEMLIMIT's share", "-", "0.5", memlimit.Limit(limit), limit / 2, `"bytes":524288000`},
		{"AUTOMEMLIMIT off", "-", "off", memlimit.Limit(limit), math.MaxInt64, ""},
		{"AUTOMEMLIMIT garbage", "-", "most", memlimit.Limit(limit), math.MaxInt64, `"level":"WARN","msg":"Go memory limit not set"`},
		{"no limit", "-", "-", func() (uint64, error) { return 0, memlimit.ErrNoLimit }, math.MaxInt64, ""},
		{"not in a cgroup", "-", "-", func() (uint64, error) { return 0, memlimit.ErrNoCgroup }, math.MaxInt64, `"level":"DEBUG","msg":"no container memory limit"`},
		{"cgroup unreadable", "-", "-", func() (uint64, error) { return 0, errors.New("permission denied") }, math.MaxInt64, `"level":"WARN","msg":"Go memory limit not set","error":"failed to set GOMEMLIMIT: permission denied"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, v := range map[string]string{"GOMEMLIMIT": tc.gomemlimit, "AUTOMEMLIMIT": tc.automemlimit} {
				t.Setenv(name, v) // restored afterwards, also when unset here
				if v == "-" {
					os.Unsetenv(name)
				}
			}
			debug.SetMemoryLimit(math.MaxInt64)
			var out bytes.Buffer
			setMemoryLimit(NewLogger(&out, "debug", "json"), tc.provider)
			if got := debug.SetMemoryLimit(-1); got != tc.want {
				t.Errorf("memory limit %d, want %d", got, tc.want)
			}
			if tc.log == "" && out.Len() > 0 {
				t.Errorf("logged %s, want nothing", out.String())
			}
			if !strings.Contains(out.String(), tc.log) {
				t.Errorf("logged %q, want %s", out.String(), tc.log)
			}
		})
	}
}
