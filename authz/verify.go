package authz

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Sentinel errors of verification, mapped to reasons in one place (reasonOf).
var (
	errUnknownKID  = errors.New("no key with this kid")
	errKeyMismatch = errors.New("the key's JWK alg differs from the token's")
	errWrongParty  = errors.New("azp not among the authorized parties")
)

// verify checks tok's signature and claims, with golang-jwt's signing
// methods and validator over what peek decoded strictly (h): the token is
// not parsed a second time. When the kid is unknown it asks the key source
// for a refresh, waiting no longer than refreshContext(ctx) allows. A
// token without kid is checked against the keys that fit it (keyless).
func (p *provider) verify(ctx context.Context, tok string, h header) (*claims, error) {
	method, ok := p.methods[h.Alg]
	if !ok {
		return nil, jwt.ErrTokenSignatureInvalid // reasonOf reads the alg itself
	}
	c := &claims{}
	if err := c.fromMembers(h.payload); err != nil {
		return nil, fmt.Errorf("%w: %w", jwt.ErrTokenMalformed, err)
	}
	var key crypto.PublicKey
	var err error
	if h.KID == "" {
		key, err = p.keyless(ctx, tok, h, method)
	} else {
		key, err = p.keyed(ctx, tok, h, method)
	}
	if err != nil {
		return nil, err
	}
	c.key = key
	if err := p.validator.Validate(c); err != nil {
		if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
			err = fmt.Errorf("%w: %w", err, &missingClaimError{whichMissing(p, c)})
		}
		return nil, fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, err)
	}
	if len(p.cfg.AuthorizedParties) > 0 && c.Azp != "" && !slices.Contains(p.cfg.AuthorizedParties, c.Azp) {
		return nil, errWrongParty
	}
	if p.checks != nil {
		if err := p.checks.check(h, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// keyed finds the key that signed tok by its kid.
func (p *provider) keyed(ctx context.Context, tok string, h header, method jwt.SigningMethod) (crypto.PublicKey, error) {
	key, err := p.key(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", jwt.ErrTokenUnverifiable, err)
	}
	dot := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.Strict().DecodeString(tok[dot+1:])
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %w", jwt.ErrTokenMalformed, err)
	}
	if err := method.Verify(tok[:dot], sig, key); err != nil {
		// The IdP may have put a new key under the token's kid: its new
		// tokens fail with the old key, as a forgery does.
		if key = p.replacedKey(ctx, h, key); key == nil || method.Verify(tok[:dot], sig, key) != nil {
			return nil, fmt.Errorf("%w: %w", jwt.ErrTokenSignatureInvalid, err)
		}
	}
	return key, nil
}

// replacedKey refreshes the key set as for an unknown kid (cooled down,
// no longer than refreshContext(ctx) allows) and returns the key the
// token's kid names now if it is another than old, else nil.
func (p *provider) replacedKey(ctx context.Context, h header, old any) any {
	key, err := p.refreshedKey(ctx, h)
	if err != nil || sameKey(key, old) {
		return nil
	}
	return key
}

// refreshedKey asks for a refresh of the key set, waiting no longer than
// refreshContext(ctx) allows, and looks the kid up again whatever Refresh
// says: a fetch that ended between the caller's look and the call has the
// key, though the cooldown then refuses another.
func (p *provider) refreshedKey(ctx context.Context, h header) (any, error) {
	p.refresh(ctx)
	return p.lookup(h)
}

// key finds the key that should have signed the token: by kid in the
// current set, refreshing it once if the kid is unknown.
func (p *provider) key(ctx context.Context, h header) (any, error) {
	key, err := p.lookup(h)
	if errors.Is(err, errUnknownKID) && h.KID != "" {
		key, err = p.refreshedKey(ctx, h)
	}
	return key, err
}

// lookup finds the token's kid in the current set; a JWK that names
// another alg than the token's is refused.
func (p *provider) lookup(h header) (any, error) {
	key, alg, ok := p.keys.Key(h.KID)
	switch {
	case !ok:
		return nil, errUnknownKID
	case alg != "" && alg != h.Alg:
		return nil, errKeyMismatch
	}
	return key, nil
}

// reasonOf maps a verification error to its reason; errors.Is reads through
// golang-jwt's joined errors.
func (p *provider) reasonOf(h header, err error) Reason {
	if dn := checkDenial(err); dn != nil {
		return dn.reason
	}
	switch {
	case !slices.Contains(p.algs, h.Alg):
		return ReasonAlgNotAllowed
	case errors.Is(err, errTenantIssuer):
		return ReasonWrongIssuer
	case errors.Is(err, errUnknownKID):
		return ReasonUnknownKID
	case errors.Is(err, errKeyMismatch):
		return ReasonKeyMismatch
	case errors.Is(err, errWrongParty):
		return ReasonWrongParty
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ReasonMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ReasonBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonNotYetValid
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ReasonMissingClaim
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ReasonWrongIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ReasonWrongAudience
	}
	return ReasonInvalidClaims
}

// refresh asks the key source for a fetch as for an unknown kid (it may
// say no at once: cooldown), waiting no longer than refreshContext allows.
func (p *provider) refresh(ctx context.Context) {
	var end func()
	if p.tracer != nil {
		ctx, end = p.tracer.StartKeyWait(ctx, p.name)
	}
	wctx, cancel := refreshContext(ctx, p.wait)
	p.keys.Refresh(wctx)
	cancel()
	if end != nil {
		end()
	}
}

// refreshContext bounds a check's wait on the network (an unknown-kid
// refresh, which may join a fetch under way) by wait, Config.NetworkWait,
// and by the request's deadline less what the answer needs to reach the
// caller in time: a tenth of the time left, at least 10 ms. The bound is
// the nearer of the two; a wait of 0 or less ends the context at once.
func refreshContext(ctx context.Context, wait time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		wait = min(wait, left-max(left/10, 10*time.Millisecond))
	}
	return context.WithTimeout(ctx, wait)
}
