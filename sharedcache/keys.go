package sharedcache

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"

	"github.com/jwtauthz/jwtauthz/internal/safefile"
)

// MinKeySize is the shortest cluster secret accepted, in bytes.
const MinKeySize = 32

// Errors of LoadKeys and CheckURL, wrapped with what is wrong.
var (
	ErrKeyFileMode = errors.New("writable by its group, or readable or writable by others")
	ErrKeyTooShort = errors.New("key shorter than 32 bytes")
	ErrNoKey       = errors.New("holds no key")
	ErrURL         = errors.New("not a redis://, rediss:// or unix:// URL")
	ErrURLOption   = errors.New("URL option jwtauthz sets itself")
)

// LoadKeys reads the cluster secrets from the file at path: one key a
// line, each at least MinKeySize bytes of the line as written (spaces and
// the line end around it trimmed; blank lines skipped), so that
// `openssl rand -base64 48` makes one. The first key signs what is
// written; every key verifies what is read, so that a key can be rotated
// in (second line, then first) and out without a cold cache. The file must
// be writable by its owner only and readable by no one but its owner and
// group (0400, 0440, 0600 or 0640: the group read is what the kubelet adds
// to a Secret's files in a pod with an fsGroup): a reader of the key can
// forge entries. No error says anything of a key but its line number.
func LoadKeys(path string) ([][]byte, error) {
	b, fi, err := safefile.ReadInfo(path, safefile.MaxSecret) // follows the symlinks of a Kubernetes Secret volume
	if err != nil {
		return nil, err
	}
	if m := fi.Mode().Perm(); m&0o027 != 0 {
		return nil, fmt.Errorf("%s: %w (mode %v); make it readable by jwtauthz's user only: chmod 0400 %s (a Secret volume: defaultMode: 0400)", path, ErrKeyFileMode, m, path)
	}
	var keys [][]byte
	for i, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		switch {
		case len(line) == 0:
			continue
		case len(line) < MinKeySize:
			return nil, fmt.Errorf("%s: line %d: %w (it has %d); make one with `openssl rand -base64 48`", path, i+1, ErrKeyTooShort, len(line))
		}
		keys = append(keys, line)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: %w; make one with `openssl rand -base64 48 > %s`", path, ErrNoKey, path)
	}
	return keys, nil
}

// secret is one cluster key, split into a key for Redis keys and one for
// entry MACs, so that neither HMAC's output says anything of the other.
type secret struct {
	id, mac []byte
}

func newSecret(k []byte) secret {
	derive := func(label string) []byte {
		h := hmac.New(sha256.New, k)
		h.Write([]byte(label))
		return h.Sum(nil)
	}
	return secret{id: derive("jwtauthz shared-cache key v1"), mac: derive("jwtauthz shared-cache entry v1")}
}

func (s secret) equal(o secret) bool {
	return hmac.Equal(s.id, o.id) && hmac.Equal(s.mac, o.mac)
}

// keyPrefix starts every Redis key the cache writes.
const keyPrefix = "jwtauthz:sc1:"

// key is the Redis key of (provider, token) under s: the prefix and the
// hex HMAC-SHA256 of the provider's length, the provider and the token.
func (s secret) key(provider, token string) string {
	h := hmac.New(sha256.New, s.id)
	writeField(h, provider)
	h.Write([]byte(token))
	var sum [sha256.Size]byte
	return keyPrefix + hex.EncodeToString(h.Sum(sum[:0]))
}

func writeField(h hash.Hash, s string) {
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
	h.Write([]byte(s))
}
