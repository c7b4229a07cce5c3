//go:build unix

package safefile

import (
	"os"
	"syscall"
)

// open opens path to read without waiting for a writer if it is a FIFO.
func open(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
