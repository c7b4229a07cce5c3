package jwks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// The disk cache trusts only what no other user can have written: another
// local user who could put a file under a provider's predictable name, or
// point it elsewhere, would choose the keys that tokens are checked with.

// ErrCacheUntrusted is wrapped by the error of a cache file or directory
// that another user could have written: it is not loaded (a file) or not
// used (a directory).
var ErrCacheUntrusted = errors.New("jwks: not trusted")

// CheckCacheDir reports whether dir can serve as Config.CacheDir: it must
// exist and be a directory (a symbolic link to one is followed) owned by
// the process's effective user, writable by no one else unless it has the
// sticky bit (then others can neither remove nor rename its files), and
// the process must be able to create a file in it. An untrusted directory
// gives an error wrapping ErrCacheUntrusted; a missing one, os.ErrNotExist.
func CheckCacheDir(dir string) error {
	if err := checkDir(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".jwks-check-*")
	if err != nil {
		return fmt.Errorf("jwks: cannot write in %s: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// checkDir is CheckCacheDir without the write.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("jwks: %s is not a directory", dir)
	}
	uid, _, err := owner(fi)
	if err != nil {
		return err
	}
	if euid := os.Geteuid(); uid != euid {
		return fmt.Errorf("%w: directory %s is owned by uid %d, not by this process's user (uid %d)", ErrCacheUntrusted, dir, uid, euid)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("%w: directory %s is writable by others than its owner (mode %v) without the sticky bit", ErrCacheUntrusted, dir, fi.Mode())
	}
	return nil
}

// readCached reads the cache file at p, and gives its modification time,
// if only this process's user can have written it: a regular file, not a
// symbolic link, with one name, owned by the effective user and writable
// by no one else. It never blocks on a FIFO.
func readCached(p string) ([]byte, time.Time, error) {
	f, err := openNoFollow(p)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("jwks: %w", err)
	}
	if err := trusted(fi); err != nil {
		return nil, time.Time{}, err
	}
	if fi.Size() > MaxBody {
		return nil, time.Time{}, fmt.Errorf("%w: %s exceeds %d bytes", ErrMalformed, p, MaxBody)
	}
	body, err := io.ReadAll(io.LimitReader(f, MaxBody+1))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("jwks: reading %s: %w", p, err)
	}
	if len(body) > MaxBody {
		return nil, time.Time{}, fmt.Errorf("%w: %s exceeds %d bytes", ErrMalformed, p, MaxBody)
	}
	return body, fi.ModTime(), nil
}

// trusted refuses an opened cache file that someone else could have
// written. jwtauthz writes its files 0600 and renames them into place, so
// each has one link: a second name is one someone else gave it (another
// provider's file, linked under this one's name).
func trusted(fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: not a regular file (%v)", ErrCacheUntrusted, fi.Mode().Type())
	}
	uid, links, err := owner(fi)
	if err != nil {
		return err
	}
	switch euid := os.Geteuid(); {
	case uid != euid:
		return fmt.Errorf("%w: owned by uid %d, not by this process's user (uid %d)", ErrCacheUntrusted, uid, euid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%w: writable by others than its owner (mode %v)", ErrCacheUntrusted, fi.Mode().Perm())
	case links != 1:
		return fmt.Errorf("%w: %d hard links, where jwtauthz makes one", ErrCacheUntrusted, links)
	}
	return nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// cachePath names the file after the provider, made safe and short, and a
// hash of its name, issuer, URL and file: a provider whose keys now come
// from elsewhere does not start with the old ones, and two names that
// sanitise alike do not share a file.
func (s *Source) cachePath() string {
	if s.cfg.CacheDir == "" {
		return ""
	}
	id, _ := json.Marshal([]string{s.cfg.Name, s.cfg.Issuer, s.cfg.URL, s.cfg.File})
	sum := sha256.Sum256(id)
	name := unsafeName.ReplaceAllString(s.cfg.Name, "_")
	if len(name) > 64 {
		name = name[:64]
	}
	return filepath.Join(s.cfg.CacheDir, name+"-"+hex.EncodeToString(sum[:8])+".jwks.json")
}

// loadCached publishes the set saved by an earlier run, if any, and if the
// directory and the file are trusted; its age is the file's.
func (s *Source) loadCached() {
	p := s.cachePath()
	if p == "" {
		return
	}
	if err := checkDir(s.cfg.CacheDir); err != nil {
		s.cfg.Logger.Warn("jwks: cache dir not used", "error", err)
		return
	}
	body, saved, err := readCached(p)
	if errors.Is(err, os.ErrNotExist) {
		return // none saved yet
	}
	if err == nil {
		if age := s.cfg.Now().Sub(saved); age > s.cfg.CacheMaxAge {
			err = fmt.Errorf("saved %v ago, longer than the %v allowed", age.Round(time.Second), s.cfg.CacheMaxAge)
		}
	}
	var set *Set
	if err == nil {
		set, err = Parse(body, saved)
	}
	if err != nil {
		s.cfg.Logger.Warn("jwks: cached key set not loaded", "path", p, "error", err)
		return
	}
	s.publish(set)
	s.setLastBody(body)
	s.cfg.Logger.Info("jwks: loaded cached key set", "path", p, "keys", set.Len(), "fetched", set.Fetched)
}

// saveCached writes body to a new 0600 file in the cache dir, then renames
// it to the provider's name: a reader sees the old file or the new one.
// The caller reports its error (a warning and a metric).
func (s *Source) saveCached(body []byte) error {
	p := s.cachePath()
	if p == "" {
		return nil
	}
	err := writeAtomic(p, body)
	if err != nil {
		s.cfg.Logger.Warn("jwks: cannot save key set", "path", p, "error", err)
	}
	return err
}

func writeAtomic(p string, body []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".jwks-*") // O_EXCL, 0600
	if err != nil {
		return err
	}
	_, err = tmp.Write(body)
	if err == nil {
		err = tmp.Sync() // renamed only once it is on disk: a crash leaves the old file, not an empty one
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
