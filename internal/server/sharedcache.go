package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/sharedcache"
)

// newSharedCache builds the shared cache of --shared-cache (nil when it is
// off) and registers its metrics: jwtauthz_shared_cache_total{op,result},
// only the possible series, and jwtauthz_shared_cache_breaker_open. It does
// not connect: Redis down at start, as later, is a miss, and never makes
// jwtauthz unready.
func (a *Server) newSharedCache() (*sharedcache.Cache, error) {
	cfg := a.cfg
	if cfg.SharedCache == "" {
		return nil, nil
	}
	keys, err := cfg.SharedCacheKeys()
	if err != nil {
		return nil, err
	}
	counters := map[sharedcache.Op]map[sharedcache.Result]prometheus.Counter{}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtauthz_shared_cache_total",
		Help: "Shared cache operations (--shared-cache), by op (get, put) and result: get hit|miss|bad_mac|error|timeout|breaker_open, put stored|error|timeout|breaker_open|dropped. bad_mac: something under a token's key that is not an intact entry of this cluster's (forged, moved or garbage).",
	}, []string{"op", "result"})
	for op, results := range sharedcache.Results {
		counters[op] = map[sharedcache.Result]prometheus.Counter{}
		for _, r := range results {
			counters[op][r] = vec.WithLabelValues(string(op), string(r))
		}
	}
	sc := sharedcache.DefaultConfig()
	sc.URL, sc.Keys, sc.Timeout = cfg.SharedCache, keys, cfg.SharedCacheTimeout
	sc.Now, sc.Logger = a.now, a.log
	sc.Observe = func(op sharedcache.Op, r sharedcache.Result) {
		if c := counters[op][r]; c != nil {
			c.Inc()
		}
	}
	c, err := sharedcache.New(sc)
	if err != nil {
		return nil, &config.Error{Key: "shared_cache", Err: err}
	}
	breaker := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "jwtauthz_shared_cache_breaker_open",
		Help: "1 while the shared cache's Redis is skipped after consecutive failures (checks go to the IdP), else 0.",
	}, func() float64 {
		if c.BreakerOpen() {
			return 1
		}
		return 0
	})
	a.keysOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "jwtauthz_shared_cache_keys_last_reload_successful",
		Help: "0 while the last read of the shared cache's key file was refused (the keys in use are older than the file), else 1.",
	})
	a.keysOK.Set(1)
	a.metrics.reg.MustRegister(vec, breaker, a.keysOK)
	introspecting := 0
	for _, p := range cfg.AllProviders() {
		if p.Introspection.Set() {
			introspecting++
		}
	}
	a.log.Info("shared cache: introspection verdicts shared through Redis", "url", sharedcache.Redact(cfg.SharedCache),
		"keys", len(keys), "timeout", cfg.SharedCacheTimeout.String(), "introspection_providers", introspecting)
	if introspecting == 0 {
		a.log.Warn("shared cache: no provider introspects tokens, and JWT verdicts are not shared: it will not be used")
	}
	return c, nil
}

// setSharedCache builds the shared cache into a and ac.
func (a *Server) setSharedCache(ac *authz.Config) error {
	c, err := a.newSharedCache()
	if err != nil || c == nil {
		return err
	}
	a.shared, ac.SharedCache = c, c
	return nil
}

// closeSharedCache waits for the shared cache's writes in flight (each
// bounded by its timeout) and closes its connections.
func (a *Server) closeSharedCache() {
	if a.shared != nil {
		a.shared.Close()
	}
}
