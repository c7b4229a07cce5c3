package authz

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/jwtauthz/jwtauthz/cache"
)

// decideShared decides a token-cache miss once for all checks of one
// request. It takes the request by value so that the closure it builds does
// not make every caller's request escape to the heap.
func (e *Engine) decideShared(ctx context.Context, pol *policy, ru *rule, r Request, tok string, th cache.Key, src *TokenSource, now time.Time) Decision {
	k := dedupKey(pol.gen, &r, th)
	var own Decision
	d, hit, err := e.dedup.Do(ctx, k, now, func() Decision {
		own = e.decideToken(ctx, pol, ru, &r, tok, th, src, now)
		shared := own
		shared.Cookie, shared.CookieSet, shared.RemoveQuery = "", false, nil // the request's own: not kept
		return shared
	})
	if err == nil && !hit {
		d = own // this check's fn ran: its full decision
	}
	switch {
	case err != nil:
		return deny(ReasonUnavailable) // the caller gave up waiting for its twin
	case hit && d.grant != nil && !pol.holds(d.grant):
		d = e.decideToken(ctx, pol, ru, &r, tok, th, src, now)
	case hit && d.grant != nil:
		// The twin's grant, this request's answer: what it rewrites (its
		// cookie header) comes from its own headers.
		d = pol.authorize(ru, d.grant, src, &r)
		d.Cached, d.Layer = true, LayerDedup
	case hit:
		d.Cached, d.Layer = true, LayerDedup
	}
	return d
}

// dedupKey binds a request id to everything else that decides: the token,
// the route and the policy. An id alone never selects a decision.
func dedupKey(gen uint64, r *Request, th cache.Key) cache.Key {
	var buf [512]byte
	b := binary.LittleEndian.AppendUint64(buf[:0], gen)
	b = append(b, th[:]...)
	for _, s := range [...]string{r.RequestID, r.Method, r.Host, r.Path} {
		n := len(s)
		b = append(b, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
		b = append(b, s...)
	}
	return sha256.Sum256(b)
}
