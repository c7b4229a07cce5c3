package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jwtauthz/jwtauthz/cache"
)

// Opaque tokens: RFC 7662 token introspection behind the same caches.
//
// A token that is not a compact JWS (peek refuses it) goes to the
// introspection providers the route allows, in their order; a JWT whose
// iss no JWT provider has goes to those of them that set IntrospectJWTs.
// An active answer that passes the checks (introspected) wins at once and
// is cached as a verified JWT's grant is; an active answer that fails them
// (expired, wrong iss or aud, a refresh token) is a definite denial; an
// inactive one lets the next provider answer. With no active answer the
// check is denied: unavailable (503) if some provider could not be asked,
// else introspection_failed (503) if some answer was unusable, else
// inactive (401). Neither 503 is remembered; the other denials go to the
// negative cache for this route alone (another route may allow other
// providers).

// errIntrospection is an answer the engine cannot use: a member of the
// wrong type, an iss unfit for a header.
var errIntrospection = errors.New("introspection response unusable")

// checkIntrospection refuses what an introspection provider cannot have.
func checkIntrospection(cfg ProviderConfig) error {
	if cfg.Introspector == nil {
		if cfg.IntrospectJWTs || cfg.IntrospectionCacheTTL != 0 {
			return fmt.Errorf("provider %q: IntrospectJWTs and IntrospectionCacheTTL need an Introspector", cfg.Name)
		}
		return nil
	}
	switch {
	case cfg.Name == "":
		return fmt.Errorf("provider %q: a name is required", cfg.Name)
	case cfg.Keys != nil:
		return fmt.Errorf("provider %q: an introspection provider takes no keys (a JWKS): the introspection endpoint decides", cfg.Name)
	case cfg.AnyIssuer:
		return fmt.Errorf("provider %q: an introspection provider cannot accept any issuer", cfg.Name)
	case cfg.PayloadHeader != "":
		return fmt.Errorf("provider %q: an introspection provider has no JWT payload for payload_header", cfg.Name)
	case cfg.IntrospectionCacheTTL < 0:
		return fmt.Errorf("provider %q: IntrospectionCacheTTL must not be negative", cfg.Name)
	}
	return nil
}

// introspectable reports whether p may decide a token of the route: an
// opaque one, or a JWT if p introspects JWTs.
func (p *provider) introspectable(jwt bool) bool {
	return p.cfg.Introspector != nil && (!jwt || p.cfg.IntrospectJWTs)
}

// verifyOpaque decides a token that is not a JWT: malformed on a route
// without introspection providers.
func (e *Engine) verifyOpaque(ctx context.Context, pol *policy, ru *rule, tok string, th cache.Key, now time.Time) verdict {
	if !pol.introspects {
		return e.reject(pol, th, plainDenials[ReasonMalformed], nil, now)
	}
	if !slices.ContainsFunc(ru.providers, func(p *provider) bool { return p.introspectable(false) }) {
		return e.reject(pol, th, plainDenials[ReasonMalformed], ru, now)
	}
	return e.introspect(ctx, pol, ru, false, tok, th, now)
}

// introspectJWT decides a JWT no JWT provider has by iss, if the route has
// a provider that introspects JWTs; false if it has none.
func (e *Engine) introspectJWT(ctx context.Context, pol *policy, ru *rule, tok string, th cache.Key, now time.Time) (verdict, bool) {
	if !slices.ContainsFunc(ru.providers, func(p *provider) bool { return p.introspectable(true) }) {
		return verdict{}, false
	}
	return e.introspect(ctx, pol, ru, true, tok, th, now), true
}

// introspect asks the route's introspection providers about tok, in order,
// until one says it is active (see the top of this file).
func (e *Engine) introspect(ctx context.Context, pol *policy, ru *rule, jwt bool, tok string, th cache.Key, now time.Time) verdict {
	var unavailable, failed, inactive *denial
	for _, p := range ru.providers {
		if !p.introspectable(jwt) {
			continue
		}
		pd := pol.denials[p]
		a, err := e.ask(ctx, pol, p, tok, now)
		switch {
		case errors.Is(err, ErrIntrospectionUnavailable):
			unavailable = cmpOr(unavailable, pd.byReason[ReasonUnavailable])
			continue
		case err != nil:
			failed = cmpOr(failed, pd.byReason[ReasonIntrospectionFailed])
			continue
		}
		c, dn := pol.judge(p, a.members, now)
		if !a.shared {
			e.share(ctx, pol, p, tok, a.members, c, dn, now)
		}
		switch {
		case dn == nil:
			return e.keep(pol, th, p, c, a.until, now)
		case dn.reason == ReasonInactive:
			inactive = cmpOr(inactive, dn)
		case dn.reason == ReasonIntrospectionFailed:
			failed = cmpOr(failed, dn)
		default:
			return e.reject(pol, th, dn, ru, now) // active, but not for us
		}
	}
	switch {
	case unavailable != nil:
		return verdict{reason: ReasonUnavailable, why: unavailable}
	case failed != nil:
		return verdict{reason: ReasonIntrospectionFailed, why: failed}
	case inactive != nil:
		return e.reject(pol, th, inactive, ru, now)
	}
	return e.reject(pol, th, plainDenials[ReasonInactive], ru, now) // unreachable: the caller saw a provider
}

func cmpOr(a, b *denial) *denial {
	if a != nil {
		return a
	}
	return b
}

// keep makes the grant of an active answer and puts it in the token cache
// until the answer's exp, the cache TTL, or (without exp) the provider's
// introspection cache TTL, whichever is soonest, and never beyond limit
// (a shared verdict's end; 0: none).
func (e *Engine) keep(pol *policy, th cache.Key, p *provider, c *claims, limit int64, now time.Time) verdict {
	until := grantEnd(e.cfg.CacheTTL, p, c, now)
	if limit != 0 {
		until = min(until, limit)
	}
	g := pol.introspectionGrant(p, c, until)
	e.tokens.Put(th, g, now)
	if cur := e.pol.Load(); !pol.captures(cur) {
		e.tokens.Remove(th) // a reload came in meanwhile, and emptied the cache or will
	}
	return verdict{g: g}
}

// grantEnd is when the grant of an active answer ends, in Unix nanoseconds:
// the answer's exp, or ttl (Config.CacheTTL) from now, or without exp the
// provider's introspection cache TTL from now, whichever is soonest.
func grantEnd(ttl time.Duration, p *provider, c *claims, now time.Time) int64 {
	end := now.Add(ttl)
	if c.ExpiresAt == nil {
		if t := now.Add(p.cfg.IntrospectionCacheTTL); t.Before(end) {
			end = t
		}
	} else if c.ExpiresAt.Before(end) {
		end = c.ExpiresAt.Time
	}
	return end.UnixNano()
}

// answer is an introspection response as members, from the endpoint or
// the shared cache (shared, until its end).
type answer struct {
	members map[string]json.RawMessage
	shared  bool
	until   int64
}

// ask returns p's answer about tok: the shared cache's, if it has one, or
// the endpoint's, each waited for no longer than Config.NetworkWait and
// the request's deadline allow.
func (e *Engine) ask(ctx context.Context, pol *policy, p *provider, tok string, now time.Time) (answer, error) {
	wctx, cancel := refreshContext(ctx, p.wait)
	defer cancel()
	if sc := e.cfg.SharedCache; sc != nil {
		if v, ok := sc.Get(wctx, p.name, tok); ok && v.Until > now.UnixNano() {
			if m, err := v.members(); err == nil {
				return answer{members: m, shared: true, until: v.Until}, nil
			}
		}
	}
	var end func(Reason)
	if e.cfg.Tracer != nil {
		wctx, end = e.cfg.Tracer.StartIntrospect(wctx, p.name)
	}
	e.verified.Add(1)
	resp, err := p.cfg.Introspector.Introspect(wctx, tok)
	if err == nil && wctx.Err() != nil {
		err = wctx.Err() // an answer after the wait ended is not waited for
	}
	var m map[string]json.RawMessage
	if err == nil {
		m, err = rawMembers(resp)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: %w", ErrIntrospectionUnavailable, err)
	}
	if end != nil {
		switch {
		case errors.Is(err, ErrIntrospectionUnavailable):
			end(ReasonUnavailable)
		case err != nil:
			end(ReasonIntrospectionFailed)
		default:
			end(ReasonOK)
		}
	}
	return answer{members: m}, err
}

// rawMembers turns a decoded JSON object back into its members' JSON
// texts, which claims reads as it reads a JWT's payload.
func rawMembers(resp map[string]any) (map[string]json.RawMessage, error) {
	if resp == nil {
		return nil, errIntrospection
	}
	m := make(map[string]json.RawMessage, len(resp))
	for k, v := range resp {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", errIntrospection, k, err)
		}
		m[k] = b
	}
	return m, nil
}

// judge checks an answer: active must be the JSON true; exp (if present)
// not past and nbf not future, each with the skew; iss p's issuer if it
// has one, else present; aud one of p's audiences if it has any; azp one
// of p's authorized parties if it has any and the answer names one;
// token_type not refresh_token, nor token_use (Ory Hydra's, which answers
// token_type "Bearer" for both kinds). A member of the wrong type makes the
// answer unusable (introspection_failed).
func (pol *policy) judge(p *provider, m map[string]json.RawMessage, now time.Time) (*claims, *denial) {
	pd := pol.denials[p]
	if string(m["active"]) != "true" {
		return nil, pd.byReason[ReasonInactive]
	}
	c := &claims{}
	var typ, use string
	if c.fromMembers(m) != nil || stringMember(m, "token_type", &typ) != nil || stringMember(m, "token_use", &use) != nil {
		return nil, pd.byReason[ReasonIntrospectionFailed]
	}
	switch {
	case c.ExpiresAt != nil && !now.Before(c.ExpiresAt.Add(p.skew)):
		return nil, pd.byReason[ReasonExpired]
	case c.NotBefore != nil && now.Add(p.skew).Before(c.NotBefore.Time):
		return nil, pd.byReason[ReasonNotYetValid]
	case c.Issuer == "":
		return nil, pd.missing[claimIss]
	case p.cfg.Issuer != "" && c.Issuer != p.cfg.Issuer:
		return nil, pd.byReason[ReasonWrongIssuer]
	case !headerSafe(c.Issuer):
		return nil, pd.byReason[ReasonIntrospectionFailed]
	case len(p.cfg.Audiences) > 0 && strings.Join(c.Audience, "") == "":
		return nil, pd.missing[claimAud]
	case len(p.cfg.Audiences) > 0 && !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(p.cfg.Audiences, a) }):
		return nil, pd.byReason[ReasonWrongAudience]
	case len(p.cfg.AuthorizedParties) > 0 && c.Azp != "" && !slices.Contains(p.cfg.AuthorizedParties, c.Azp):
		return nil, pd.byReason[ReasonWrongParty]
	case typ == "refresh_token", use == "refresh_token":
		return nil, pd.byReason[ReasonWrongTyp]
	}
	return c, nil
}

// introspectionGrant keeps what the policy needs of an active answer, as
// newGrant does of a JWT's claims: there is no key and no payload.
func (pol *policy) introspectionGrant(p *provider, c *claims, until int64) *Grant {
	g := &Grant{p: p, until: until}
	iss := "" // judge saw one
	if c.Issuer != p.cfg.Issuer {
		iss = c.Issuer
	}
	pol.keep(g, &grantExtra{}, c, iss, "", false)
	return g
}

// sharedMembers are the members of an answer a shared verdict keeps besides
// iss and sub: what judge checks and what scopes read. share adds what the
// rules, conditions, claim headers and metadata claims read.
var sharedMembers = []string{"exp", "nbf", "iat", "aud", "azp", "token_type", "token_use", "scope", "scp"}

// share puts a fresh answer in the shared cache: an inactive one for the
// negative TTL, an active one until the grant it makes would end. An
// unusable one is not kept.
func (e *Engine) share(ctx context.Context, pol *policy, p *provider, tok string, m map[string]json.RawMessage, c *claims, dn *denial, now time.Time) {
	sc := e.cfg.SharedCache
	if sc == nil || dn != nil && dn.reason == ReasonIntrospectionFailed {
		return
	}
	var v SharedVerdict
	if dn != nil && dn.reason == ReasonInactive {
		v.Until = now.Add(e.cfg.NegativeTTL).UnixNano()
	} else {
		if c == nil {
			c = &claims{}
			if c.fromMembers(m) != nil {
				return
			}
		}
		v = SharedVerdict{Active: true, Subject: c.Subject, Issuer: c.Issuer, Scopes: c.Scopes, Claims: map[string]any{}}
		v.Until = grantEnd(e.cfg.CacheTTL, p, c, now)
		keep := func(name string) {
			if head, _, _ := strings.Cut(name, "."); m[head] != nil {
				v.Claims[head] = m[head]
			}
			if m[name] != nil {
				v.Claims[name] = m[name]
			}
		}
		for _, n := range sharedMembers {
			keep(n)
		}
		for _, n := range pol.claimNames {
			keep(n)
		}
		for _, ch := range p.claimHeaders {
			keep(ch.claim)
		}
		for _, n := range pol.cel.claims {
			keep(n)
		}
		if pol.cel.allClaims { // a condition reads claims as a whole
			for n := range m {
				keep(n)
			}
		}
		if p.meta != nil {
			for _, n := range p.meta.claims {
				keep(n)
			}
		}
	}
	if v.Until <= now.UnixNano() {
		return
	}
	wctx, cancel := refreshContext(ctx, p.wait)
	defer cancel()
	e.cfg.SharedCache.Put(wctx, p.name, tok, v)
}

// members rebuilds the answer a shared verdict was made of, for judge.
func (v SharedVerdict) members() (map[string]json.RawMessage, error) {
	m := make(map[string]json.RawMessage, len(v.Claims)+3)
	for k, x := range v.Claims {
		switch k {
		case "active", "iss", "sub":
			continue // the verdict's own fields say
		}
		b, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		m[k] = b
	}
	m["active"] = json.RawMessage("false")
	if !v.Active {
		return m, nil
	}
	m["active"] = json.RawMessage("true")
	for k, s := range map[string]string{"iss": v.Issuer, "sub": v.Subject} {
		if s != "" {
			b, _ := json.Marshal(s) // a string always marshals
			m[k] = b
		}
	}
	return m, nil
}
