package server

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/cache"
	"github.com/jwtauthz/jwtauthz/introspect"
	"github.com/jwtauthz/jwtauthz/jwks"
)

// metrics are jwtauthz's Prometheus metrics. Label values are bounded:
// decisions, the fixed reasons, configured provider names and cache names,
// never a subject, token, kid or path.
type metrics struct {
	reg      *prometheus.Registry
	checks   *prometheus.CounterVec
	duration [2]prometheus.Observer // by cached: false, true
	fetches  *prometheus.CounterVec
	fetchDur *prometheus.HistogramVec
	saveErrs *prometheus.CounterVec
	// introspections counts introspection calls by provider and outcome,
	// introDur times them (introspection.go).
	introspections *prometheus.CounterVec
	introDur       *prometheus.HistogramVec
	// reloadOK is 0 while the last reload of the configuration was
	// refused, else 1.
	reloadOK prometheus.Gauge
	// counters resolves (provider, decision, reason) to a counter without
	// hashing labels on each check; replaced on reload.
	counters atomic.Pointer[map[string]*[2][]prometheus.Counter]
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtauthz_check_total", Help: "Checks decided, by decision, reason and provider.",
	}, []string{"decision", "reason", "provider"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jwtauthz_check_duration_seconds",
		Help:    "Time to decide a check, by whether a cache answered.",
		Buckets: []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1},
	}, []string{"cached"})
	m.duration = [2]prometheus.Observer{dur.WithLabelValues("false"), dur.WithLabelValues("true")}
	m.fetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtauthz_jwks_fetch_total", Help: "JWKS fetch attempts, by provider and result (ok|error).",
	}, []string{"provider", "result"})
	m.fetchDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jwtauthz_jwks_fetch_duration_seconds", Help: "Time of JWKS fetch attempts.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	}, []string{"provider"})
	m.saveErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtauthz_jwks_cache_save_errors_total",
		Help: "Key sets that could not be saved to jwks_cache_dir, by provider: a restart during an IdP outage would start with an older set, or none.",
	}, []string{"provider"})
	m.introspections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtauthz_introspection_requests_total",
		Help: "Token introspection calls (RFC 7662), by provider and outcome (active|inactive|failed|unavailable|breaker_open); a check answered by a cache makes none.",
	}, []string{"provider", "outcome"})
	m.introDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jwtauthz_introspection_duration_seconds", Help: "Time of token introspection calls that reached the endpoint, by provider.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 13),
	}, []string{"provider"})
	m.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "jwtauthz_config_last_reload_successful",
		Help: "0 while the last reload of the configuration was refused (the one running is older than the file), else 1.",
	})
	m.reloadOK.Set(1)
	m.reg.MustRegister(m.introspections, m.introDur, m.reloadOK)
	m.reg.MustRegister(m.checks, dur, m.fetches, m.fetchDur, m.saveErrs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// setBuildInfo exports jwtauthz_build_info, always 1, labelled with b.
func (m *metrics) setBuildInfo(b BuildInfo) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "jwtauthz_build_info",
		Help: "Always 1, labelled with the build of jwtauthz that runs (as `jwtauthz version` prints it).",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "commit": b.Commit, "date": b.Date, "go_version": b.GoVersion, "modified": b.Modified,
		},
	})
	g.Set(1)
	m.reg.MustRegister(g)
}

// setProviders pre-resolves the check counters of these providers: only
// the (provider, decision, reason) combinations a check can produce
// (possible), so that no impossible series is exported. failOpen says that
// some rule is optional_or_failed (failsOpen).
func (m *metrics) setProviders(names []string, failOpen bool) {
	byName := map[string]*[2][]prometheus.Counter{}
	for _, n := range append([]string{""}, names...) {
		var cs [2][]prometheus.Counter
		for i, decision := range []string{"deny", "allow"} {
			cs[i] = make([]prometheus.Counter, authz.NumReasons)
			for _, r := range authz.Reasons() {
				if possible(n != "", i == 1, r) || (failOpen && i == 1 && possible(n != "", false, r) && possibleFailedOpen(r)) {
					cs[i][r] = m.checks.WithLabelValues(decision, r.String(), n)
				}
			}
		}
		byName[n] = &cs
	}
	m.counters.Store(&byName)
}

// possible reports whether a check may be decided with reason r, allowed or
// not, under a provider's label (named) or provider="". A provider labels
// an allow with its token (ok), and a denial of a token whose iss names it:
// from its verification on (bad signature, expired, missing claim, wrong
// audience, …, insufficient scope). Public and anonymous allows, and
// denials before a token is read (no token, too large, a bad request), have
// no provider.
func possible(named, allow bool, r authz.Reason) bool {
	switch r {
	case authz.ReasonOK:
		return allow && named
	case authz.ReasonPublic, authz.ReasonAnonymous:
		return allow && !named
	case authz.ReasonNoToken, authz.ReasonTooLarge, authz.ReasonRequestTooLarge, authz.ReasonBadRequest, authz.ReasonSpoofedHeader:
		return !allow && !named
	}
	return !allow
}

// failsOpen reports whether a rule of rules has action optional_or_failed,
// whose allows may carry a denial's reason.
func failsOpen(rules []authz.RuleConfig) bool {
	for _, r := range rules {
		if r.Action == authz.ActionOptionalOrFailed {
			return true
		}
	}
	return false
}

// possibleFailedOpen reports whether an optional_or_failed rule may allow a
// request that would have been denied for r: any denial of the token but
// no_token (an anonymous allow) and those before the token is read (a
// request too large, bad or spoofed). Such a rule at most doubles the
// denial series, with the same bounded labels.
func possibleFailedOpen(r authz.Reason) bool {
	switch r {
	case authz.ReasonNoToken, authz.ReasonRequestTooLarge, authz.ReasonBadRequest, authz.ReasonSpoofedHeader:
		return false
	}
	return true
}

// observeCheck counts one decision; it is on the hot path.
func (m *metrics) observeCheck(d *authz.Decision, elapsed time.Duration) {
	provider := d.Provider
	cs := (*m.counters.Load())[provider]
	if cs == nil {
		provider, cs = "", (*m.counters.Load())[""]
	}
	allow := 0
	if d.Allow {
		allow = 1
	}
	if c := cs[allow][d.Reason]; c != nil {
		c.Inc()
	} else { // a combination possible does not foresee: count it all the same (its labels are bounded)
		decision := [2]string{"deny", "allow"}[allow]
		m.checks.WithLabelValues(decision, d.Reason.String(), provider).Inc()
	}
	cached := 0
	if d.Cached {
		cached = 1
	}
	m.duration[cached].Observe(elapsed.Seconds())
}

// observeIntrospection counts one introspection call of provider.
func (m *metrics) observeIntrospection(provider string, o introspect.Outcome, d time.Duration) {
	m.introspections.WithLabelValues(provider, string(o)).Inc()
	if o != introspect.OutcomeBreakerOpen {
		m.introDur.WithLabelValues(provider).Observe(d.Seconds())
	}
}

// introspectionSeries makes provider's introspection series exist at 0.
func (m *metrics) introspectionSeries(provider string) {
	for _, o := range introspect.Outcomes {
		m.introspections.WithLabelValues(provider, string(o))
	}
}

func (m *metrics) observeFetch(r jwks.FetchResult) {
	result := "ok"
	if r.Err != nil {
		result = "error"
	}
	m.fetches.WithLabelValues(r.Provider, result).Inc()
	m.fetchDur.WithLabelValues(r.Provider).Observe(r.Duration.Seconds())
	saveErrs := m.saveErrs.WithLabelValues(r.Provider) // 0 from the first fetch, for alerts
	if r.CacheErr != nil {
		saveErrs.Inc()
	}
}

// statsCollector reads the caches' and key sources' state at scrape time,
// so that the check path pays nothing for it.
type statsCollector struct {
	stats   func() authz.Stats
	sources func() []*jwks.Source

	hits, misses, evictions, entries, keys, age, verified *prometheus.Desc
}

func newStatsCollector(stats func() authz.Stats, sources func() []*jwks.Source) *statsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &statsCollector{
		stats: stats, sources: sources,
		hits:      d("jwtauthz_cache_hits_total", "Cache lookups that found an entry.", "cache"),
		misses:    d("jwtauthz_cache_misses_total", "Cache lookups that found none.", "cache"),
		evictions: d("jwtauthz_cache_evictions_total", "Entries dropped to make room.", "cache"),
		entries:   d("jwtauthz_cache_entries", "Entries held.", "cache"),
		keys:      d("jwtauthz_jwks_keys", "Keys in the set in use.", "provider"),
		age:       d("jwtauthz_jwks_age_seconds", "Age of the key set in use.", "provider"),
		verified:  d("jwtauthz_verifications_total", "Tokens whose signature and claims were checked: checks no cache answered."),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.evictions, c.entries, c.keys, c.age, c.verified} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	for _, s := range []struct {
		name string
		st   cache.Stats
	}{{"token", st.Tokens}, {"dedup", st.Dedup}, {"negative", st.Negative}} {
		ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.st.Hits), s.name)
		ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.st.Misses), s.name)
		ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(s.st.Evictions), s.name)
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.st.Size), s.name)
	}
	ch <- prometheus.MustNewConstMetric(c.verified, prometheus.CounterValue, float64(st.Verified))
	now := time.Now()
	for _, src := range c.sources() {
		s := src.Status()
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(s.Keys), s.Name)
		if s.Ready {
			ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, now.Sub(s.KeysFetched).Seconds(), s.Name)
		}
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
