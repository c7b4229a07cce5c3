package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// srvMem is the process of the memory measurement.
const srvMem = "jwtauthz-mem"

// Memory is the memory per cached token: each point is the live heap
// (HeapAlloc after a GC) and RSS with that many tokens sent, less the
// baseline of the same process with its connections open and nothing
// cached but one token, over the entries the cache gained. Its peak is
// VmHWM, the most RSS the process has had, less the same baseline.
type Memory struct {
	BaselineEntries int        `json:"baseline_cache_entries"`
	BaselineHeap    int64      `json:"baseline_heap_bytes"`
	BaselineRSS     int64      `json:"baseline_rss_bytes"`
	TokenBytes      int        `json:"token_bytes"`
	MintSeconds     float64    `json:"mint_seconds"`
	Seconds         float64    `json:"seconds"`
	Points          []MemPoint `json:"points"`
}

// MemPoint is the memory with Tokens cached.
type MemPoint struct {
	Tokens       int     `json:"tokens"`
	Entries      int     `json:"cache_entries"`
	Heap         int64   `json:"heap_bytes"`
	RSS          int64   `json:"rss_bytes"`
	HeapPerToken float64 `json:"heap_bytes_per_token"`
	RSSPerToken  float64 `json:"rss_bytes_per_token"`
	PeakRSS      int64   `json:"peak_rss_bytes"`
	PeakPerToken float64 `json:"peak_rss_bytes_per_token"`
	FillSeconds  float64 `json:"fill_seconds"`
}

// memory fills a fresh jwtauthz with distinct valid tokens up to each of
// -mem-sizes and measures it after a GC. The checks carry no x-request-id,
// so that the request dedup keeps nothing that would count as the tokens'.
func (e *env) memory() (*Memory, error) {
	t0 := time.Now()
	sizes := e.o.memSizes
	toks, err := e.memTokens(sizes[len(sizes)-1])
	if err != nil {
		return nil, err
	}
	m := &Memory{TokenBytes: len(toks[0]), MintSeconds: time.Since(t0).Seconds()}
	fmt.Printf("\nmemory: minted %d ES256 tokens in %.1fs\n", len(toks), m.MintSeconds)
	srv, _, err := e.server(srvMem)
	if err != nil {
		return nil, err
	}
	warm := make([]string, 20_000)
	for i := range warm {
		warm[i] = e.toks.one
	}
	if err := e.fill(srvMem, warm, e.o.memStreams, true); err != nil {
		return nil, err
	}
	if m.BaselineHeap, m.BaselineRSS, _, err = e.settled(srv); err != nil {
		return nil, err
	}
	if m.BaselineEntries, err = srv.cacheEntries(); err != nil {
		return nil, err
	}
	done := 0
	for _, n := range sizes {
		t1 := time.Now()
		if err := e.fill(srvMem, toks[done:n], e.o.memStreams, true); err != nil {
			return nil, err
		}
		p, err := e.point(srv, m, n, time.Since(t1))
		if err != nil {
			return nil, err
		}
		m.Points = append(m.Points, p)
		fmt.Printf("memory: %d tokens: %.0f B heap, %.0f B RSS per token\n", n, p.HeapPerToken, p.RSSPerToken)
		done = n
	}
	m.Seconds = time.Since(t0).Seconds()
	return m, nil
}

// memTokens returns n distinct tokens: scenario b's and as many more as
// needed.
func (e *env) memTokens(n int) ([]string, error) {
	toks := append([]string(nil), e.toks.pool[:min(n, len(e.toks.pool))]...)
	if n > len(toks) {
		more, err := mint(e.es, e.idp.URL, "mem", n-len(toks), tokenTTL)
		if err != nil {
			return nil, err
		}
		toks = append(toks, more...)
	}
	return toks, nil
}

func (e *env) point(srv *server, m *Memory, n int, fill time.Duration) (MemPoint, error) {
	p := MemPoint{Tokens: n, FillSeconds: fill.Seconds()}
	var err error
	if p.Heap, p.RSS, p.PeakRSS, err = e.settled(srv); err != nil {
		return p, err
	}
	if p.Entries, err = srv.cacheEntries(); err != nil {
		return p, err
	}
	cached := float64(p.Entries - m.BaselineEntries) // the tokens in the cache, in case some were evicted
	p.HeapPerToken = float64(p.Heap-m.BaselineHeap) / cached
	p.RSSPerToken = float64(p.RSS-m.BaselineRSS) / cached
	p.PeakPerToken = float64(p.PeakRSS-m.BaselineRSS) / cached
	return p, nil
}

// settled returns HeapAlloc after a GC, VmRSS once Go's scavenger has
// given back what it will, and VmHWM. It runs two GCs: the scavenger's goal
// is set at each GC from the heap in use then, and at the first one after
// the fill that still counts the fill's garbage, not yet swept; at the
// second it is the live heap and its fragmentation. Then it reads VmRSS
// every second until it has not fallen (by 1 MiB) for 5 s, for at most
// -settle. (Reading RSS right after the second GC, as the harness did
// before, gave 449 B/token at 1M where it settled to 339 B seconds later.)
func (e *env) settled(srv *server) (heap, rss, peak int64, err error) {
	for range 2 {
		if heap, err = srv.heapAfterGC(); err != nil {
			return 0, 0, 0, err
		}
	}
	if rss, err = rssBytes(srv.pid); err != nil {
		return 0, 0, 0, err
	}
	first := rss
	for end, still := time.Now().Add(e.o.settle), 0; still < 5 && time.Now().Before(end); {
		time.Sleep(time.Second)
		now, err := rssBytes(srv.pid)
		if err != nil {
			return 0, 0, 0, err
		}
		if still++; now < rss-1<<20 {
			still = 0
		}
		rss = min(rss, now)
	}
	fmt.Printf("memory: heap %.1f MiB; RSS %.1f MiB after the GCs, %.1f MiB settled\n", mib(heap), mib(first), mib(rss))
	peak, err = statusBytes(srv.pid, "VmHWM")
	return heap, rss, peak, err
}

// cacheEntries returns the token cache's size from /cache/health.
func (s *server) cacheEntries() (int, error) {
	var h struct {
		Components struct {
			Tokens struct{ Size int } `json:"jwt_validation_cache"`
		} `json:"components"`
	}
	b, err := get(s.adminURL + "/cache/health")
	if err == nil {
		err = json.Unmarshal(b, &h)
	}
	return h.Components.Tokens.Size, err
}

// printMemory prints the memory figures as markdown.
func printMemory(w io.Writer, m *Memory) {
	fmt.Fprintf(w, "\nMemory per cached token (ES256 tokens of %d bytes; baseline: heap %.1f MiB, RSS %.1f MiB, one token cached):\n\n",
		m.TokenBytes, mib(m.BaselineHeap), mib(m.BaselineRSS))
	fmt.Fprintln(w, "| tokens | cache entries | heap MiB | RSS MiB | heap B/token | RSS B/token | peak RSS MiB | peak RSS B/token | fill s |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, p := range m.Points {
		fmt.Fprintf(w, "| %d | %d | %.1f | %.1f | %.0f | %.0f | %.1f | %.0f | %.0f |\n",
			p.Tokens, p.Entries, mib(p.Heap), mib(p.RSS), p.HeapPerToken, p.RSSPerToken, mib(p.PeakRSS), p.PeakPerToken, p.FillSeconds)
	}
	fmt.Fprintln(w, "\nTargets:")
	for _, p := range m.Points {
		fmt.Fprintf(w, "- %d tokens: heap %.0f B/token (≤ 300) %s; RSS %.0f B/token (≤ 400) %s\n",
			p.Tokens, p.HeapPerToken, verdict(p.HeapPerToken <= 300), p.RSSPerToken, verdict(p.RSSPerToken <= 400))
	}
	fmt.Fprintf(w, "\n(-mem took %.0f s, %.0f s of it minting.)\n", m.Seconds, m.MintSeconds)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
