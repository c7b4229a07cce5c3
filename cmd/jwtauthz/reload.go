package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// configPoll is how often the config file is read for changes. Reading its
// content, not its mtime, also notices Kubernetes' ConfigMap symlink swap.
// (A variable so that tests can shorten it before starting an app.)
var configPoll = 2 * time.Second

// notifyHUP starts catching SIGHUP. run calls it before serving, so that a
// SIGHUP never meets the default action (exit).
func notifyHUP() (<-chan os.Signal, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// watchReload reloads the providers and rules on SIGHUP and when the
// config file changes (read every configPoll), until ctx ends.
func (a *app) watchReload(ctx context.Context, hup <-chan os.Signal) {
	var tick <-chan time.Time
	if a.cfg.path != "" {
		t := time.NewTicker(configPoll)
		defer t.Stop()
		tick = t.C
	}
	last := a.cfg.sum // what the running configuration was read from
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			// The sum before the reload reads the file, as on a tick: a
			// change made meanwhile is reloaded again at the next tick
			// rather than missed.
			last = fileSum(a.cfg.path)
			a.reload("SIGHUP")
		case <-tick:
			if sum := fileSum(a.cfg.path); sum != last {
				last = sum
				a.reload("config file changed")
			}
		}
	}
}

func fileSum(path string) [32]byte {
	b, _ := os.ReadFile(path)
	return sha256.Sum256(b)
}

// reload reads the configuration again and, if it is valid, swaps in its
// providers and rules. Providers whose configuration is unchanged keep their
// keys and cached tokens. A configuration that fails validation is logged
// and the running one stays. Settings outside providers and rules take
// effect at the next restart; a change to them is logged.
func (a *app) reload(why string) error {
	err := a.tryReload()
	if err != nil {
		a.log.Error("config reload rejected; the running configuration stays", "trigger", why, "error", err)
		return err
	}
	a.log.Info("config reloaded", "trigger", why, "providers", len(a.sources.list()))
	return nil
}

func (a *app) tryReload() error {
	cfg, err := a.load()
	if err != nil {
		return err
	}
	if a.dev != nil {
		cfg.Providers = append(cfg.Providers, a.dev.provider())
	}
	if err := cfg.check(); err != nil {
		return err
	}
	want, err := a.jwksConfigs(cfg)
	if err != nil {
		return err
	}
	a.sources.update(want)
	ac := cfg.engineConfig(a.sources.keys())
	if err := a.engine.Update(ac.Providers, ac.Rules); err != nil {
		return fmt.Errorf("checked configuration refused: %w", err) // check() makes this unreachable
	}
	a.metrics.setProviders(providerNames(cfg))
	a.warnUnprefixed(cfg)
	for _, key := range restartOnly(a.cfg, cfg) {
		a.log.Warn("setting changed; it takes effect at restart", "key", key)
	}
	return nil
}

// restartOnly names the settings that differ between old and cur and that
// a reload does not apply.
func restartOnly(old, cur *config) []string {
	var keys []string
	for _, f := range []struct {
		key      string
		old, cur any
	}{
		{"grpc_addr", old.GRPCAddr, cur.GRPCAddr}, {"http_addr", old.HTTPAddr, cur.HTTPAddr}, {"admin_addr", old.AdminAddr, cur.AdminAddr},
		{"clock_skew", old.ClockSkew, cur.ClockSkew}, {"cache_ttl", old.CacheTTL, cur.CacheTTL}, {"cache_size", old.CacheSize, cur.CacheSize},
		{"negative_cache_size", old.NegativeCacheSize, cur.NegativeCacheSize}, {"max_token_size", old.MaxTokenSize, cur.MaxTokenSize},
		{"jwks_ca", old.JWKSCA, cur.JWKSCA}, {"log_level", old.LogLevel, cur.LogLevel}, {"log_format", old.LogFormat, cur.LogFormat},
		{"tls_cert", old.TLSCert, cur.TLSCert}, {"tls_key", old.TLSKey, cur.TLSKey}, {"tls_client_ca", old.TLSClientCA, cur.TLSClientCA},
		{"shutdown_delay", old.ShutdownDelay, cur.ShutdownDelay}, {"shutdown_timeout", old.ShutdownTimeout, cur.ShutdownTimeout},
		{"pprof", old.Pprof, cur.Pprof},
	} {
		if f.old != f.cur {
			keys = append(keys, f.key)
		}
	}
	return keys
}
