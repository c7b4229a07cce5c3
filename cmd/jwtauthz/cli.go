package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"

	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/internal/server"
)

// A release build sets these: -ldflags "-X main.version=v1.2.3 -X
// main.commit=<revision> -X main.date=<RFC 3339 time>". Each one left empty
// is read from what Go stamped in the binary (server.ReadBuildInfo).
var (
	version = ""
	commit  = ""
	date    = ""
)

// Exit codes, the same for every command.
const (
	exitOK    = 0
	exitError = 1 // a runtime failure: a listener that cannot be opened, the server stopping on an error, healthcheck not ready
	exitUsage = 2 // a usage or configuration error: a flag, command or argument, a setting, a config file
)

const usage = `jwtauthz: JWT authentication for Envoy (ext_authz) and HTTP forward-auth.

Usage:
  jwtauthz serve [--config FILE] [flags]   serve (--check-config: validate and exit 0/2)
  jwtauthz dev [flags]                     serve with an embedded development issuer
  jwtauthz healthcheck [--config FILE] [--admin-addr A]
                                           exit 0 if /readyz answers 200, else 1
  jwtauthz version                         print version, commit, build date, Go

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
Run "jwtauthz serve -h" for the flags.
`

// run is the whole program but for the exit. lookup is os.LookupEnv, or a
// test's: a variable set to "" is set (an empty address disables its
// listener). opts are added to those serve and dev build the server with.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer, opts ...server.Option) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve", "dev":
		return serveCmd(ctx, args[0], args[1:], lookup, stdout, stderr, opts...)
	case "healthcheck":
		return healthcheckCmd(args[1:], lookup, stderr)
	case "version":
		return versionCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "jwtauthz: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

func serveCmd(ctx context.Context, cmd string, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer, opts ...server.Option) int {
	cfg, cf, err := config.Load(cmd, args, lookup, stderr, config.DefaultsFor(cmd))
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err == nil && cf.CheckConfig {
		if err = cfg.Check(); err == nil {
			// What was resolved: `config ok` first, or -o json alone.
			s := cfg.Summary()
			write := s.WriteText
			if cf.Output == "json" {
				write = s.WriteJSON
			}
			if err := write(stdout); err != nil {
				fmt.Fprintf(stderr, "jwtauthz %s: %v\n", cmd, err)
				return exitError
			}
			return exitOK
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "jwtauthz %s: %v\n", cmd, err)
		return exitUsage // config.Load's and Check's errors are all usage or configuration errors
	}
	log := server.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	b := server.ReadBuildInfo(version, commit, date)
	log.Info("starting", "version", b.Version, "commit", b.Commit, "date", b.Date, "modified", b.Modified,
		"go", b.GoVersion, "gomaxprocs", runtime.GOMAXPROCS(0))
	opts = append(opts, server.WithReload(config.Loader(cmd, args, lookup)), server.WithBuildInfo(b))
	if cmd == "dev" {
		opts = append(opts, server.WithDev())
	}
	s, err := server.New(cfg, log, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "jwtauthz %s: %v\n", cmd, err)
		if errors.Is(err, server.ErrListen) {
			return exitError
		}
		return exitUsage // what New builds comes from the configuration
	}
	if err := s.DevBanner(stdout); err != nil {
		fmt.Fprintf(stderr, "jwtauthz dev: %v\n", err)
		return exitError
	}
	if err := s.Run(ctx); err != nil {
		log.Error("stopped", "error", err)
		return exitError
	}
	return exitOK
}
