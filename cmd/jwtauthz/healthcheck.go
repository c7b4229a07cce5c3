package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/config"
)

// healthcheckCmd asks /readyz of the admin listener, which is plain HTTP
// whatever the TLS settings: distroless images have no curl.
func healthcheckCmd(args []string, lookup func(string) (string, bool), stderr io.Writer) int {
	fs := flag.NewFlagSet("jwtauthz healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML config file whose admin_addr to ask (env JWTAUTHZ_CONFIG)")
	fs.String("admin-addr", config.Defaults().AdminAddr, "admin listener to ask (env JWTAUTHZ_ADMIN_ADDR; default: the config file's admin_addr, else this)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	addr, err := healthcheckAddr(fs, *path, lookup)
	switch {
	case err != nil:
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case *timeout <= 0:
		err = fmt.Errorf("--timeout: must be positive, got %v", *timeout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "jwtauthz healthcheck: %v\n", err)
		return exitUsage
	}
	c := &http.Client{Timeout: *timeout}
	resp, err := c.Get("http://" + config.DialAddr(addr) + "/readyz")
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

// healthcheckAddr is the admin address to ask, as serve would resolve
// admin_addr: --admin-addr, else JWTAUTHZ_ADMIN_ADDR, else the config
// file's (--config, else JWTAUTHZ_CONFIG), else the default. An empty one
// (the admin listener disabled) or one that is no host:port is an error
// naming where it came from.
func healthcheckAddr(fs *flag.FlagSet, path string, lookup func(string) (string, bool)) (string, error) {
	var addr, from string
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "admin-addr" {
			addr, from = f.Value.String(), "--admin-addr"
		}
	})
	if from == "" {
		if v, ok := lookup("JWTAUTHZ_ADMIN_ADDR"); ok {
			addr, from = v, "JWTAUTHZ_ADMIN_ADDR"
		}
	}
	if path == "" {
		path = config.Getenv(lookup)("JWTAUTHZ_CONFIG")
	}
	if path != "" {
		// Read even when the address comes from elsewhere: a file that
		// is missing or does not parse is a configuration error.
		c := config.Defaults()
		if err := config.ReadFile(path, c); err != nil {
			return "", err
		}
		if from == "" {
			addr, from = c.AdminAddr, "admin_addr of "+path
		}
	}
	if from == "" {
		return config.Defaults().AdminAddr, nil
	}
	if addr == "" {
		return "", fmt.Errorf("%s: is empty, so the admin listener is disabled and has no /readyz to ask", from)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("%s: %q is not host:port (%v)", from, addr, err)
	}
	return addr, nil
}
