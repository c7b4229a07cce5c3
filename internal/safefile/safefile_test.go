//go:build unix

package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestRead: a regular file, through a symlink too, is read; a FIFO (with
// no writer: it would block a plain read), a device, a directory and a
// file over the limit are refused with an error saying what they are.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("file", link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path  string
		limit int64
		err   error
		says  string
	}{
		{path: file, limit: 10},
		{path: link, limit: 10},
		{path: file, limit: 9, err: ErrTooLarge, says: "10 bytes, more than 9"},
		{path: fifo, limit: 10, err: ErrNotRegular, says: "a FIFO"},
		{path: "/dev/zero", limit: 10, err: ErrNotRegular, says: "a device"},
		{path: dir, limit: 10, err: ErrNotRegular, says: "a directory"},
		{path: filepath.Join(dir, "missing"), limit: 10, err: os.ErrNotExist},
	} {
		b, err := Read(tt.path, tt.limit)
		switch {
		case tt.err == nil && (err != nil || string(b) != "0123456789"):
			t.Errorf("%s: %q, %v", tt.path, b, err)
		case tt.err != nil && (!errors.Is(err, tt.err) || b != nil || !strings.Contains(err.Error(), tt.says)):
			t.Errorf("%s: %q, %v; want %v saying %q", tt.path, b, err, tt.err, tt.says)
		}
	}
}
