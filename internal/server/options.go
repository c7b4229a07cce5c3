package server

import (
	"io"
	"net"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/jwtauthz/jwtauthz/internal/config"
)

// DefaultConfigPoll is how often the config file is read for changes, and
// so how long a change must stay the same before it is applied.
const DefaultConfigPoll = 2 * time.Second

// Option changes how New builds a Server.
type Option func(*options)

// options are what the Options set; the zero value but for configPoll is
// the default.
type options struct {
	devMode bool
	// load reads the configuration again, for reload; nil: no reload.
	load       func() (*config.Config, error)
	now        func() time.Time // the engine's clock; nil: time.Now
	configPoll time.Duration
	// pollTick, if not nil, replaces the ticker that has the config file
	// read every configPoll.
	pollTick <-chan time.Time
	memLimit memlimit.Provider // nil: Go's memory limit is left alone
	build    *BuildInfo        // nil: ReadBuildInfo("", "", "")
}

func defaultOptions() options { return options{configPoll: DefaultConfigPoll} }

// WithDev adds the embedded development issuer of `jwtauthz dev`, served on
// the admin listener (which must not be disabled), and its provider. Its
// /dev/token mints tokens the server trusts for anyone who reaches it.
func WithDev() Option { return func(o *options) { o.devMode = true } }

// WithReload has the providers and rules reloaded from what load returns,
// on SIGHUP and when the config file changes. Without it the configuration
// is never reloaded.
func WithReload(load func() (*config.Config, error)) Option {
	return func(o *options) { o.load = load }
}

// WithClock gives the engine the clock now instead of time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithConfigPoll reads the config file for changes every d instead of
// every DefaultConfigPoll; a change is applied once two reads d apart
// agree. d must be positive.
func WithConfigPoll(d time.Duration) Option { return func(o *options) { o.configPoll = d } }

// WithPollTick reads the config file for changes at each receive from
// tick, instead of every config poll period (tests drive the polls with it).
func WithPollTick(tick <-chan time.Time) Option { return func(o *options) { o.pollTick = tick } }

// WithMemoryLimit sets Go's soft memory limit from limit (the container's
// cgroup, for the binary) when the server is built; see setMemoryLimit.
// Without it the process's limit is left alone.
func WithMemoryLimit(limit memlimit.Provider) Option {
	return func(o *options) { o.memLimit = limit }
}

// GRPCAddr is the address of the gRPC listener (unix:///path for a Unix
// socket), "" if it is disabled.
func (a *Server) GRPCAddr() string { return addrOf(a.grpcLis) }

// HTTPAddr is the address of the HTTP forward-auth listener, "" if it is
// disabled.
func (a *Server) HTTPAddr() string { return addrOf(a.httpLis) }

// AdminAddr is the address of the admin listener, "" if it is disabled.
func (a *Server) AdminAddr() string { return addrOf(a.adminLis) }

// Ready reports whether every provider has keys and the server is not
// shutting down: what /readyz answers.
func (a *Server) Ready() bool { return a.ready.Load() }

// DevBanner prints, for `jwtauthz dev`, a ready token and commands a
// newcomer can paste; without WithDev it prints nothing.
func (a *Server) DevBanner(w io.Writer) error {
	if a.dev == nil {
		return nil
	}
	return a.dev.banner(w, a.HTTPAddr(), a.GRPCAddr())
}

func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	if l.Addr().Network() == "unix" {
		return "unix://" + l.Addr().String()
	}
	return l.Addr().String()
}
