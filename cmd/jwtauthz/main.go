// Command jwtauthz puts JWT authentication in front of any service behind
// Envoy: it answers Envoy's ext_authz Check (and HTTP forward-auth) from a
// cache of verified tokens, verifying new ones against the identity
// provider's JWKS, which it keeps fresh in the background.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

func main() {
	// Until run catches SIGHUP (a reload), one that comes early is ignored
	// rather than fatal.
	signal.Ignore(syscall.SIGHUP)
	memoryLimit = func(log *slog.Logger) { setMemoryLimit(log, memlimit.FromCgroup) }
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
