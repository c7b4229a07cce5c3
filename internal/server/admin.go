package server

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/jwtauthz/jwtauthz/cache"
	"github.com/jwtauthz/jwtauthz/jwks"
)

// Health states, worst last.
const (
	healthy   = "healthy"
	degraded  = "degraded"
	unhealthy = "unhealthy"
)

func (a *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /cache/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.cacheHealth())
	})
	mux.Handle("GET /metrics", a.metrics.handler())
	if a.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if a.dev != nil {
		mux.Handle("/dev/", a.dev)
	}
	return mux
}

// readyz is 200 only when every provider has a usable key set and the
// process is not shutting down; otherwise 503 with the reason.
func (a *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if a.ready.Load() {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return
	}
	var waiting []string
	for _, src := range a.sources.list() {
		if !src.Ready() {
			waiting = append(waiting, src.Name())
		}
	}
	reason := "shutting down"
	if !a.stopping.Load() && len(waiting) > 0 {
		reason = "no key set yet for provider(s) " + strings.Join(waiting, ", ")
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reason": reason, "waiting_for": waiting})
}

type cacheReport struct {
	Status    string  `json:"status"`
	Hits      uint64  `json:"hits"`
	Misses    uint64  `json:"misses"`
	HitRate   float64 `json:"hit_rate"`
	Size      int     `json:"size"`
	Capacity  int     `json:"capacity"`
	Evictions uint64  `json:"evictions"`
}

func report(s cache.Stats) cacheReport {
	return cacheReport{Status: healthy, Hits: s.Hits, Misses: s.Misses, HitRate: s.HitRate(), Size: s.Size, Capacity: s.Capacity, Evictions: s.Evictions}
}

type providerReport struct {
	Name        string     `json:"name"`
	Status      string     `json:"status"`
	JWKSURL     string     `json:"jwks_url"`
	Keys        int        `json:"keys"`
	LastRefresh *time.Time `json:"last_refresh"`
	AgeSeconds  *float64   `json:"age_seconds"`
	LastAttempt *time.Time `json:"last_attempt"`
	LastError   *string    `json:"last_error"`
}

type jwksReport struct {
	Status    string           `json:"status"`
	Providers []providerReport `json:"providers"`
}

type healthReport struct {
	Status     string `json:"status"`
	Components struct {
		Tokens   cacheReport `json:"jwt_validation_cache"`
		Dedup    cacheReport `json:"request_dedup_cache"`
		Negative cacheReport `json:"negative_cache"`
		JWKS     jwksReport  `json:"jwks_cache"`
	} `json:"components"`
}

// cacheHealth is the seed's /cache/health shape: the token cache, the
// request dedup, the negative cache and each provider's keys. The overall
// status is the worst of the providers': unhealthy while one has no keys,
// degraded while one serves keys its last refresh could not renew.
func (a *Server) cacheHealth() healthReport {
	var h healthReport
	st := a.engine.Stats()
	h.Components.Tokens, h.Components.Dedup, h.Components.Negative = report(st.Tokens), report(st.Dedup), report(st.Negative)
	j := &h.Components.JWKS
	j.Status = healthy
	now := time.Now()
	for _, src := range a.sources.list() {
		pr := providerStatus(src.Status(), now)
		if rank(pr.Status) > rank(j.Status) {
			j.Status = pr.Status
		}
		j.Providers = append(j.Providers, pr)
	}
	h.Status = j.Status
	return h
}

func providerStatus(s jwks.Status, now time.Time) providerReport {
	pr := providerReport{Name: s.Name, JWKSURL: s.URL, Keys: s.Keys, Status: healthy}
	switch {
	case !s.Ready:
		pr.Status = unhealthy
	case s.LastError != "":
		pr.Status = degraded
	}
	if s.Ready {
		t, age := s.KeysFetched, now.Sub(s.KeysFetched).Seconds()
		pr.LastRefresh, pr.AgeSeconds = &t, &age
	}
	if !s.LastAttempt.IsZero() {
		t := s.LastAttempt
		pr.LastAttempt = &t
	}
	if s.LastError != "" {
		e := s.LastError
		pr.LastError = &e
	}
	return pr
}

func rank(s string) int {
	switch s {
	case degraded:
		return 1
	case unhealthy:
		return 2
	}
	return 0
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
