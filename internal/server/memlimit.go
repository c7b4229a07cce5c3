package server

import (
	"errors"
	"log/slog"
	"math"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// memoryLimitRatio is the share of the container's memory limit that Go's
// soft limit is set to. The rest is headroom for memory the Go runtime does
// not count (the binary's text, the kernel's buffers of the sockets), as
// the Go GC guide advises.
const memoryLimitRatio = 0.9

// setMemoryLimit sets Go's soft memory limit (what GOMEMLIMIT sets) to
// memoryLimitRatio of limit, the container's memory limit, so that the GC
// works harder near it instead of the kernel killing the container. A set
// GOMEMLIMIT wins, and AUTOMEMLIMIT=<ratio> or AUTOMEMLIMIT=off changes the
// share or turns this off (automemlimit reads both).
func setMemoryLimit(log *slog.Logger, limit memlimit.Provider) {
	n, err := memlimit.Set(memlimit.WithProvider(limit), memlimit.WithRatio(memoryLimitRatio))
	switch {
	case errors.Is(err, memlimit.ErrNoCgroup), errors.Is(err, memlimit.ErrCgroupsNotSupported):
		log.Debug("no container memory limit", "error", err)
	case err != nil:
		log.Warn("Go memory limit not set", "error", err)
	case n != math.MaxInt64:
		log.Info("Go memory limit", "bytes", n)
	}
}
