package sharedcache

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"

	"github.com/jwtauthz/jwtauthz/authz"
)

// An entry, as Redis keeps it: a version byte, the HMAC-SHA256 (under the
// secret's MAC key) of the entry's Redis key and payload, and the payload,
// the verdict's JSON. Binding the Redis key into the MAC makes an entry
// copied under another token's key fail as a forged one does.
const (
	entryVersion = 1
	entryHeader  = 1 + sha256.Size
	// maxEntry bounds what is read and written: larger is not an entry
	// of ours.
	maxEntry = 64 << 10
)

// seal returns the entry of payload under the Redis key key.
func (s secret) seal(key string, payload []byte) []byte {
	out := make([]byte, entryHeader, entryHeader+len(payload))
	out[0] = entryVersion
	copy(out[1:], s.sum(key, payload))
	return append(out, payload...)
}

// open returns the payload of value if value is an intact entry of key
// under s.
func (s secret) open(key string, value []byte) ([]byte, bool) {
	if len(value) < entryHeader || len(value) > maxEntry || value[0] != entryVersion {
		return nil, false
	}
	payload := value[entryHeader:]
	return payload, hmac.Equal(value[1:entryHeader], s.sum(key, payload))
}

func (s secret) sum(key string, payload []byte) []byte {
	h := hmac.New(sha256.New, s.mac)
	writeField(h, key)
	h.Write(payload)
	return h.Sum(nil)
}

// encode is the payload of v.
func encode(v *authz.SharedVerdict) ([]byte, error) { return json.Marshal(v) }

// decode is the verdict of an authenticated payload. Numbers among the
// claims stay json.Number, as the introspection client gives them.
func decode(payload []byte) (authz.SharedVerdict, error) {
	var v authz.SharedVerdict
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	err := d.Decode(&v)
	return v, err
}
