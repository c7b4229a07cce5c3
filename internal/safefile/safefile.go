// Package safefile reads the small files an operator names (the config
// file, keys, secrets, certificates) as untrusted input: a FIFO, a device
// or a directory is refused without blocking or reading it, and a file
// over its limit is refused without being read whole.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Limits of the files jwtauthz reads.
const (
	// MaxConfig bounds a config file.
	MaxConfig = 4 << 20
	// MaxPEM bounds a certificate, key or CA bundle.
	MaxPEM = 4 << 20
	// MaxSecret bounds a secret or key file.
	MaxSecret = 64 << 10
)

var (
	// ErrNotRegular: the path leads to a FIFO, a device, a socket or a
	// directory.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file holds more than the limit.
	ErrTooLarge = errors.New("too large")
)

// Read returns the content of the regular file at path, following
// symbolic links (a Kubernetes ConfigMap or Secret volume is reached
// through them), if it holds at most limit bytes.
func Read(path string, limit int64) ([]byte, error) {
	b, _, err := ReadInfo(path, limit)
	return b, err
}

// ReadInfo is Read that also returns what the opened file is (its mode,
// for a caller that checks who may read it).
func ReadInfo(path string, limit int64) ([]byte, os.FileInfo, error) {
	f, err := open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, kind(fi.Mode()))}
	}
	if fi.Size() > limit {
		return nil, nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, fi.Size(), limit)}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(b)) > limit { // it grew while being read
		return nil, nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)}
	}
	return b, fi, nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}
