package authz

import (
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

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
	cel    *celGrant // the CEL values the policy's require.when read
	set    []Header
	meta   *Metadata // its own metadata: the provider's metadata claims it carries
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
	iss := ""
	if p.keepsIss { // AnyIssuer, or an issuer template's tenant
		iss = c.Issuer
	}
	var payload string
	if p.cfg.PayloadHeader != "" {
		_, rest, _ := strings.Cut(tok, ".")
		payload, _, _ = strings.Cut(rest, ".")
	}
	pol.keep(g, &x, c, iss, payload, !inTable)
	if !inTable {
		g.extra.key = &usedKey{h.KID, c.key}
	}
	return g
}

// keep fills g, and x if g needs it (g.extra), with what the policy needs
// of c, verified claims: the subject, iss (if not the provider's), the
// scopes and claims the rules and conditions read, the claim headers, the
// payload header's value (payload), and the metadata claims. With
// needExtra, g keeps x whatever it holds (newGrant's, for a key not in its
// provider's table).
func (pol *policy) keep(g *Grant, x *grantExtra, c *claims, iss, payload string, needExtra bool) {
	p := g.p
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
	x.iss = iss
	if pol.needScopes {
		x.scopes = c.Scopes
	}
	if len(pol.claimNames) > 0 {
		x.claims = make(map[string][]string, len(pol.claimNames))
		for _, n := range pol.claimNames {
			x.claims[n] = claimValues(claimAt(c.all, n))
		}
	}
	x.cel = newCELGrant(&pol.cel, pol.gen, p, c.all, c.Scopes)
	for _, ch := range p.claimHeaders {
		if v := strings.Join(claimValues(claimAt(c.all, ch.claim)), ","); v != "" && headerSafe(v) {
			x.set = append(x.set, Header{ch.header, v})
		}
	}
	if p.cfg.PayloadHeader != "" {
		x.set = append(x.set, Header{strings.ToLower(p.cfg.PayloadHeader), strings.Clone(payload)})
	}
	set += len(x.set)
	if p.meta != nil && len(p.meta.claims) > 0 {
		if m := p.meta.forClaims(c.all); m != p.meta.allow {
			x.meta = m
		}
	}
	if x.iss != "" || x.sub != "" || x.scopes != nil || x.claims != nil || x.cel != nil || x.set != nil || x.meta != nil || needExtra {
		g.extra = x
	}
	g.full = set == len(p.headers)
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
