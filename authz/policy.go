package authz

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

// policy is the part of the configuration that decides: providers and
// rules. It is immutable; a reload swaps in a new one.
type policy struct {
	gen       uint64
	providers []*provider
	byIssuer  map[string]*provider
	anyIssuer *provider // takes tokens whose iss no other provider has
	rules     []*rule
	fallback  *rule // no rule matched: any provider, token required
	cases     caseCheck
	caseDep   bool // PathCaseUnset, and a rule's caseDep
	// managed is every header any provider may set: it is removed from a
	// request wherever jwtauthz does not set it.
	managed    []string
	remove     map[*provider]*removals
	claimNames []string // claims that rules read
	needScopes bool

	public, anonymous Decision
}

func newPolicy(cfg *Config, old *policy, gen uint64, now func() time.Time) (*policy, error) {
	pol := &policy{gen: gen, byIssuer: map[string]*provider{}}
	byName := map[string]*provider{}
	for i, pc := range cfg.Providers {
		p, err := reuseOrBuild(pc, old, cfg.ClockSkew, cfg.NetworkWait, now)
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
		case pol.byIssuer[p.cfg.Issuer] != nil:
			return nil, providerError(i, "issuer %q is also provider %q's", p.cfg.Issuer, pol.byIssuer[p.cfg.Issuer].name)
		default:
			pol.byIssuer[p.cfg.Issuer] = p
		}
		byName[p.name] = p
		pol.providers = append(pol.providers, p)
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
		pol.rules = append(pol.rules, r)
		pol.needScopes = pol.needScopes || len(r.scopes) > 0
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
	for _, p := range pol.providers {
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
	if next.needScopes && !pol.needScopes {
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
func reuseOrBuild(pc ProviderConfig, old *policy, skew, wait time.Duration, now func() time.Time) (*provider, error) {
	if old != nil {
		for _, p := range old.providers {
			if sameProvider(p.cfg, pc) && p.skew == skew && p.wait == wait {
				return p, nil
			}
		}
	}
	return newProvider(pc, skew, wait, now)
}

// sameProvider reports whether two provider configurations are equal, their
// key sources by identity: a running source is never read (DeepEqual
// would race with its fetches).
func sameProvider(a, b ProviderConfig) bool {
	ta, tb := reflect.TypeOf(a.Keys), reflect.TypeOf(b.Keys)
	if ta != tb || ta != nil && (!ta.Comparable() || a.Keys != b.Keys) {
		return false
	}
	a.Keys, b.Keys = nil, nil
	return reflect.DeepEqual(a, b)
}

// collectSources gathers, in order and without repeats, the token sources of
// the providers the rule allows.
func (ru *rule) collectSources() {
	for _, p := range ru.providers {
		for _, s := range p.sources {
			if !slices.Contains(ru.sources, s) {
				ru.sources = append(ru.sources, s)
			}
		}
	}
}

// extract returns the first token found among the rule's sources.
func (ru *rule) extract(r *Request) (string, *TokenSource) {
	for i := range ru.sources {
		if tok := ru.sources[i].extract(r); tok != "" {
			return tok, &ru.sources[i]
		}
	}
	return "", nil
}

// match returns the first rule for r, whose path (cleaned by matchPath) is
// path.
func (pol *policy) match(r *Request, path string) *rule {
	for _, ru := range pol.rules {
		if ru.matches(r, path) {
			return ru
		}
	}
	return pol.fallback
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

// Grant is what the token cache keeps of a verified token: enough to decide
// again and to answer, and nothing from which the token could be rebuilt.
// It is 64 bytes, one allocation with its subject: the identity headers are
// built from it when answering, the key that verified it (kid and key) is
// an index into its provider's table, and only some configurations need
// more (extra).
type Grant struct {
	p      *provider
	until  int64 // the token's exp, or the cache TTL if sooner: Unix nanoseconds
	extra  *grantExtra
	kid    uint16 // the verifying key: an index into p's table of used keys
	full   bool   // the grant sets every header its provider may set
	subLen uint8  // of sub, when inline
	sub    [grantSubLen]byte
}

// grantSubLen is the longest subject kept inline: UUIDs (Entra ID, Cognito,
// Keycloak) and Clerk's user ids fit. A longer one goes to extra.
const grantSubLen = 36

// grantExtra is what only some configurations need: claims that rules read,
// claim and payload headers, the iss of an AnyIssuer provider's token, and a
// subject too long to keep inline.
type grantExtra struct {
	key    *usedKey // the key that verified it, when the provider's table is full
	iss    string
	sub    string
	scopes []string
	claims map[string][]string
	set    []Header
	// remove is removeFor's list for a grant that sets some but not all of
	// its provider's claim and payload headers, made on its first hit under
	// a policy and kept with that policy's generation: a reload that
	// changes the managed headers makes it again, once.
	remove atomic.Pointer[genRemove]
}

type genRemove struct {
	gen   uint64
	names []string
}

// Deadline implements cache.Expiring.
func (g *Grant) Deadline() int64 { return g.until }

// subject returns the sub, "" if absent or unfit for a header. It points
// into the grant, which is never changed: no copy.
func (g *Grant) subject() string {
	if g.subLen > 0 {
		return unsafe.String(&g.sub[0], int(g.subLen))
	}
	if g.extra != nil {
		return g.extra.sub
	}
	return ""
}

// newGrant keeps what the policy needs of verified claims; the grant lasts
// until the token's exp, or until limit if that is sooner.
func (pol *policy) newGrant(p *provider, h header, c *claims, tok string, limit time.Time) *Grant {
	until := limit.UnixNano()
	if c.ExpiresAt.Before(limit) { // compared as times: exp past 2262 overflows UnixNano
		until = c.ExpiresAt.UnixNano()
	}
	g := &Grant{p: p, until: until}
	var x grantExtra
	kid, inTable := p.keyIndex(h.KID, c.key)
	g.kid = kid
	sub := ""
	if headerSafe(c.Subject) {
		sub = c.Subject
	}
	if len(sub) <= grantSubLen {
		g.subLen = uint8(copy(g.sub[:], sub))
	} else {
		x.sub = sub
	}
	set := 1 // x-auth-issuer
	if sub != "" {
		set++
	}
	if p.cfg.AnyIssuer {
		x.iss = c.Issuer
	}
	if pol.needScopes {
		x.scopes = c.Scopes
	}
	if len(pol.claimNames) > 0 {
		x.claims = make(map[string][]string, len(pol.claimNames))
		for _, n := range pol.claimNames {
			x.claims[n] = claimValues(claimAt(c.all, n))
		}
	}
	for _, ch := range p.claimHeaders {
		if v := strings.Join(claimValues(claimAt(c.all, ch.claim)), ","); v != "" && headerSafe(v) {
			x.set = append(x.set, Header{ch.header, v})
		}
	}
	if p.cfg.PayloadHeader != "" {
		_, rest, _ := strings.Cut(tok, ".")
		payload, _, _ := strings.Cut(rest, ".")
		x.set = append(x.set, Header{strings.ToLower(p.cfg.PayloadHeader), strings.Clone(payload)})
	}
	set += len(x.set)
	if x.iss != "" || x.sub != "" || x.scopes != nil || x.claims != nil || x.set != nil || !inTable {
		g.extra = &x
	}
	g.full = set == len(p.headers)
	if !inTable {
		g.extra.key = &usedKey{h.KID, c.key}
	}
	return g
}

// issuer is the verified iss: the provider's, or the token's own for an
// AnyIssuer provider.
func (g *Grant) issuer() string {
	if g.extra != nil && g.extra.iss != "" {
		return g.extra.iss
	}
	return g.p.cfg.Issuer
}

func (g *Grant) scopes() []string {
	if g.extra == nil {
		return nil
	}
	return g.extra.scopes
}

func (g *Grant) claim(name string) []string {
	if g.extra == nil {
		return nil
	}
	return g.extra.claims[name]
}

// headerSafe refuses values unfit for a header: empty, too long, or with
// control characters.
func headerSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return v != "" && len(v) <= 4096
}

// removeFor returns the managed headers g does not set: one of the lists
// made with the policy, or, when g sets some but not all of its provider's
// claim and payload headers, g's own list for this policy.
func (pol *policy) removeFor(g *Grant) []string {
	r := pol.remove[g.p]
	switch {
	case g.full:
		return r.full
	case g.extra == nil || len(g.extra.set) == 0:
		if g.subject() != "" {
			return r.identity
		}
		return r.issuerOnly
	}
	if m := g.extra.remove.Load(); m != nil && m.gen == pol.gen {
		return m.names
	}
	names := []string{HeaderIssuer}
	if g.subject() != "" {
		names = append(names, HeaderSubject)
	}
	for _, h := range g.extra.set {
		names = append(names, h.Name)
	}
	m := &genRemove{pol.gen, without(pol.managed, names)}
	g.extra.remove.Store(m)
	return m.names
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
	if !ru.satisfied(g) {
		d := deny(ReasonInsufficientScope)
		d.Challenge, d.Provider, d.Subject = ru.challenge, g.p.name, g.subject()
		return d
	}
	d := Decision{Allow: true, Reason: ReasonOK, Provider: g.p.name, Subject: g.subject(), Issuer: g.issuer(), Remove: pol.removeFor(g), grant: g}
	if g.extra != nil {
		d.Set = g.extra.set
	}
	if g.p.cfg.DropToken {
		switch {
		case src.Cookie != "":
			d.Cookie, d.CookieSet = withoutCookie(r.header("cookie"), src.Cookie), true
		case src.Query != "":
			d.RemoveQuery = []string{src.Query}
		default:
			d.Remove = append(slices.Clip(d.Remove), src.Header)
		}
	}
	return d
}
