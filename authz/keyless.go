package authz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// MaxKeylessTries bounds the keys a token without kid is checked against.
//
// A token without kid names no key, so it is checked against every key of
// its provider's set that fits it: the key type the token's alg needs (RSA
// for RS* and PS*, the alg's curve for ES*, Ed25519 for EdDSA), and a JWK
// alg that is the token's or none. Keys of the same material count once;
// whether they have a kid does not matter. If no key fits, or more than
// MaxKeylessTries do, the token is refused as unknown_kid; otherwise it is
// allowed if one of them verifies its signature. The answer never depends
// on the order of the keys in the set. When no key verifies it (or none
// fits), the set is refreshed as for an unknown kid (cooled down) and the
// keys the refresh brought are tried too, under the same bound. A token
// refused for its signature is kept in the negative cache, so one forged
// token costs at most 2 × MaxKeylessTries signature checks, once.
const MaxKeylessTries = 4

// errTooManyKeys: more keys fit a token without kid than are tried.
var errTooManyKeys = fmt.Errorf("%w: more than %d keys of the set fit a token without kid", errUnknownKID, MaxKeylessTries)

// keyless finds the key that signed tok, a token without kid (see
// MaxKeylessTries).
func (p *provider) keyless(ctx context.Context, tok string, h header, method jwt.SigningMethod) (crypto.PublicKey, error) {
	dot := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.Strict().DecodeString(tok[dot+1:])
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %w", jwt.ErrTokenMalformed, err)
	}
	var buf [2 * MaxKeylessTries]crypto.PublicKey
	key, tried, err := p.tryKeys(h, method, tok[:dot], sig, buf[:0])
	if err == nil {
		return key, nil
	}
	// The IdP may have published the key since: refresh as for an unknown
	// kid, and try what the current set holds that was not tried.
	p.refresh(ctx)
	key, _, err = p.tryKeys(h, method, tok[:dot], sig, tried)
	return key, err
}

// tryKeys verifies sig over input with each key of the current set that
// fits h, but those in tried, and returns the key that verifies it and the
// keys tried.
func (p *provider) tryKeys(h header, method jwt.SigningMethod, input string, sig []byte, tried []crypto.PublicKey) (crypto.PublicKey, []crypto.PublicKey, error) {
	var buf [MaxKeylessTries]crypto.PublicKey
	fit, err := p.fitting(h, buf[:0])
	if err != nil {
		return nil, tried, fmt.Errorf("%w: %w", jwt.ErrTokenUnverifiable, err)
	}
	for _, key := range fit {
		if slices.ContainsFunc(tried, func(t crypto.PublicKey) bool { return sameKey(t, key) }) {
			continue
		}
		tried = append(tried, key)
		if method.Verify(input, sig, key) == nil {
			return key, tried, nil
		}
	}
	return nil, tried, fmt.Errorf("%w: no key of the set verifies a token without kid", jwt.ErrTokenSignatureInvalid)
}

// fitting appends to fit the distinct keys of the current set that fit a
// token without kid with h's alg: errUnknownKID if there is none, and
// errTooManyKeys if there are more than MaxKeylessTries.
func (p *provider) fitting(h header, fit []crypto.PublicKey) ([]crypto.PublicKey, error) {
	over := false
	for key, alg := range p.keys.EachKey {
		if alg != "" && alg != h.Alg || !fits(h.Alg, key) ||
			slices.ContainsFunc(fit, func(f crypto.PublicKey) bool { return sameKey(f, key) }) {
			continue
		}
		if len(fit) == MaxKeylessTries {
			over = true
			break
		}
		fit = append(fit, key)
	}
	switch {
	case over:
		return nil, errTooManyKeys
	case len(fit) == 0:
		return nil, fmt.Errorf("%w: no key of the set fits a token without kid", errUnknownKID)
	}
	return fit, nil
}

// fits reports whether key is of the type and curve alg signs with.
func fits(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve.Params().Name == "P-256"
		case "ES384":
			return k.Curve.Params().Name == "P-384"
		case "ES512":
			return k.Curve.Params().Name == "P-521"
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}
