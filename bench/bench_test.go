package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 10_000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		name string
		q    float64
		want time.Duration
	}{
		{name: "p50", q: 0.50, want: 5000 * time.Microsecond},
		{name: "p99", q: 0.99, want: 9900 * time.Microsecond},
		{name: "p99.9", q: 0.999, want: 9990 * time.Microsecond},
		{name: "max", q: 1, want: 10_000 * time.Microsecond},
	} {
		got := h.Quantile(tc.q)
		if diff := float64(got-tc.want) / float64(tc.want); diff < -0.01 || diff > 0.01 {
			t.Errorf("%s: got %v, want %v within 1%%", tc.name, got, tc.want)
		}
	}
	if h.Count() != 10_000 {
		t.Errorf("count %d", h.Count())
	}
}

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<20; v += 1 + v/300 {
		b := bucket(v)
		if b < prev || lowest(b) > v || lowest(b+1) <= v {
			t.Fatalf("value %d: bucket %d [%d, %d), previous %d", v, b, lowest(b), lowest(b+1), prev)
		}
		prev = b
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b Histogram
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	a.Merge(&b)
	if a.Count() != 2 || a.Quantile(1) != 3*time.Millisecond {
		t.Fatalf("merged: count %d max %v", a.Count(), a.Quantile(1))
	}
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		line    string
		want    time.Duration
		wantErr bool
	}{
		{name: "plain", line: "1234 (jwtauthz) S 1 1234 1234 0 -1 4194560 2000 0 0 0 150 50 0 0 20 0 9 0 100 0 0", want: 2 * time.Second},
		{name: "spaces and parens in comm", line: "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0", want: 100 * time.Millisecond},
		{name: "truncated", line: "77 (x) R 1 2", wantErr: true},
		{name: "no comm", line: "77 x R", wantErr: true},
	} {
		got, err := parseStat([]byte(tc.line))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: got %v, %v; want %v, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseRSSAndHeap(t *testing.T) {
	status := []byte("Name:\tx\nVmPeak:\t  9 kB\nVmHWM:\t   30720 kB\nVmRSS:\t   20480 kB\n")
	if rss, err := parseStatus(status, "VmRSS"); err != nil || rss != 20<<20 {
		t.Errorf("VmRSS: %d, %v", rss, err)
	}
	if hwm, err := parseStatus(status, "VmHWM"); err != nil || hwm != 30<<20 {
		t.Errorf("VmHWM: %d, %v", hwm, err)
	}
	if _, err := parseStatus(status, "VmSwap"); err == nil {
		t.Error("no VmSwap line: no error")
	}
	heap, err := parseHeapAlloc([]byte("heap profile: 1: 2 [3: 4] @ heap/1048576\n\n# runtime.MemStats\n# Alloc = 5\n# HeapAlloc = 123456\n# Sys = 9\n"))
	if err != nil || heap != 123456 {
		t.Errorf("HeapAlloc: %d, %v", heap, err)
	}
}

func TestSelectScenarios(t *testing.T) {
	all := scenarios(&tokens{one: "t", pool: []string{"p"}, newES: []string{"e"}, newRS: []string{"r"}}, true)
	got, err := selectScenarios(all, "a-cached-uds,c-new-ES256")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "floor,c-new-ES256,floor-uds,a-cached-uds" {
		t.Errorf("selected %v", names)
	}
	if _, err := selectScenarios(all, "nope"); err == nil {
		t.Error("unknown scenario accepted")
	}
}

func TestPlanAlternates(t *testing.T) {
	scs := []*scenario{{Name: "floor"}, {Name: "a"}}
	var got []string
	for _, st := range plan(scs, []int{1}, 3) {
		got = append(got, st.sc.Name)
	}
	if strings.Join(got, " ") != "floor a a floor floor a" {
		t.Errorf("plan %v", got)
	}
}

func TestPlotSVG(t *testing.T) {
	res := &Results{Scenarios: []*scenario{{Name: "floor"}, {Name: "a-cached"}}, Options: map[string]any{},
		Summary: []Cell{{Scenario: "floor", Streams: 1, Figures: Figures{P50: 80, P99: 200, P999: 900, ServerCPU: 90}},
			{Scenario: "a-cached", Streams: 1, Figures: Figures{P50: 85, P99: 210, P999: 1000, ServerCPU: 88}}}}
	svg := string(plotSVG(res))
	if !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "a-cached") || strings.Contains(svg, "NaN") {
		t.Errorf("plot:\n%s", svg)
	}
}

func TestParseProcStat(t *testing.T) {
	got, err := parseProcStat([]byte("cpu  100 10 50 9000 30 5 5 2 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if want := 1720 * time.Millisecond; err != nil || got != want {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	if _, err := parseProcStat([]byte("intr 1 2 3\n")); err == nil {
		t.Error("a line that is not cpu accepted")
	}
}

func TestParseCallgrindTotal(t *testing.T) {
	// The layout callgrind 3.19 writes for a dump (-d), summary and totals
	// made to differ: totals is what counts.
	dump := "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 4242\ncmd:  ./jwtauthz serve\npart: 1\n\n" +
		"desc: I1 cache: \ndesc: Trigger: Client Request: dump\n\npositions: line\nevents: Ir\nsummary: 99\n\n\nob=(1) ./jwtauthz\nfl=(1) a.go\nfn=(1) main\n16 3\n\ntotals: 42530391\n"
	for _, tc := range []struct {
		out  string
		want float64 // 0: an error
	}{
		{dump, 42530391},
		{strings.Replace(dump, "totals: 42530391", "totals: 0", 1), 0}, // --toggle-collect matched nothing
		{"events: Ir\nsummary: 99\n", 0},
		{strings.Replace(dump, "totals: 42530391", "totals: x", 1), 0},
	} {
		n, err := parseCallgrindTotal(tc.out)
		if tc.want == 0 && err == nil || tc.want != 0 && (err != nil || n != tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.out[len(tc.out)-20:], n, err, tc.want)
		}
	}
}

func TestResultsNameGOMAXPROCS(t *testing.T) {
	// As this run records it, as a replotted results.json gives it back,
	// and as older results (without it) and Go's default leave it.
	for v, want := range map[any]bool{1: true, float64(2): true, 0: false, nil: false} {
		res := &Results{Options: map[string]any{}}
		if v != nil {
			res.Options["gomaxprocs"] = v
		}
		var b strings.Builder
		printTable(&b, res)
		for what, out := range map[string]string{"table": b.String(), "plot": string(plotSVG(res))} {
			got := strings.Contains(out, "jwtauthz with GOMAXPROCS="+fmt.Sprint(v))
			if !want {
				got = strings.Contains(out, "GOMAXPROCS")
			}
			if got != want {
				t.Errorf("gomaxprocs %v: the %s names it %v, want %v:\n%s", v, what, got, want, out)
			}
		}
	}
}

func TestTargetsBelowTheFloor(t *testing.T) {
	// An uncached check that costs less CPU than the floor's no-op.
	res := &Results{Summary: []Cell{{Scenario: "c-new-RS256", Streams: 1, BeyondFloor: -79.7, VsVerify: -1.12}}}
	var b strings.Builder
	printTargets(&b, res)
	if want := "- c-new-RS256 @1: CPU beyond the floor -79.7 µs = -1.12 × bare verify (≤ 1.20) MET"; !strings.Contains(b.String(), want) {
		t.Errorf("targets:\n%s\nwant the line %q", b.String(), want)
	}
}
