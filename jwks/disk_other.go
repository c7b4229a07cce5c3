//go:build !unix

package jwks

import (
	"fmt"
	"os"
	"runtime"
)

// openNoFollow refuses: without file owners, nothing in a cache dir can be
// trusted.
func openNoFollow(p string) (*os.File, error) {
	return nil, fmt.Errorf("%w: %s: no cache dir on %s", ErrCacheUntrusted, p, runtime.GOOS)
}

// openNonBlock opens p to read.
func openNonBlock(p string) (*os.File, error) { return os.Open(p) }

// owner refuses: this system has no owner to check.
func owner(fi os.FileInfo) (int, uint64, error) {
	return 0, 0, fmt.Errorf("%w: no cache dir on %s", ErrCacheUntrusted, runtime.GOOS)
}
