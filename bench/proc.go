package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// Linux has fixed it at 100 on every architecture Go supports; main checks
// `getconf CLK_TCK` and warns if it differs.
const clockTicks = 100

// cpuTime returns the user+system CPU time pid has used, from
// /proc/<pid>/stat ("self" for this process).
func cpuTime(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStat(b)
}

// parseStat reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat
// line. The command name, field 2, is in parentheses and may hold spaces
// and parentheses itself, so fields are counted from the last ')'.
func parseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no command name in %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %w", err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// rssBytes returns VmRSS of pid, from /proc/<pid>/status.
func rssBytes(pid string) (int64, error) { return statusBytes(pid, "VmRSS") }

// statusBytes returns the "kB" line key of /proc/<pid>/status, in bytes.
func statusBytes(pid, key string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	return parseStatus(b, key)
}

// parseStatus finds a "key:   1234 kB" line of a /proc/<pid>/status.
func parseStatus(b []byte, key string) (int64, error) {
	v := field(b, key, ":")
	kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("status: %s: %q", key, v)
	}
	return kb << 10, nil
}

// Machine describes where a run happened.
type Machine struct {
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	MemoryGB int64  `json:"memory_gib"`
	Go       string `json:"go"`
	Kernel   string `json:"kernel"`
	ClkTck   string `json:"clk_tck"`
}

// String is the one line printed above the table.
func (m Machine) String() string {
	return fmt.Sprintf("%s, %d cores, %d GiB, Linux %s, %s", m.CPU, m.Cores, m.MemoryGB, m.Kernel, m.Go)
}

// machine reads the CPU model, cores, memory and kernel of this machine.
func machine() Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), Go: runtime.Version(), Kernel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = field(b, "model name", ":")
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		kb, _ := strconv.ParseInt(strings.TrimSuffix(field(b, "MemTotal", ":"), " kB"), 10, 64)
		m.MemoryGB = (kb + 1<<19) >> 20
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		m.ClkTck = strings.TrimSpace(string(out))
	}
	return m
}

// field returns the value of the first "key<sep> value" line of b.
func field(b []byte, key, sep string) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// machineBusy returns the CPU time all cores of the machine have spent
// busy so far, from the first line of /proc/stat: user, nice, system, irq,
// softirq and steal (guest time is already in user).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStat(b)
}

func parseProcStat(b []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: first line %q", line)
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// waitIdle waits, up to limit, until the machine spends less than
// threshold cores on anything over a half-second window: another build or
// test on the same machine would otherwise steal CPU from the servers and
// make the figures noise. It returns the busy cores of the last window.
func waitIdle(ctx context.Context, threshold float64, limit time.Duration) float64 {
	deadline := time.Now().Add(limit)
	for {
		b0, err := machineBusy()
		t0 := time.Now()
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(500 * time.Millisecond):
		}
		b1, err1 := machineBusy()
		if err != nil || err1 != nil {
			return 0
		}
		busy := (b1 - b0).Seconds() / time.Since(t0).Seconds()
		if busy < threshold || time.Now().After(deadline) {
			return busy
		}
	}
}
