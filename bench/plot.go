package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Geometry of the plot, in SVG user units.
const (
	plotW, plotLeft, plotRight = 1000.0, 70.0, 190.0
	panelH, groupGap           = 240.0, 28.0
	latTop, cpuTop             = 70.0, 390.0
	plotH                      = 690.0
)

var palette = map[string]string{
	"floor": "#7f7f7f", "a-cached": "#1f77b4", "b-pool": "#2ca02c", "c-new-ES256": "#d62728",
	"c-new-RS256": "#ff7f0e", "floor-uds": "#c7c7c7", "a-cached-uds": "#9467bd", "d-opaque": "#8c564b",
}

func color(name string) string {
	if c, ok := palette[name]; ok {
		return c
	}
	return "#17becf"
}

// layout places each scenario × streams cell on the x axis: one group per
// stream count, one slot per scenario in it.
type layout struct {
	scenarios []string
	streams   []int
	cellW     float64
}

func newLayout(res *Results) layout {
	l := layout{}
	for _, s := range res.Scenarios {
		l.scenarios = append(l.scenarios, s.Name)
	}
	for _, c := range res.Summary {
		if len(l.streams) == 0 || l.streams[len(l.streams)-1] != c.Streams {
			l.streams = append(l.streams, c.Streams)
		}
	}
	slots := float64(max(1, len(l.scenarios)*len(l.streams)))
	l.cellW = (plotW - plotLeft - plotRight - groupGap*float64(max(0, len(l.streams)-1))) / slots
	return l
}

// x is the centre of the cell of scenario i in group g.
func (l layout) x(g, i int) float64 {
	return plotLeft + float64(g)*(float64(len(l.scenarios))*l.cellW+groupGap) + (float64(i)+0.5)*l.cellW
}

func (l layout) index(c Cell) (g, i int) {
	for g = range l.streams {
		if l.streams[g] == c.Streams {
			break
		}
	}
	for i = range l.scenarios {
		if l.scenarios[i] == c.Scenario {
			break
		}
	}
	return g, i
}

// plotSVG draws latency percentiles (log scale) and server CPU per check
// for every scenario × streams cell of the summary.
func plotSVG(res *Results) []byte {
	var b strings.Builder
	l := newLayout(res)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15" font-weight="bold">jwtauthz vs the floor: latency and server CPU per Check</text>`+"\n", plotLeft)
	fmt.Fprintf(&b, `<text x="%.0f" y="40" fill="#555">%s; jwtauthz %s%s; medians of %v runs of %v</text>`+"\n",
		plotLeft, html.EscapeString(res.Machine.String()), html.EscapeString(res.Commit), res.procs(), res.Options["rounds"], res.Options["duration"])
	latencyPanel(&b, res, l)
	cpuPanel(&b, res, l)
	legend(&b, l)
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func latencyPanel(b *strings.Builder, res *Results, l layout) {
	lo, hi := math.Inf(1), 0.0
	for _, c := range res.Summary {
		if c.P50 > 0 {
			lo, hi = math.Min(lo, c.P50), math.Max(hi, c.P999)
		}
	}
	if hi == 0 {
		return
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	y := func(v float64) float64 {
		return latTop + panelH - panelH*(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	title(b, latTop, "Latency per Check at the client (log scale): ● p50  ■ p99  ▲ p99.9")
	for d := lo; d <= hi*1.01; d *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := d * m; v <= hi*1.01 {
				gridLine(b, y(v), micros(v), m == 1)
			}
		}
	}
	for _, c := range res.Summary {
		if c.P50 <= 0 {
			continue
		}
		g, i := l.index(c)
		x, col := l.x(g, i), color(c.Scenario)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", x, x, y(c.P50), y(c.P999), col)
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>`+"\n", x, y(c.P50), col)
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="8" height="8" fill="%s"/>`+"\n", x-4, y(c.P99)-4, col)
		fmt.Fprintf(b, `<path d="M%.1f %.1fl5 8h-10z" fill="%s"/>`+"\n", x, y(c.P999)-5, col)
	}
	groupLabels(b, l, latTop+panelH)
}

func cpuPanel(b *strings.Builder, res *Results, l layout) {
	hi := 0.0
	for _, c := range res.Summary {
		hi = math.Max(hi, c.ServerCPU)
	}
	if hi == 0 {
		return
	}
	step := niceStep(hi / 5)
	hi = math.Ceil(hi*1.1/step) * step
	y := func(v float64) float64 { return cpuTop + panelH - panelH*v/hi }
	title(b, cpuTop, "Server CPU per check, µs (from /proc/<pid>/stat); dashed: its floor")
	for v := 0.0; v <= hi+step/2; v += step {
		gridLine(b, y(v), fmt.Sprintf("%g", v), v == 0)
	}
	w := l.cellW * 0.7
	for _, c := range res.Summary {
		g, i := l.index(c)
		x := l.x(g, i)
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x-w/2, y(c.ServerCPU), w, y(0)-y(c.ServerCPU), color(c.Scenario))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%.0f</text>`+"\n", x, y(c.ServerCPU)-3, c.ServerCPU)
	}
	floorLines(b, res, l, y)
	groupLabels(b, l, cpuTop+panelH)
}

// micros labels a latency axis: µs, ms or s.
func micros(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%g s", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%g ms", v/1e3)
	}
	return fmt.Sprintf("%g µs", v)
}

// floorLines draws, across each group, a dashed line at the CPU per check
// of the floor that the group's scenarios are compared with.
func floorLines(b *strings.Builder, res *Results, l layout, y func(float64) float64) {
	floorOf := map[string]string{}
	for _, s := range res.Scenarios {
		floorOf[s.Name] = s.Floor
	}
	cpu := map[string]float64{}
	for _, c := range res.Summary {
		cpu[fmt.Sprint(c.Scenario, c.Streams)] = c.ServerCPU
	}
	for _, c := range res.Summary {
		f := cpu[fmt.Sprint(floorOf[c.Scenario], c.Streams)]
		if floorOf[c.Scenario] == "" || f == 0 {
			continue
		}
		g, i := l.index(c)
		x := l.x(g, i)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333" stroke-dasharray="3 2"/>`+"\n", x-l.cellW/2, x+l.cellW/2, y(f), y(f))
	}
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func title(b *strings.Builder, top float64, s string) {
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="13" font-weight="bold">%s</text>`+"\n", plotLeft, top-12, html.EscapeString(s))
}

func gridLine(b *strings.Builder, y float64, label string, strong bool) {
	stroke := "#eee"
	if strong {
		stroke = "#ccc"
	}
	fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="%s"/>`+"\n", plotLeft, plotW-plotRight, y, y, stroke)
	fmt.Fprintf(b, `<text x="%.0f" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", plotLeft-6, y+4, label)
}

func groupLabels(b *strings.Builder, l layout, bottom float64) {
	for g, n := range l.streams {
		mid := (l.x(g, 0) + l.x(g, len(l.scenarios)-1)) / 2
		unit := "streams"
		if n == 1 {
			unit = "stream"
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d %s</text>`+"\n", mid, bottom+18, n, unit)
	}
}

func legend(b *strings.Builder, l layout) {
	x := plotW - plotRight + 20
	for i, s := range l.scenarios {
		y := latTop + float64(i)*20
		fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s"/>`+"\n", x, y, color(s))
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", x+18, y+10, html.EscapeString(s))
	}
}
