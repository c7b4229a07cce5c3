package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Results is everything one harness run found; results.json holds it.
type Results struct {
	Date       string               `json:"date"`
	Machine    Machine              `json:"machine"`
	Commit     string               `json:"commit"`
	Options    map[string]any       `json:"options"`
	Verify     map[string]float64   `json:"bare_verify_us"` // medians of VerifyRuns
	VerifyRuns map[string][]float64 `json:"bare_verify_runs_us"`
	TokenBytes int                  `json:"es256_token_bytes"`
	Scenarios  []*scenario          `json:"scenarios"`
	Runs       []Run                `json:"runs"`
	Summary    []Cell               `json:"summary"`
	Memory     *Memory              `json:"memory,omitempty"`
	// IntrospectionCallsPerToken is scenario d's introspection calls per
	// opaque token over the whole run: 1 (the fill) when the cache keeps
	// them all.
	IntrospectionCallsPerToken float64 `json:"introspection_calls_per_token,omitempty"`
}

// Cell is the medians over the rounds of one scenario at one stream count,
// and its ratios to the floor's medians at the same stream count.
type Cell struct {
	Scenario string `json:"scenario"`
	Streams  int    `json:"streams"`
	Runs     int    `json:"runs"`
	Figures
	Failed uint64 `json:"denied_or_failed"`

	CPURatio    float64 `json:"cpu_vs_floor,omitempty"`
	RateRatio   float64 `json:"throughput_vs_floor,omitempty"`
	BeyondFloor float64 `json:"cpu_beyond_floor_us,omitempty"`
	VsVerify    float64 `json:"beyond_floor_vs_bare_verify,omitempty"` // scenario c
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarizeRuns takes the medians of each scenario × streams and the ratios
// to its floor.
func summarizeRuns(scs []*scenario, streams []int, runs []Run, verify map[string]float64) []Cell {
	cells := map[string]*Cell{}
	key := func(sc string, n int) string { return fmt.Sprintf("%s/%d", sc, n) }
	var out []*Cell
	for _, n := range streams {
		for _, sc := range scs {
			c := cellOf(sc.Name, n, runs)
			cells[key(sc.Name, n)] = c
			out = append(out, c)
		}
	}
	for _, sc := range scs {
		for _, n := range streams {
			c, f := cells[key(sc.Name, n)], cells[key(sc.Floor, n)]
			if sc.Floor == "" || f == nil || f.ServerCPU == 0 || f.PerSecond == 0 {
				continue
			}
			c.CPURatio, c.RateRatio = c.ServerCPU/f.ServerCPU, c.PerSecond/f.PerSecond
			c.BeyondFloor = c.ServerCPU - f.ServerCPU
			if v := verify[sc.Alg]; v > 0 {
				c.VsVerify = c.BeyondFloor / v
			}
		}
	}
	res := make([]Cell, len(out))
	for i, c := range out {
		res[i] = *c
	}
	return res
}

func cellOf(name string, n int, runs []Run) *Cell {
	c := &Cell{Scenario: name, Streams: n}
	col := map[string][]float64{}
	for _, r := range runs {
		if r.Scenario != name || r.Streams != n {
			continue
		}
		c.Runs++
		c.Failed += r.Denied + r.Errors
		for k, v := range map[string]float64{"rate": r.PerSecond, "p50": r.P50, "p99": r.P99, "p999": r.P999,
			"cpu": r.ServerCPU, "util": r.ServerUtil, "client": r.ClientCPU, "hit": r.HitRate, "other": r.OtherCores} {
			col[k] = append(col[k], v)
		}
	}
	c.PerSecond, c.P50, c.P99, c.P999 = median(col["rate"]), median(col["p50"]), median(col["p99"]), median(col["p999"])
	c.ServerCPU, c.ServerUtil, c.ClientCPU, c.HitRate = median(col["cpu"]), median(col["util"]), median(col["client"]), median(col["hit"])
	c.OtherCores = median(col["other"])
	return c
}

// printTable prints the summary as markdown, then the targets.
func printTable(w io.Writer, res *Results) {
	fmt.Fprintf(w, "\nMachine: %s. Medians of %v runs of %v per cell, %v gRPC connections%s; ratios are to the floor on the same transport at the same streams.\n\n",
		res.Machine, res.Options["rounds"], res.Options["duration"], res.Options["conns"], res.procs())
	fmt.Fprintln(w, "| scenario | streams | checks/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/check | server cores | CPU ÷ floor | checks/s ÷ floor | client CPU µs/check | cache hits | other cores |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range res.Summary {
		ratio, rate, hits := "—", "—", "—"
		if c.CPURatio > 0 {
			ratio, rate = fmt.Sprintf("%.2f", c.CPURatio), fmt.Sprintf("%.2f", c.RateRatio)
		}
		if c.HitRate >= 0 {
			hits = fmt.Sprintf("%.1f%%", 100*c.HitRate)
		}
		fail := ""
		if c.Failed > 0 {
			fail = fmt.Sprintf(" (%d failed)", c.Failed)
		}
		fmt.Fprintf(w, "| %s%s | %d | %.0f | %.0f | %.0f | %.0f | %.1f | %.2f | %s | %s | %.1f | %s | %.2f |\n",
			c.Scenario, fail, c.Streams, c.PerSecond, c.P50, c.P99, c.P999, c.ServerCPU, c.ServerUtil, ratio, rate, c.ClientCPU, hits, c.OtherCores)
	}
	fmt.Fprintf(w, "\nBare signature verification (golang-jwt SigningMethod.Verify, one goroutine, idle machine; median of %d, once per round): ES256 %.1f µs, RS256 %.1f µs of CPU.\n",
		len(res.VerifyRuns["ES256"]), res.Verify["ES256"], res.Verify["RS256"])
	printTargets(w, res)
}

// procs is ", jwtauthz with GOMAXPROCS=N" if the run set it, else "". It
// is an int in this run's results, a float64 in a replotted one's, and
// absent in older ones.
func (res *Results) procs() string {
	if n := fmt.Sprint(res.Options["gomaxprocs"]); n != "0" && n != "<nil>" {
		return ", jwtauthz with GOMAXPROCS=" + n
	}
	return ""
}

// printTargets checks the load targets of issue 8.
func printTargets(w io.Writer, res *Results) {
	fmt.Fprintln(w, "\nTargets:")
	for _, c := range res.Summary {
		switch {
		case strings.HasPrefix(c.Scenario, "a-cached") && c.Streams >= 16 && c.CPURatio > 0:
			fmt.Fprintf(w, "- %s @%d: CPU %.2f × floor (≤ 1.00) %s; throughput %.2f × floor (≥ 0.95) %s\n",
				c.Scenario, c.Streams, c.CPURatio, verdict(c.CPURatio <= 1.0), c.RateRatio, verdict(c.RateRatio >= 0.95))
		case c.VsVerify != 0: // below 0 when the check costs less than the floor's
			fmt.Fprintf(w, "- %s @%d: CPU beyond the floor %.1f µs = %.2f × bare verify (≤ 1.20) %s\n",
				c.Scenario, c.Streams, c.BeyondFloor, c.VsVerify, verdict(c.VsVerify <= 1.2))
		}
	}
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

// write saves results.json and plot.svg in the results directory, and the
// plot also at -out if given.
func (res *Results) write(o *options) error {
	res.Date = time.Now().UTC().Format(time.RFC3339)
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.results, "results.json"), b, 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", filepath.Join(o.results, "results.json"))
	return res.writePlot(o)
}

// writePlot writes plot.svg in the results directory and at -out.
func (res *Results) writePlot(o *options) error {
	svg := plotSVG(res)
	paths := []string{filepath.Join(o.results, "plot.svg")}
	if o.out != "" {
		paths = append(paths, o.out)
	}
	for _, p := range paths {
		if err := os.WriteFile(p, svg, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %s\n", strings.Join(paths, ", "))
	return nil
}
