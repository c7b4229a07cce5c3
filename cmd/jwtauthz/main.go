// Command jwtauthz puts JWT authentication in front of any service behind
// Envoy: it answers Envoy's ext_authz Check (and HTTP forward-auth) from a
// cache of verified tokens, verifying new ones against the identity
// provider's JWKS, which it keeps fresh in the background.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/jwtauthz/jwtauthz/internal/server"
)

func main() {
	// Until run catches SIGHUP (a reload), one that comes early is ignored
	// rather than fatal.
	signal.Ignore(syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	// Go's memory limit follows the container's: in tests, which call run
	// without it, the test process's limit is left alone.
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr, server.WithMemoryLimit(memlimit.FromCgroup))
	stop()
	os.Exit(code)
}
