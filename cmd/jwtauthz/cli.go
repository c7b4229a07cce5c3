package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/internal/server"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // a bad configuration, a failed listener, an unhealthy server
	exitUsage = 2
)

const usage = `jwtauthz: JWT authentication for Envoy (ext_authz) and HTTP forward-auth.

Usage:
  jwtauthz serve [--config FILE] [flags]   serve (--check-config: validate and exit 0/1)
  jwtauthz dev [flags]                     serve with an embedded development issuer
  jwtauthz healthcheck [--admin-addr A]    exit 0 if /readyz answers 200, else 1
  jwtauthz version

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
		return healthcheckCmd(args[1:], config.Getenv(lookup), stderr)
	case "version":
		fmt.Fprintln(stdout, "jwtauthz", versionString(), runtime.Version())
		return exitOK
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
		err = cfg.Check()
		if err == nil {
			fmt.Fprintln(stdout, "config ok")
			return exitOK
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "jwtauthz %s: %v\n", cmd, err)
		return exitError
	}
	log := server.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	log.Info("starting", "version", versionString(), "go", runtime.Version(), "gomaxprocs", runtime.GOMAXPROCS(0))
	opts = append(opts, server.WithReload(config.Loader(cmd, args, lookup)))
	if cmd == "dev" {
		opts = append(opts, server.WithDev())
	}
	s, err := server.New(cfg, log, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "jwtauthz %s: %v\n", cmd, err)
		return exitError
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

// healthcheckCmd asks /readyz: distroless images have no curl.
func healthcheckCmd(args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("jwtauthz healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv("JWTAUTHZ_ADMIN_ADDR")
	if def == "" {
		def = config.Defaults().AdminAddr
	}
	addr := fs.String("admin-addr", def, "admin listener to ask (env JWTAUTHZ_ADMIN_ADDR)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	c := &http.Client{Timeout: *timeout}
	resp, err := c.Get("http://" + config.DialAddr(*addr) + "/readyz")
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return exitError
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: /readyz answered %s\n", resp.Status)
		return exitError
	}
	return exitOK
}

func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "(devel)"
}
