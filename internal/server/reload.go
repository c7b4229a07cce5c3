package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"syscall"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/internal/safefile"
	"github.com/jwtauthz/jwtauthz/sharedcache"
)

var (
	// errConfigMoved: the file a reload read is not the one the polls
	// agreed on; it changed again in between.
	errConfigMoved = errors.New("the config file changed while being reloaded")
)

// notifyHUP starts catching SIGHUP. run calls it before serving, so that a
// SIGHUP never meets the default action (exit).
func notifyHUP() (<-chan os.Signal, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// watchReload reloads the providers and rules on SIGHUP, at once, and when
// the config file changes (read every a.configPoll, or at each a.pollTick),
// as configWatch decides, until ctx ends.
func (a *Server) watchReload(ctx context.Context, hup <-chan os.Signal) {
	var w, keys *configWatch
	if a.cfg.File() != "" {
		w = newConfigWatch(a.cfg.File(), a.cfg.Sum())
	}
	if a.shared != nil {
		// The content loaded at start is not known here: the first polls
		// read it as a change, which reloadKeys finds the same.
		keys = newConfigWatch(a.cfg.SharedCacheKeyFile, [32]byte{})
	}
	var tick <-chan time.Time
	if w != nil || keys != nil {
		tick = a.pollTick
		if tick == nil {
			t := time.NewTicker(a.configPoll)
			defer t.Stop()
			tick = t.C
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			// The file is read before the reload reads it, as on a poll: a
			// change made meanwhile is seen by a later poll, not missed.
			for _, w := range []*configWatch{w, keys} {
				if w != nil {
					w.prev = readState(w.path)
					w.handled = w.prev.sum
				}
			}
			a.reload("SIGHUP")
			if keys != nil {
				a.reloadKeys("SIGHUP")
			}
		case <-tick:
			if w != nil {
				a.pollConfig(w)
			}
			if keys != nil {
				a.pollKeys(keys)
			}
		}
	}
}

// pollKeys reads the shared cache's key file once and applies a change as
// pollConfig applies one of the config file: once it reads the same at
// two polls, or at once when kubelet swapped the Secret's ..data link.
func (a *Server) pollKeys(w *configWatch) {
	switch act, cur := w.poll(); act {
	case pollSettled, pollSwapped:
		a.reloadKeys("key file changed")
		w.handled = cur.sum // applied, or rejected: not retried until it changes
	}
}

// reloadKeys reads the shared cache's key file again and, if it is valid
// and holds other keys, makes them the cache's: the first signs from then
// on, all verify. A file refused (its mode, a short key, none) is logged
// and the running keys stay.
func (a *Server) reloadKeys(why string) {
	keys, err := sharedcache.LoadKeys(a.cfg.SharedCacheKeyFile)
	changed := false
	if err == nil {
		changed, err = a.shared.SetKeys(keys)
	}
	switch {
	case err != nil:
		a.log.Error("shared cache key file rejected; the running keys stay", "trigger", why, "path", a.cfg.SharedCacheKeyFile, "error", err)
		a.keysOK.Set(0)
		return
	case changed:
		a.log.Info("shared cache keys reloaded", "trigger", why, "keys", len(keys))
	}
	a.keysOK.Set(1)
}

// pollConfig reads the config file once and acts on what w makes of it.
func (a *Server) pollConfig(w *configWatch) {
	act, cur := w.poll()
	why := "config file changed"
	switch act {
	case pollSame:
		return
	case pollPending:
		a.log.Info("config change pending: applied once the file reads the same at the next poll", "path", w.path, "settle", a.configPoll.String())
		return
	case pollReverted:
		a.log.Info("config file is back to the content last loaded; the pending change is dropped", "path", w.path)
		return
	case pollSwapped:
		why = "config file replaced (symlink swap)"
	}
	err := a.reloadWant(why, &cur.sum)
	if !errors.Is(err, errConfigMoved) {
		w.handled = cur.sum // applied, or rejected: not retried until it changes
	}
}

// fileState is what one poll read of the config file.
type fileState struct {
	sum    [32]byte
	target string // the path resolved through symlinks; "" if it does not resolve
}

// readState resolves path through its symlinks, then reads the file they
// lead to, so that the content is the target's even while kubelet swaps a
// ConfigMap's ..data link. A file that cannot be read reads as empty.
func readState(path string) fileState {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		target = ""
	}
	name := path
	if target != "" {
		name = target
	}
	b, _ := safefile.Read(name, safefile.MaxConfig) // a FIFO or a device reads as empty, and blocks nothing
	return fileState{sum: sha256.Sum256(b), target: target}
}

// pollAction is what one poll of the config file calls for.
type pollAction int

const (
	pollSame     pollAction = iota // the content last loaded (or rejected): nothing to do
	pollPending                    // changed since the last poll: wait for it to settle
	pollReverted                   // a pending change went back to the content last loaded
	pollSettled                    // the same changed content at two polls in a row: apply it
	pollSwapped                    // reached through a new symlink target: whole already, apply it
)

// configWatch decides, one poll at a time, when a change of the config
// file is applied. A change is applied once two polls, configPoll apart,
// read the same content: a file rewritten in place and read in the middle
// of the write is not applied half-written (unless the write stalls for
// longer than a poll: editors should write the new file beside the old
// and rename it over, as kubelet does). A change that comes with a new
// symlink target is applied at once: kubelet updates a mounted ConfigMap
// by writing a new directory in full and then swapping the ..data link
// that the file's path goes through.
type configWatch struct {
	path    string
	handled [32]byte  // the content last loaded, applied or rejected
	prev    fileState // what the previous poll read
}

// newConfigWatch watches path, whose running configuration was read from
// content whose SHA-256 is loaded.
func newConfigWatch(path string, loaded [32]byte) *configWatch {
	return &configWatch{path: path, handled: loaded, prev: fileState{sum: loaded, target: readState(path).target}}
}

// poll reads the file and says what to do, and what it read.
func (w *configWatch) poll() (pollAction, fileState) {
	cur := readState(w.path)
	prev := w.prev
	w.prev = cur
	switch {
	case cur.sum == w.handled && prev.sum != w.handled:
		return pollReverted, cur
	case cur.sum == w.handled:
		return pollSame, cur
	case prev.target != "" && cur.target != "" && prev.target != cur.target:
		return pollSwapped, cur
	case cur.sum == prev.sum:
		return pollSettled, cur
	}
	return pollPending, cur
}

// reload reads the configuration again and, if it is valid, swaps in its
// providers and rules. Providers whose configuration is unchanged keep their
// keys and cached tokens. A configuration that fails validation is logged
// and the running one stays. Settings outside providers and rules take
// effect at the next restart; a change to them is logged.
func (a *Server) reload(why string) error {
	return a.reloadWant(why, nil)
}

// reloadWant is reload that, if want is not nil, applies the file only if
// its content has that SHA-256 (errConfigMoved if not). The line it logs
// says what changed.
func (a *Server) reloadWant(why string, want *[32]byte) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cfg, err := a.tryReload(want)
	switch {
	case errors.Is(err, errConfigMoved):
		a.log.Info("config file changed while being reloaded; applied once it stays the same", "trigger", why)
		return err
	case err != nil:
		a.log.Error("config reload rejected; the running configuration stays", "trigger", why, "error", err)
		a.metrics.reloadOK.Set(0)
		return err
	}
	a.metrics.reloadOK.Set(1)
	old := a.running
	a.running = cfg
	a.log.Info("config reloaded", append([]any{"trigger", why}, changes(old, cfg)...)...)
	return nil
}

func (a *Server) tryReload(want *[32]byte) (*config.Config, error) {
	cfg, err := a.load()
	if err != nil {
		return nil, err
	}
	if want != nil && cfg.Sum() != *want {
		return nil, errConfigMoved
	}
	if a.dev != nil {
		cfg.Providers = append(cfg.Providers, a.dev.provider())
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	wantKeys, err := a.jwksConfigs(cfg)
	if err != nil {
		return nil, err
	}
	a.sources.update(wantKeys)
	ac, err := a.sources.engineConfig(cfg, a.metrics)
	if err != nil {
		return nil, err
	}
	if err := a.engine.Update(ac.Providers, ac.Rules); err != nil {
		return nil, fmt.Errorf("checked configuration refused: %w", err) // check() makes this unreachable
	}
	a.metrics.setProviders(providerNames(cfg), failsOpen(cfg.Rules))
	a.warnUnprefixed(cfg)
	for _, key := range restartOnly(a.cfg, cfg) {
		a.log.Warn("setting changed; it takes effect at restart", "key", key)
	}
	return cfg, nil
}

// changes says what cur changes of old, as log attributes: the providers
// added, removed and changed, by name; the number of rules before and
// after (rules=12→14) and the indexes of those that differ.
func changes(old, cur *config.Config) []any {
	before, after := map[string]config.ProviderConfig{}, map[string]config.ProviderConfig{}
	for _, p := range old.AllProviders() {
		before[p.Name] = p
	}
	for _, p := range cur.AllProviders() {
		after[p.Name] = p
	}
	added, removed, changed := []string{}, []string{}, []string{}
	for name, p := range after {
		if o, ok := before[name]; !ok {
			added = append(added, name)
		} else if !reflect.DeepEqual(o, p) {
			changed = append(changed, name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			removed = append(removed, name)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	rules := []int{}
	for i := range max(len(old.Rules), len(cur.Rules)) {
		if i >= len(old.Rules) || i >= len(cur.Rules) || !reflect.DeepEqual(old.Rules[i], cur.Rules[i]) {
			rules = append(rules, i)
		}
	}
	return []any{"providers", len(after), "providers_added", added, "providers_removed", removed, "providers_changed", changed,
		"rules", fmt.Sprintf("%d→%d", len(old.Rules), len(cur.Rules)), "rules_changed", rules}
}

// restartOnly names the settings that differ between old and cur and that
// a reload does not apply.
func restartOnly(old, cur *config.Config) []string {
	var keys []string
	for _, f := range []struct {
		key      string
		old, cur any
	}{
		{"grpc_addr", old.GRPCAddr, cur.GRPCAddr}, {"http_addr", old.HTTPAddr, cur.HTTPAddr}, {"admin_addr", old.AdminAddr, cur.AdminAddr},
		{"clock_skew", old.ClockSkew, cur.ClockSkew}, {"cache_ttl", old.CacheTTL, cur.CacheTTL}, {"cache_size", old.CacheSize, cur.CacheSize},
		{"negative_cache_size", old.NegativeCacheSize, cur.NegativeCacheSize}, {"max_token_size", old.MaxTokenSize, cur.MaxTokenSize},
		{"network_wait", old.NetworkWait, cur.NetworkWait},
		{"jwks_ca", old.JWKSCA, cur.JWKSCA}, {"log_level", old.LogLevel, cur.LogLevel}, {"log_format", old.LogFormat, cur.LogFormat},
		{"tls_cert", old.TLSCert, cur.TLSCert}, {"tls_key", old.TLSKey, cur.TLSKey}, {"tls_client_ca", old.TLSClientCA, cur.TLSClientCA},
		{"shutdown_delay", old.ShutdownDelay, cur.ShutdownDelay}, {"shutdown_timeout", old.ShutdownTimeout, cur.ShutdownTimeout},
		{"pprof", old.Pprof, cur.Pprof}, {"grpc_reflection", old.GRPCReflection, cur.GRPCReflection},
		{"path_case", old.PathCase, cur.PathCase}, {"cors_preflight", old.CORSPreflight, cur.CORSPreflight},
		{"shared_cache", old.SharedCache, cur.SharedCache}, {"shared_cache_key_file", old.SharedCacheKeyFile, cur.SharedCacheKeyFile},
		{"shared_cache_timeout", old.SharedCacheTimeout, cur.SharedCacheTimeout},
	} {
		if f.old != f.cur {
			keys = append(keys, f.key)
		}
	}
	return keys
}
