//go:build unix

package jwks

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// openNoFollow opens p to read without following a symbolic link in its
// last element, and without waiting for a writer if it is a FIFO.
func openNoFollow(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EMLINK) { // EMLINK: FreeBSD's answer
		return nil, fmt.Errorf("%w: %s is a symbolic link", ErrCacheUntrusted, p)
	}
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return f, nil
}

// openNonBlock opens p to read without waiting for a writer if it is a
// FIFO.
func openNonBlock(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// owner returns the owner's uid and the number of links of fi.
func owner(fi os.FileInfo) (uid int, links uint64, err error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("%w: cannot tell the owner of %s", ErrCacheUntrusted, fi.Name())
	}
	return int(st.Uid), uint64(st.Nlink), nil
}
