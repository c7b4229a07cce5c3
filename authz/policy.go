package authz

import (
	"fmt"
	"reflect"
	"slices"
	"time"
)

// policy is the part of the configuration that decides: providers and
// rules. It is immutable; a reload swaps in a new one.
type policy struct {
	gen       uint64
	providers []*provider
	byIssuer  map[string]*provider
	anyIssuer *provider   // takes tokens whose iss no other provider has
	anyTenant []*provider // issuer templates of every tenant (tenant.go), in order
	rules     []*rule
	fallback  *rule // no rule matched: any provider, token required
	cases     caseCheck
	caseDep   bool // PathCaseUnset, and a rule's caseDep
	// managed is every header any provider may set: it is removed from a
	// request wherever jwtauthz does not set it.
	managed    []string
	remove     map[*provider]*removals
	denials    map[*provider]*providerDenials // prepared per policy: a reload may rename
	claimNames []string                       // claims that rules read
	needScopes bool
	cel        celNeeds // what the rules' require.when read of a token
	// introspects: some provider is an introspection provider (opaque.go).
	introspects bool

	public, anonymous Decision
}

func newPolicy(cfg *Config, old *policy, gen uint64, now func() time.Time) (*policy, error) {
	pol := &policy{gen: gen, byIssuer: map[string]*provider{}}
	byName := map[string]*provider{}
	for i, pc := range cfg.Providers {
		p, err := reuseOrBuild(pc, old, cfg.ClockSkew, cfg.NetworkWait, now, cfg.Tracer)
		if err != nil {
			return nil, &ConfigError{Key: fmt.Sprintf("providers[%d]", i), Err: err}
		}
		if byName[p.name] != nil {
			return nil, providerError(i, "name %q is used twice", p.name)
		}
		switch {
		case p.cfg.AnyIssuer && pol.anyIssuer != nil:
			return nil, providerError(i, "only one provider may accept any issuer (%q does)", pol.anyIssuer.name)
		case p.cfg.AnyIssuer:
			pol.anyIssuer = p
		case p.cfg.Introspector != nil:
			// Not routed by iss: the rules' providers decide opaque tokens
			// (opaque.go). Its issuer may be a JWT provider's too.
		case p.checks != nil && p.checks.tenants != nil:
			if err := pol.addIssuers(i, p); err != nil { // an issuer template's (tenant.go)
				return nil, err
			}
		case pol.byIssuer[p.cfg.Issuer] != nil:
			return nil, providerError(i, "issuer %q is also provider %q's", p.cfg.Issuer, pol.byIssuer[p.cfg.Issuer].name)
		default:
			pol.byIssuer[p.cfg.Issuer] = p
		}
		byName[p.name] = p
		pol.providers = append(pol.providers, p)
		pol.introspects = pol.introspects || p.cfg.Introspector != nil
		for _, h := range p.headers {
			if !slices.Contains(pol.managed, h) {
				pol.managed = append(pol.managed, h)
			}
		}
	}
	if len(pol.providers) == 0 {
		return nil, ErrNoProviders
	}
	for i, rc := range cfg.Rules {
		r, err := newRule(i, rc, byName, pol.providers)
		if err != nil {
			return nil, err
		}
		r.num = int32(i) + 1
		pol.rules = append(pol.rules, r)
		pol.needScopes = pol.needScopes || len(r.scopes) > 0
		pol.cel.add(r.when)
		for _, c := range r.claims {
			if !slices.Contains(pol.claimNames, c[0]) {
				pol.claimNames = append(pol.claimNames, c[0])
			}
		}
	}
	if err := pol.setPathCase(cfg.PathCase); err != nil {
		return nil, err
	}
	pol.fallback, _ = newRule(len(cfg.Rules), RuleConfig{}, byName, pol.providers)
	for _, r := range append(slices.Clone(pol.rules), pol.fallback) {
		r.collectSources()
	}
	pol.remove = map[*provider]*removals{}
	pol.denials = map[*provider]*providerDenials{}
	for _, p := range pol.providers {
		pol.denials[p] = newProviderDenials(p.name)
		pol.remove[p] = &removals{
			full:       without(pol.managed, p.headers),
			identity:   without(pol.managed, []string{HeaderIssuer, HeaderSubject}),
			issuerOnly: without(pol.managed, []string{HeaderIssuer}),
		}
	}
	pol.public = Decision{Allow: true, Reason: ReasonPublic, Remove: pol.managed}
	pol.anonymous = Decision{Allow: true, Reason: ReasonAnonymous, Remove: pol.managed}
	return pol, nil
}

// captures reports whether the grants made under pol keep everything the
// rules of next read: the scopes if they need them, and their claims.
func (pol *policy) captures(next *policy) bool {
	if pol == next {
		return true
	}
	if next.needScopes && !pol.needScopes || !pol.cel.covers(&next.cel) {
		return false
	}
	for _, c := range next.claimNames {
		if !slices.Contains(pol.claimNames, c) {
			return false
		}
	}
	return true
}

// reuseOrBuild keeps the provider of the running policy if its configuration
// is unchanged, so that its cached grants stay valid across a reload.
func reuseOrBuild(pc ProviderConfig, old *policy, skew, wait time.Duration, now func() time.Time, tr Tracer) (*provider, error) {
	if old != nil {
		for _, p := range old.providers {
			if sameProvider(p.cfg, pc) && p.skew == skew && p.wait == wait {
				return p, nil
			}
		}
	}
	p, err := newProvider(pc, skew, wait, now)
	if p != nil {
		p.tracer = tr // the engine's, the same for every policy
	}
	return p, err
}

// sameProvider reports whether two provider configurations are equal, their
// key sources by identity: a running source is never read (DeepEqual
// would race with its fetches).
func sameProvider(a, b ProviderConfig) bool {
	if !sameRef(a.Keys, b.Keys) || !sameRef(a.Introspector, b.Introspector) {
		return false
	}
	a.Keys, b.Keys = nil, nil
	a.Introspector, b.Introspector = nil, nil
	return reflect.DeepEqual(a, b)
}

// sameRef reports whether a and b are the same running object (a key
// source, an introspector), or both nil.
func sameRef(a, b any) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && (ta == nil || ta.Comparable() && a == b)
}

// removals are the managed headers to remove for a provider's grants, made
// once per policy (a reload may change what is managed): for a grant that
// sets every header the provider may set, one that sets only x-auth-issuer
// and x-auth-subject, and one that sets only x-auth-issuer.
type removals struct{ full, identity, issuerOnly []string }

func without(all, drop []string) []string {
	var out []string
	for _, h := range all {
		if !slices.Contains(drop, h) {
			out = append(out, h)
		}
	}
	return out
}

// authorize decides a request with a verified token: the rule must allow
// its provider, the token must come from one of the provider's sources, and
// the rule's requirements must hold.
func (pol *policy) authorize(ru *rule, g *Grant, src *TokenSource, r *Request) Decision {
	if !ru.allows(g.p) || !g.p.hasSource(src) {
		d := deny(ReasonWrongIssuer)
		d.Provider = g.p.name
		return d
	}
	if dn := ru.unmet(g); dn != nil {
		d := dn.decision()
		d.Provider, d.Subject = g.p.name, g.subject()
		return d
	}
	if ru.when != nil && !ru.when.holds(r, g, pol.gen) {
		d := ru.whenDenial.decision()
		d.Provider, d.Subject = g.p.name, g.subject()
		return d
	}
	d := Decision{Allow: true, Reason: ReasonOK, Provider: g.p.name, Subject: g.subject(), Issuer: g.issuer(), Remove: pol.removeFor(g), grant: g}
	if g.extra != nil {
		d.Set = g.extra.set
	}
	if g.p.cfg.DropToken {
		d.dropToken(src, r)
	}
	return d
}

// dropToken makes d take the token out of the upstream request, wherever
// src says r carries it: the cookie, the query parameter or the header.
func (d *Decision) dropToken(src *TokenSource, r *Request) {
	switch {
	case src.Cookie != "":
		d.Cookie, d.CookieSet = withoutCookie(r.header("cookie"), src.Cookie), true
	case src.Query != "":
		d.RemoveQuery = []string{src.Query}
	default:
		d.Remove = append(slices.Clip(d.Remove), src.Header)
	}
}

// holds reports whether g still counts under pol: its provider is one of
// pol's (a reload that replaced it ends its grants; an introspection
// provider's grants need nothing more), pol still routes the
// token's iss to it, and the key that verified the token is still in the
// provider's current set under its kid, or anywhere in it for a token
// without kid (a key withdrawn by the IdP, or replaced under the same kid,
// ends its grants).
func (pol *policy) holds(g *Grant) bool {
	if !slices.Contains(pol.providers, g.p) { // a few pointers: cheaper than the map authorize reads
		return false
	}
	if g.p.keepsIss && pol.issuerProvider(g.issuer()) != g.p {
		return false // AnyIssuer or a template: the token's iss is another provider's now
	}
	if g.p.keys == nil {
		return true // an introspection grant: no key; its provider is unchanged
	}
	var k *usedKey
	if g.extra != nil && g.extra.key != nil {
		k = g.extra.key
	} else {
		k = g.p.usedKey(g.kid)
	}
	if k.kid == "" {
		return g.p.keys.HasKey(k.key) // a token without kid: the key anywhere in the set
	}
	key, _, ok := g.p.keys.Key(k.kid)
	return ok && sameKey(key, k.key)
}
