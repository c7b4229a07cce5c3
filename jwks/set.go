// Package jwks fetches, parses and holds the signing keys of identity
// providers, and keeps them fresh in the background.
//
// It is a leaf: it imports no other package of jwtauthz.
package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Limits on what a key set may contain.
const (
	// MaxBody is the largest JWKS document read, in bytes.
	MaxBody = 1 << 20
	// MaxKeys is the largest number of entries a set may list.
	MaxKeys = 100
	// MinRSABits is the smallest RSA modulus accepted.
	MinRSABits = 2048
	// MaxRSABits is the largest RSA modulus accepted: go-jose parses none
	// larger (jose.MaxRSAModulusBits).
	MaxRSABits = 4096
)

// Errors of parsing a key set.
var (
	// ErrNoUsableKey means the document parsed but held no key jwtauthz can
	// verify signatures with.
	ErrNoUsableKey = errors.New("jwks: no usable signing key in the set")
	// ErrTooManyKeys means the set lists more than MaxKeys entries.
	ErrTooManyKeys = errors.New("jwks: too many keys in the set")
	// ErrMalformed means the document is not a JSON Web Key Set.
	ErrMalformed = errors.New("jwks: malformed key set")
)

// Key is one public signing key.
type Key struct {
	ID     string           // kid; may be empty
	Alg    string           // the JWK's alg, empty if it names none
	Public crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// Set is an immutable snapshot of a provider's keys. It is never changed
// after it is built, so readers need no lock.
type Set struct {
	keys map[string]*Key // by kid; keys without kid are only in all
	all  []*Key          // every key, in the document's order
	// Fetched is when the document was fetched or read.
	Fetched time.Time
	// Skipped says, for each entry left out, why (for logs).
	Skipped []string
}

// Lookup returns the key with the given kid. An empty kid finds a key only
// when the set holds exactly one. It does not allocate. (A token without
// kid is checked against every key that fits it: see EachKey.)
func (s *Set) Lookup(kid string) (*Key, bool) {
	if s == nil {
		return nil, false
	}
	if kid == "" {
		if len(s.all) == 1 {
			return s.all[0], true
		}
		return nil, false
	}
	k, ok := s.keys[kid]
	return k, ok
}

// EachKey calls yield with every key of the set, with or without kid, and
// the alg its JWK names (empty if none), in the document's order, until
// yield returns false. A nil set has no keys.
func (s *Set) EachKey(yield func(key crypto.PublicKey, alg string) bool) {
	if s == nil {
		return
	}
	for _, k := range s.all {
		if !yield(k.Public, k.Alg) {
			return
		}
	}
}

// HasKey reports whether key is one of the set's keys, under any kid or
// none. It does not allocate.
func (s *Set) HasKey(key crypto.PublicKey) bool {
	if s == nil {
		return false
	}
	for _, k := range s.all {
		if SameKey(k.Public, key) {
			return true
		}
	}
	return false
}

// EachKey calls yield with every key of the current set and the alg its
// JWK names, all from one snapshot (Set.EachKey). It takes no lock.
func (s *Source) EachKey(yield func(key crypto.PublicKey, alg string) bool) {
	s.cur.Load().EachKey(yield)
}

// HasKey reports whether key is in the current set, under any kid or none.
// It takes no lock and does not allocate.
func (s *Source) HasKey(key crypto.PublicKey) bool { return s.cur.Load().HasKey(key) }

// has reports whether the set holds a key with kid; "" stands for the
// keys without kid.
func (s *Set) has(kid string) bool {
	if s == nil {
		return false
	}
	if kid == "" {
		return s.keyless() > 0
	}
	_, ok := s.keys[kid]
	return ok
}

// keyless returns the number of keys without kid.
func (s *Set) keyless() int {
	return len(s.all) - len(s.keys)
}

// keep takes, for each key of s that old holds unchanged (the same kid,
// alg and material; for a key without kid, any key without kid of old
// with the same alg and material), old's Key instead, so that a key keeps
// its identity across refreshes and whoever remembers what a key verified
// can tell it from a new key under the same kid by comparing pointers. It
// returns the kids whose key changed, "" if the keys without kid did. s
// must not be published yet.
func (s *Set) keep(old *Set) (changed []string) {
	if old == nil || old == s {
		return nil
	}
	keylessChanged := s.keyless() != old.keyless()
	for i, k := range s.all {
		o := old.same(k)
		switch {
		case o != nil:
			s.all[i] = o
			if k.ID != "" {
				s.keys[k.ID] = o
			}
		case k.ID == "":
			keylessChanged = true
		case old.has(k.ID):
			changed = append(changed, k.ID)
		}
	}
	if keylessChanged && s.keyless() > 0 && old.keyless() > 0 {
		changed = append(changed, "")
	}
	return changed
}

// same returns s's Key with k's kid, alg and material, or nil.
func (s *Set) same(k *Key) *Key {
	if k.ID != "" {
		if o, ok := s.keys[k.ID]; ok && o.Alg == k.Alg && SameKey(o.Public, k.Public) {
			return o
		}
		return nil
	}
	for _, o := range s.all {
		if o.ID == "" && o.Alg == k.Alg && SameKey(o.Public, k.Public) {
			return o
		}
	}
	return nil
}

// SameKey reports whether a and b are one public key: the same object (a
// Source keeps a key's object while its material stays the same, so this
// is the usual answer and costs a comparison), or equal material.
func SameKey(a, b crypto.PublicKey) bool {
	switch a := a.(type) {
	case *ecdsa.PublicKey:
		if b, ok := b.(*ecdsa.PublicKey); ok && a == b {
			return true
		}
	case *rsa.PublicKey:
		if b, ok := b.(*rsa.PublicKey); ok && a == b {
			return true
		}
	}
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// Len returns the number of keys.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.all)
}

// KIDs returns the key ids, in no particular order; "" stands, once, for
// the keys without kid.
func (s *Set) KIDs() []string {
	if s == nil {
		return nil
	}
	ids := make([]string, 0, len(s.keys)+1)
	for id := range s.keys {
		ids = append(ids, id)
	}
	if s.keyless() > 0 {
		ids = append(ids, "")
	}
	return ids
}

// Parse reads a JSON Web Key Set (RFC 7517). Entries jwtauthz cannot or must
// not use (encryption keys, symmetric keys, RSA keys under MinRSABits or over
// MaxRSABits, RSA keys with the ROCA fingerprint, unknown types, private
// keys, a second key under a kid) are left out and listed in Skipped; a set
// with no usable key is ErrNoUsableKey. Any number of keys may lack a kid:
// each is kept.
func Parse(doc []byte, fetched time.Time) (*Set, error) {
	if len(doc) > MaxBody {
		return nil, fmt.Errorf("%w: document of %d bytes exceeds %d", ErrMalformed, len(doc), MaxBody)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if raw.Keys == nil {
		return nil, fmt.Errorf("%w: no \"keys\" array", ErrMalformed)
	}
	if len(raw.Keys) > MaxKeys {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrTooManyKeys, len(raw.Keys), MaxKeys)
	}
	s := &Set{keys: make(map[string]*Key, len(raw.Keys)), Fetched: fetched}
	ambiguous := map[string]bool{}
	for i, msg := range raw.Keys {
		k, err := parseKey(msg)
		if err == nil && k.ID != "" {
			err = s.dedupKID(k, ambiguous)
		}
		if err != nil {
			s.Skipped = append(s.Skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		if k.ID != "" {
			s.keys[k.ID] = k
		}
		s.all = append(s.all, k)
	}
	if len(ambiguous) > 0 {
		s.all = slices.DeleteFunc(s.all, func(k *Key) bool { return ambiguous[k.ID] })
	}
	if len(s.all) == 0 {
		return nil, fmt.Errorf("%w (%d entries skipped)", ErrNoUsableKey, len(s.Skipped))
	}
	return s, nil
}

// parseKey decodes one JWK with go-jose and keeps it only if it is a public
// signing key of a kind jwtauthz verifies.
// dedupKID says why k, whose kid is not empty, is not added: a copy of the
// key already under its kid, or a kid that names two different keys. Such
// a kid is ambiguous, whatever the order of the set: every key under it is
// left out, so a token naming it is refused as unknown rather than checked
// against whichever key came first.
func (s *Set) dedupKID(k *Key, ambiguous map[string]bool) error {
	if ambiguous[k.ID] {
		return fmt.Errorf("kid %q names different keys; none of them is used", k.ID)
	}
	prev, dup := s.keys[k.ID]
	switch {
	case !dup:
		return nil
	case SameKey(prev.Public, k.Public) && prev.Alg == k.Alg:
		return fmt.Errorf("kid %q: a copy of the key already listed", k.ID)
	}
	ambiguous[k.ID] = true
	delete(s.keys, k.ID)
	s.Skipped = append(s.Skipped, fmt.Sprintf("an earlier key: kid %q names different keys; none of them is used", k.ID))
	return fmt.Errorf("kid %q names different keys; none of them is used", k.ID)
}

func parseKey(msg json.RawMessage) (*Key, error) {
	var hdr struct {
		Kty string `json:"kty"`
		Use string `json:"use"`
		N   string `json:"n"`
	}
	if err := json.Unmarshal(msg, &hdr); err != nil {
		return nil, err
	}
	switch {
	case hdr.Use != "" && hdr.Use != "sig":
		return nil, fmt.Errorf("use %q is not sig", hdr.Use)
	case hdr.Kty == "oct":
		return nil, errors.New("symmetric (oct) keys are never taken from a key set")
	case hdr.Kty != "RSA" && hdr.Kty != "EC" && hdr.Kty != "OKP":
		return nil, fmt.Errorf("key type %q is not supported", hdr.Kty)
	case hdr.Kty == "RSA" && modulusBits(hdr.N) > MaxRSABits:
		// go-jose would say only "unsupported key type/format".
		return nil, fmt.Errorf("RSA key of %d bits, at most %d supported", modulusBits(hdr.N), MaxRSABits)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(msg); err != nil {
		return nil, err
	}
	if !jwk.IsPublic() {
		return nil, errors.New("private key material in a public key set")
	}
	switch pub := jwk.Key.(type) {
	case *rsa.PublicKey:
		if n := pub.N.BitLen(); n < MinRSABits {
			return nil, fmt.Errorf("RSA key of %d bits, at least %d required", n, MinRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return nil, fmt.Errorf("RSA public exponent %d is not an odd number of at least 3", pub.E)
		}
		if hasROCAFingerprint(pub.N) {
			return nil, errors.New("RSA key with the ROCA fingerprint (CVE-2017-15361): its modulus can be factored")
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("key of type %T is not supported", jwk.Key)
	}
	return &Key{ID: jwk.KeyID, Alg: jwk.Algorithm, Public: jwk.Key}, nil
}

// modulusBits returns the size of a JWK's base64url n, or 0 if it does not
// decode (go-jose then says why).
func modulusBits(n string) int {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil {
		return 0
	}
	return new(big.Int).SetBytes(b).BitLen()
}
