package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/sharedcache"
)

// authService is the name grpc.health.v1 reports besides "".
const authService = "envoy.service.auth.v3.Authorization"

// Server is one running jwtauthz: its listeners (gRPC ext_authz, HTTP
// forward-auth, admin), engine and key sources, and the reload watcher.
type Server struct {
	cfg      *config.Config // as at start; reload swaps providers and rules only
	log      *slog.Logger
	engine   *authz.Engine
	sources  *sources
	health   *health.Server
	ready    atomic.Bool // every provider has keys, and not shutting down
	readyMu  sync.Mutex  // orders setReady and shutdown
	stopping atomic.Bool // set under readyMu
	dev      *devIssuer
	options
	metrics *metrics
	audit   *auditor // nil: no audit log
	tracing *tracing // nil: no spans exported

	shared *sharedcache.Cache // nil: no --shared-cache
	keysOK prometheus.Gauge   // jwtauthz_shared_cache_keys_last_reload_successful, with shared
	// running is the configuration last applied, at start or by a
	// reload; reloadMu orders reloads.
	running  *config.Config
	reloadMu sync.Mutex

	grpcLis, httpLis, adminLis net.Listener
	grpcSrv                    *grpc.Server
	httpSrv, adminSrv          *http.Server
}

// New binds the listeners of cfg and builds the parts, logging to log;
// Run serves. WithDev adds the embedded development issuer, served on the
// admin listener; WithReload lets the configuration be reloaded.
func New(cfg *config.Config, log *slog.Logger, opts ...Option) (_ *Server, err error) {
	// Not the named result: return nil, err would nil it before the
	// deferred closeListeners below.
	a := &Server{cfg: cfg, running: cfg, log: log, health: health.NewServer(), metrics: newMetrics(), sources: newSources()}
	a.options = defaultOptions()
	for _, o := range opts {
		o(&a.options)
	}
	a.metrics.setBuildInfo(a.buildInfo())
	if a.memLimit != nil {
		setMemoryLimit(log, a.memLimit)
	}
	defer func() {
		if err != nil {
			a.closeListeners()
			if a.audit != nil {
				a.audit.close()
			}
			a.tracing.shutdown(context.Background())
			a.closeSharedCache()
		}
	}()
	if a.audit, err = newAuditor(cfg, a.now); err != nil {
		return nil, err
	}
	if a.tracing, err = newTracing(cfg, log, a.buildInfo().Version); err != nil {
		return nil, err
	}
	a.sources.tracer = a.tracing.fetchTracer()
	if a.adminLis, err = listen(cfg.AdminAddr); err != nil {
		return nil, fmt.Errorf("admin_addr: %w", err)
	}
	if a.devMode {
		if a.adminLis == nil {
			return nil, errors.New("dev serves its issuer on the admin listener: admin_addr must not be empty")
		}
		if a.dev, err = newDevIssuer(a.adminLis.Addr()); err != nil {
			return nil, err
		}
		if !loopback(a.adminLis.Addr()) {
			log.Warn("DEV ISSUER REACHABLE FROM THE NETWORK: the admin listener is not on loopback, and its /dev/token mints tokens this server trusts for any subject to anyone who can reach it; give --admin-addr a loopback address (127.0.0.1:9003) unless the network is yours alone",
				"admin_addr", a.adminLis.Addr().String())
		}
		cfg.Providers = append(cfg.Providers, a.dev.provider())
	}
	if len(cfg.AllProviders()) == 0 {
		return nil, cfg.Locate(config.ErrNoIssuer)
	}
	if err := a.build(); err != nil {
		return nil, cfg.Locate(err)
	}
	if a.grpcLis, err = listen(cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("grpc_addr: %w", err)
	}
	if a.httpLis, err = listen(cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("http_addr: %w", err)
	}
	tc, err := serverTLS(cfg, log)
	if err != nil {
		return nil, err
	}
	a.servers(tc)
	return a, nil
}

// build makes the key sources and the engine.
func (a *Server) build() error {
	want, err := a.jwksConfigs(a.cfg)
	if err != nil {
		return err
	}
	a.sources.update(want)
	ac, err := a.sources.engineConfig(a.cfg, a.metrics)
	if err != nil {
		return err
	}
	ac.Logger, ac.Now = a.log, a.now
	ac.Observe = a.observe
	if err := a.setSharedCache(&ac); err != nil {
		return err
	}
	if a.tracing != nil {
		ac.Tracer = a.tracing.checks
	}
	if a.engine, err = authz.New(ac); err != nil {
		return err
	}
	a.metrics.setProviders(providerNames(a.cfg), failsOpen(a.cfg.Rules))
	a.metrics.reg.MustRegister(newStatsCollector(a.engine.Stats, a.sources.list))
	a.warnUnprefixed(a.cfg)
	return nil
}

// warnUnprefixed logs the headers of cfg that a forward-auth proxy set up
// as the README shows would not copy (config.unprefixed), while the HTTP
// forward-auth listener is on (http_addr of the running configuration: a
// reload does not change it).
func (a *Server) warnUnprefixed(cfg *config.Config) {
	if a.cfg.HTTPAddr == "" {
		return
	}
	for _, ph := range cfg.Unprefixed() {
		a.log.Warn("header not named x-auth-…: a forward-auth proxy must be told to copy it, or a client's copy reaches the upstream", "provider", ph[0], "header", ph[1])
	}
}

// jwksConfigs are the key source configurations of cfg's providers.
func (a *Server) jwksConfigs(cfg *config.Config) ([]jwks.Config, error) {
	client, err := cfg.JWKSClient()
	if err != nil {
		return nil, err
	}
	var out []jwks.Config
	for _, p := range cfg.AllProviders() {
		if p.Introspection.Set() {
			continue // no keys: its introspection client (introspection.go)
		}
		out = append(out, cfg.JWKSConfig(p, client, a.log, a.metrics.observeFetch))
	}
	return out, nil
}

func providerNames(cfg *config.Config) []string {
	var ns []string
	for _, p := range cfg.AllProviders() {
		ns = append(ns, p.Name)
	}
	return ns
}

// Run serves until ctx ends or a listener fails, then shuts down: readiness
// goes NOT_SERVING at once, the listeners close after the shutdown delay,
// and in-flight checks get the shutdown timeout to finish.
func (a *Server) Run(ctx context.Context) error {
	// Every listener's address is logged before the key sources start, so
	// it comes before readiness and anything a check logs.
	for _, l := range [...]struct {
		name string
		lis  net.Listener
	}{{"grpc", a.grpcLis}, {"http", a.httpLis}, {"admin", a.adminLis}} {
		if l.lis != nil {
			a.log.Info("listener started", "listener", l.name, "addr", l.lis.Addr().String())
		}
	}
	a.sources.start(context.WithoutCancel(ctx))
	defer a.sources.stop()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { a.watchReady(gctx); return nil })
	if a.load != nil {
		hup, stop := notifyHUP()
		defer stop()
		g.Go(func() error { a.watchReload(gctx, hup); return nil })
	}
	serve := func(name string, lis net.Listener, fn func(net.Listener) error) {
		if lis == nil {
			return
		}
		g.Go(func() error {
			err := fn(lis)
			a.log.Info("listener stopped", "listener", name)
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("%s listener: %w", name, err)
			}
			return nil
		})
	}
	serve("grpc", a.grpcLis, a.grpcSrv.Serve)
	serve("http", a.httpLis, a.serveHTTP)
	serve("admin", a.adminLis, a.adminSrv.Serve)
	g.Go(func() error {
		<-gctx.Done()
		a.shutdown(ctx.Err() != nil)
		return nil
	})
	err := g.Wait()
	a.engine.Close()
	a.closeSharedCache()
	if a.audit != nil {
		a.audit.close()
	}
	return err
}

// watchReady keeps readiness and gRPC health in step with the key
// sources: SERVING while every provider has keys. Keys, once loaded, are
// kept through IdP failures; only a reload that adds a provider can make
// the service wait again.
func (a *Server) watchReady(ctx context.Context) {
	for {
		changed := a.sources.watch()
		var waiting <-chan struct{}
		for _, src := range a.sources.list() {
			if !src.Ready() {
				waiting = src.ReadyC()
				break
			}
		}
		a.setReady(waiting == nil)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-waiting: // nil when all are ready: blocks
		}
	}
}

func (a *Server) setReady(ready bool) {
	a.readyMu.Lock()
	defer a.readyMu.Unlock()
	if a.stopping.Load() || a.ready.Load() == ready {
		return
	}
	a.ready.Store(ready)
	status := healthpb.HealthCheckResponse_NOT_SERVING
	if ready {
		status = healthpb.HealthCheckResponse_SERVING
		a.log.Info("ready: every provider has keys", "providers", len(a.sources.list()))
	}
	for _, svc := range []string{"", authService} {
		a.health.SetServingStatus(svc, status)
	}
}

// shutdown stops serving. delay is false when a listener failed: there is
// nothing to drain towards.
func (a *Server) shutdown(delay bool) {
	a.readyMu.Lock()
	a.stopping.Store(true)
	a.ready.Store(false)
	a.readyMu.Unlock()
	a.health.Shutdown() // NOT_SERVING, and stays so
	a.log.Info("shutting down", "delay", a.cfg.ShutdownDelay.String(), "timeout", a.cfg.ShutdownTimeout.String())
	if delay {
		time.Sleep(a.cfg.ShutdownDelay)
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		a.grpcSrv.GracefulStop()
		close(done)
	}()
	a.httpSrv.Shutdown(ctx)
	select {
	case <-done:
	case <-ctx.Done():
		a.log.Warn("shutdown timeout: closing open gRPC streams")
		a.grpcSrv.Stop()
	}
	a.adminSrv.Shutdown(ctx)
	// The checks are over: export the spans still batched, waiting no
	// longer than tracingFlush for the collector.
	fctx, fcancel := context.WithTimeout(context.Background(), tracingFlush)
	defer fcancel()
	if err := a.tracing.shutdown(fctx); err != nil {
		a.log.Warn("otlp: spans lost at shutdown", "err", err)
	}
}

// tracingFlush bounds the export of the last spans at shutdown.
const tracingFlush = 5 * time.Second

// observe logs each decision at debug level: never the token, and the path
// without its query (which may hold one).
func (a *Server) observe(o authz.Observation) {
	r, d := &o.Request, &o.Decision
	a.metrics.observeCheck(d, o.Elapsed)
	if a.audit != nil {
		a.audit.record(&o)
	}
	if !a.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	path, _, _ := strings.Cut(r.Path, "?")
	a.log.Debug("check", "allow", d.Allow, "reason", d.Reason.String(), "provider", d.Provider,
		"subject", d.Subject, "method", r.Method, "host", r.Host, "path", path,
		"request_id", r.RequestID, "cached", d.Cached, "duration", o.Elapsed)
}

// NewLogger returns the slog logger the settings ask for, on w.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
