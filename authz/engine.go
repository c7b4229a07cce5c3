// Package authz decides whether a request may pass: request attributes in,
// a Decision out. It holds the token cache, the negative cache and the
// request dedup.
//
// It imports no protobuf, gRPC or Envoy package, and no key source (a
// provider's keys come through KeySource): the adapters that translate to
// and from its Request and Decision are packages of their own, extauthz
// (Envoy's gRPC ext_authz) and forwardauth (HTTP forward-auth).
package authz

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtauthz/jwtauthz/cache"
)

// Engine decides checks. It is safe for concurrent use.
type Engine struct {
	cfg       Config
	pol       atomic.Pointer[policy]
	updating  sync.Mutex
	gen       atomic.Uint64
	tokens    *cache.LRU[*Grant]
	negative  *cache.LRU[rejection]
	dedup     *cache.Dedup[Decision]
	verifying cache.Flight[verdict]
	verified  atomic.Uint64 // tokens whose signature was checked
	realClock bool          // cfg.Now is time.Now
}

// verdict is the outcome of looking a token up or verifying it.
type verdict struct {
	g      *Grant
	reason Reason
	why    *denial // a rejection's prepared denial (provider, description); nil: deny(reason)
	scope  *rule   // the route whose introspection providers decided a rejection; nil: any route
	cached bool
}

// New builds an Engine. Errors name the offending limit, provider or rule.
func New(cfg Config) (*Engine, error) {
	real := cfg.Now == nil
	if err := cfg.prepare(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:       cfg,
		realClock: real,
		tokens:    cache.NewLRU[*Grant](cfg.CacheSize, 0),
		negative:  cache.NewLRU[rejection](cfg.NegativeCacheSize, 0),
		dedup:     cache.NewDedup[Decision](cfg.DedupSize),
	}
	if err := e.Update(cfg.Providers, cfg.Rules); err != nil {
		return nil, err
	}
	return e, nil
}

// Validate reports whether cfg would build an Engine, without building its
// caches: what --check-config and a reload run.
func Validate(cfg Config) error {
	if err := cfg.prepare(); err != nil {
		return err
	}
	_, err := newPolicy(&cfg, nil, 0, cfg.Now)
	return err
}

// Update swaps in new providers and rules. Providers whose configuration is
// unchanged keep their cached grants; remembered rejections are forgotten,
// since a new provider may accept what the old policy refused. On error the
// running policy stays.
func (e *Engine) Update(providers []ProviderConfig, rules []RuleConfig) error {
	e.updating.Lock() // one reload at a time: each builds on the policy before it
	defer e.updating.Unlock()
	cfg := e.cfg
	cfg.Providers, cfg.Rules = providers, rules
	pol, err := newPolicy(&cfg, e.pol.Load(), e.gen.Add(1), cfg.Now)
	if err != nil {
		return err
	}
	// The cached grants of a provider pol does not have no longer count
	// (holds).
	if old := e.pol.Swap(pol); old != nil && !old.captures(pol) {
		// The rules read scopes or claims that the cached grants did not
		// keep: verify every token again.
		e.tokens.Close()
	}
	e.negative.Close()
	return nil
}

// Close empties the caches.
func (e *Engine) Close() {
	e.tokens.Close()
	e.negative.Close()
	e.dedup.Close()
}

// Observation is one decided check, for Config.Observe.
type Observation struct {
	Request  Request
	Decision Decision
	Elapsed  time.Duration
}

// Check decides one request.
func (e *Engine) Check(ctx context.Context, r *Request) Decision {
	now := e.cfg.Now()
	pol := e.pol.Load()
	d := e.decide(ctx, pol, r, now)
	pol.withMetadata(&d)
	if e.cfg.Observe != nil {
		e.cfg.Observe(Observation{Request: *r, Decision: d, Elapsed: e.elapsed(now)})
	}
	return d
}

// CheckForwarded is Check for a forward-auth query whose headers are h. A
// query that carries a header jwtauthz sets on the upstream request
// (ManagedHeader), under any spelling an upstream reads as the same, is
// denied 400 spoofed_header before anything else, on every route: a
// forward-auth proxy passes the client's headers on, and cannot be told to
// remove them. The refusal and the decision read one policy, so that a
// reload cannot come between the two.
func (e *Engine) CheckForwarded(ctx context.Context, r *Request, h http.Header) Decision {
	now := e.cfg.Now()
	pol := e.pol.Load()
	var d Decision
	if name := pol.spoofedHeader(h); name != "" {
		d = denySpoofed(name)
	} else {
		d = e.decide(ctx, pol, r, now)
	}
	if e.cfg.Observe != nil {
		e.cfg.Observe(Observation{Request: *r, Decision: d, Elapsed: e.elapsed(now)})
	}
	return d
}

// elapsed is the time since now: by the monotonic clock alone (cheaper
// than another time.Now) unless the clock is a test's.
func (e *Engine) elapsed(now time.Time) time.Duration {
	if e.realClock {
		return time.Since(now)
	}
	return e.cfg.Now().Sub(now)
}

func (e *Engine) decide(ctx context.Context, pol *policy, r *Request, now time.Time) Decision {
	switch {
	case r.Oversize:
		return deny(ReasonRequestTooLarge)
	case r.Ambiguous:
		return deny(ReasonBadRequest)
	}
	if e.cfg.CORSPreflight && isPreflight(r) {
		return pol.public // before any rule; Rule() -1 tells it from a public rule
	}
	ru := pol.route(r)
	if ru == nil {
		return deny(ReasonBadRequest) // a path that upstreams may read otherwise than the rules do
	}
	d := e.decideRoute(ctx, pol, ru, r, now)
	if ru.action == ActionOptionalOrFailed && !d.Allow && ru.failDenial == nil && failsOpen(d.Reason) {
		d = pol.failedOpen(ru, r, d) // actions.go
	}
	d.rule = ru.num
	return d
}

// decideRoute decides a request whose rule is ru.
func (e *Engine) decideRoute(ctx context.Context, pol *policy, ru *rule, r *Request, now time.Time) Decision {
	if ru.failDenial != nil {
		return ru.failDenial.decision() // its match.when failed
	}
	if ru.action == ActionAllow {
		return pol.public
	}
	tok, src := ru.extract(r)
	switch {
	case src == nil && ru.action == ActionOptional:
		return pol.anonymous
	case src == nil:
		return deny(ReasonNoToken)
	case len(tok) > e.cfg.MaxTokenSize:
		return deny(ReasonTooLarge)
	}
	th := cache.Hash(tok)
	if g, ok := e.tokens.GetIf(th, now, pol.holds); ok {
		d := pol.authorize(ru, g, src, r)
		d.Cached, d.Layer = true, LayerTokenCache
		return d
	}
	// The token cache missed: this is where checks of one request are worth
	// sharing. (On a hit, a shared decision would cost more than a new one.)
	if r.RequestID == "" || e.cfg.DedupSize == 0 {
		return e.decideToken(ctx, pol, ru, r, tok, th, src, now)
	}
	return e.decideShared(ctx, pol, ru, *r, tok, th, src, now)
}

// decideToken decides a request whose token is tok. The decision's
// deadline says how long the request dedup may reuse it: the dedup window,
// and never beyond the token's exp; an unavailable answer not at all.
func (e *Engine) decideToken(ctx context.Context, pol *policy, ru *rule, r *Request, tok string, th cache.Key, src *TokenSource, now time.Time) Decision {
	v := e.grant(ctx, pol, ru, tok, th, now)
	window := now.Add(e.cfg.DedupWindow).UnixNano()
	layer := LayerVerified
	switch {
	case v.cached && v.g == nil:
		layer = LayerNegativeCache
	case v.cached:
		layer = LayerTokenCache // verified by another check meanwhile
	}
	if v.g == nil {
		d := deny(v.reason)
		if v.why != nil {
			d = v.why.decision()
		}
		d.Cached, d.until, d.Layer = v.cached, window, layer
		if v.reason == ReasonUnavailable {
			d.until = 1 // long past: never reused
		}
		return d
	}
	d := pol.authorize(ru, v.g, src, r)
	d.Cached, d.until, d.Layer = v.cached, min(window, v.g.until), layer
	return d
}

// grant finds tok's rejection in the negative cache, or verifies it, once
// for all concurrent checks of it. (The caller has looked in the token
// cache.)
func (e *Engine) grant(ctx context.Context, pol *policy, ru *rule, tok string, th cache.Key, now time.Time) verdict {
	if r, ok := e.negative.Get(th, now); ok && (r.scope == nil || r.scope == ru) {
		return verdict{reason: r.reason, why: r.why, scope: r.scope, cached: true}
	}
	v, _, err := e.verifying.Do(ctx, th, func() verdict {
		if g, ok := e.tokens.Peek(th, now); ok && pol.holds(g) {
			return verdict{g: g, cached: true} // verified between our Get and Do
		}
		return e.verify(ctx, pol, ru, tok, th, now)
	})
	switch {
	case err != nil:
		return verdict{reason: ReasonUnavailable}
	case v.g != nil && !pol.holds(v.g):
		return e.verify(ctx, pol, ru, tok, th, now) // the run we shared decided under another policy
	case v.g == nil && v.scope != nil && v.scope != ru:
		return e.verify(ctx, pol, ru, tok, th, now) // another route's introspection providers decided
	}
	return v
}

// reject remembers a rejection in the negative cache if its reason may be
// remembered, for the checks of any route, or only of scope's if it is set
// (the route's introspection providers decided it).
func (e *Engine) reject(pol *policy, th cache.Key, dn *denial, scope *rule, now time.Time) verdict {
	r := dn.reason
	if remembered(r) {
		e.negative.Put(th, rejection{reason: r, why: dn, scope: scope, until: now.Add(e.cfg.NegativeTTL).UnixNano()}, now)
		if e.pol.Load() != pol {
			e.negative.Remove(th) // a reload came in meanwhile: it may accept the token
		}
	}
	return verdict{reason: r, why: dn, scope: scope}
}

func (e *Engine) verify(ctx context.Context, pol *policy, ru *rule, tok string, th cache.Key, now time.Time) verdict {
	h, err := peek(tok)
	if err != nil {
		return e.verifyOpaque(ctx, pol, ru, tok, th, now)
	}
	p := pol.providerOf(h.Iss)
	var scope *rule // a JWT no JWT provider has by iss: the route's introspection providers may
	if p == nil && pol.introspects {
		if v, ok := e.introspectJWT(ctx, pol, ru, tok, th, now); ok {
			return v
		}
		scope = ru
	}
	reject := func(dn *denial) verdict { return e.reject(pol, th, dn, scope, now) }
	if p == nil {
		p = pol.anyIssuer
	}
	switch {
	case h.Iss == "":
		return reject(missingIss)
	case p == nil:
		return reject(plainDenials[ReasonWrongIssuer])
	case !p.keys.Ready():
		return verdict{reason: ReasonUnavailable, why: pol.denials[p].byReason[ReasonUnavailable]}
	}
	e.verified.Add(1)
	var end func(Reason)
	if e.cfg.Tracer != nil {
		ctx, end = e.cfg.Tracer.StartVerify(ctx, p.name)
	}
	c, err := p.verify(ctx, tok, h)
	if err != nil {
		v := reject(pol.denials[p].denialOf(p, h, err))
		if end != nil {
			end(v.reason)
		}
		return v
	}
	if end != nil {
		end(ReasonOK)
	}
	g := pol.newGrant(p, h, c, tok, now.Add(e.cfg.CacheTTL))
	e.tokens.Put(th, g, now)
	if cur := e.pol.Load(); !pol.captures(cur) {
		e.tokens.Remove(th) // a reload came in meanwhile, and emptied the cache or will
	}
	return verdict{g: g}
}

// rejection is what the negative cache keeps: why, and until when.
type rejection struct {
	reason Reason
	why    *denial // its prepared denial: provider and description
	scope  *rule   // the only route it answers for; nil: any (verdict.scope)
	until  int64   // Unix nanoseconds
}

// Deadline implements cache.Expiring.
func (r rejection) Deadline() int64 { return r.until }

// remembered reports whether a rejection for r may be kept in the negative
// cache: not when a key refresh or the passing of time may change it.
func remembered(r Reason) bool {
	switch r {
	case ReasonUnknownKID, ReasonNotYetValid, ReasonUnavailable, ReasonIntrospectionFailed:
		return false
	}
	return true
}

// Stats are the counters of the engine's caches.
type Stats struct {
	Tokens, Negative, Dedup cache.Stats
	// Verified counts tokens whose signature and claims were checked, that
	// is, checks no cache answered.
	Verified uint64
}

// Stats returns the caches' counters.
func (e *Engine) Stats() Stats {
	return Stats{Tokens: e.tokens.Stats(), Negative: e.negative.Stats(), Dedup: e.dedup.Stats(), Verified: e.verified.Load()}
}

// ManagedHeader reports whether name is a header jwtauthz sets on the
// upstream request under the running configuration: x-auth-subject,
// x-auth-issuer, and every provider's claim_headers and payload_header
// name. Names compare without case and with '_' as '-', as upstreams may
// read them. The set is made once per configuration (New, Update), so a
// reload changes the answer.
func (e *Engine) ManagedHeader(name string) bool {
	return e.pol.Load().managedName(name) != ""
}
