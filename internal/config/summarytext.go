package config

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/jwtauthz/jwtauthz/authz"
)

// WriteText writes s for people: `config ok` on the first line (what
// scripts look for), then one aligned line per setting.
func (s Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	line("config ok")
	if s.File != "" {
		line("file\t%s", s.File)
	}
	line("listeners")
	for _, l := range []struct {
		name string
		l    *SummaryListener
	}{{"grpc", s.Listeners.GRPC}, {"http", s.Listeners.HTTP}, {"admin", s.Listeners.Admin}} {
		switch {
		case l.l == nil:
			line("  %s\toff", l.name)
		case l.l.TLS == "off":
			line("  %s\t%s", l.name, l.l.Address)
		default:
			line("  %s\t%s (%s)", l.name, l.l.Address, l.l.TLS)
		}
	}
	for _, p := range s.Providers {
		line("provider %s", p.Name)
		issuer := p.Issuer
		if p.AnyIssuer {
			issuer = "any (the key set is the instance's alone)"
		}
		line("  issuer\t%s", issuer)
		switch {
		case slices.Equal(p.Tenants, []string{authz.AnyTenant}):
			line("  tenants\tany (every tenant of the IdP, which anyone can create: only audiences and rules restrict them)")
		case len(p.Tenants) > 0:
			line("  tenants\t%s", strings.Join(p.Tenants, ", "))
		}
		keys := p.Keys.Source + " " + p.Keys.Location
		if len(p.Keys.Headers) > 0 {
			keys += " (headers " + strings.Join(p.Keys.Headers, ", ") + ")"
		}
		if p.Introspection != nil {
			line("  introspection\t%s", p.Introspection)
		} else {
			line("  keys\t%s", keys)
		}
		line("  audiences\t%s", listOr(p.Audiences, "not checked"))
		if p.Introspection == nil { // the endpoint, not jwtauthz, checks an introspected token's signature
			line("  algorithms\t%s", strings.Join(p.Algorithms, ", "))
		}
		var srcs []string
		for _, t := range p.TokenSources {
			srcs = append(srcs, t.String())
		}
		line("  token sources\t%s", strings.Join(srcs, "; "))
		if !p.ForwardToken {
			line("  forward token\tno: removed before the request goes upstream")
		}
		if len(p.ClaimHeaders) > 0 {
			line("  claim headers\t%s", pairs(p.ClaimHeaders, ": "))
		}
		if p.PayloadHeader != "" {
			line("  payload header\t%s", p.PayloadHeader)
		}
		if len(p.AuthorizedParties) > 0 {
			line("  authorized parties\t%s", strings.Join(p.AuthorizedParties, ", "))
		}
		switch {
		case !p.Metadata:
			line("  metadata\toff: no dynamic metadata")
		case len(p.MetadataClaims) > 0:
			line("  metadata\tsub, iss, provider, %s", strings.Join(p.MetadataClaims, ", "))
		}
		p.writeChecks(line)
	}
	line("rules (the first that matches decides)")
	for _, r := range s.Rules {
		line("  %d\t%s\t%s", r.Index, r.Match, r.describe())
	}
	line("  -\tany other request\trequire a token from any provider")
	line("cache")
	line("  tokens\t%s", cacheText(s.Cache.TokenTTL, s.Cache.TokenSize))
	line("  rejected tokens\t%s", cacheText(s.Cache.NegativeTTL, s.Cache.NegativeSize))
	line("  dedup\t%s", cacheText(s.Cache.DedupWindow, s.Cache.DedupSize))
	line("  max token size\t%d bytes", s.Cache.MaxTokenSize)
	if sc := s.SharedCache; sc != nil {
		line("  shared (introspection verdicts)\t%s, %d key(s) from %s, timeout %s", sc.URL, sc.Keys, sc.KeyFile, sc.Timeout)
	}
	line("path_case\t%s", s.PathCase)
	line("cors_preflight\t%s", s.CORSPreflight)
	line("network_wait\t%s", s.NetworkWait)
	line("clock_skew\t%s", s.ClockSkew)
	return tw.Flush()
}

// String is the token source as the text summary shows it.
func (t SummaryTokenSource) String() string {
	switch {
	case t.Cookie != "":
		return "cookie " + t.Cookie
	case t.Query != "":
		return "query " + t.Query
	case t.Prefix != "":
		return fmt.Sprintf("header %s %q", t.Header, t.Prefix)
	}
	return "header " + t.Header
}

// String is what the rule matches, as the text summary shows it.
func (m SummaryMatch) String() string {
	var parts []string
	if len(m.Hosts) > 0 {
		parts = append(parts, "hosts "+strings.Join(m.Hosts, ", "))
	}
	if len(m.Methods) > 0 {
		parts = append(parts, "methods "+strings.Join(m.Methods, ", "))
	}
	for _, p := range [...][2]string{{"path", m.Path}, {"path_prefix", m.PathPrefix}, {"path_regex", m.PathRegex}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+p[1])
		}
	}
	if m.When != "" {
		parts = append(parts, "when "+oneLine(m.When))
	}
	if len(parts) == 0 {
		return "every request"
	}
	return strings.Join(parts, "; ")
}

func (r SummaryRule) describe() string {
	if r.Action == string(authz.ActionAllow) {
		return "allow, no token read"
	}
	d := r.Action + " a token from " + strings.Join(r.Requires.Providers, ", ")
	switch authz.Action(r.Action) {
	case authz.ActionOptional:
		d = "optional: none, or a valid one from " + strings.Join(r.Requires.Providers, ", ")
	case authz.ActionOptionalOrFailed:
		d = "optional_or_failed: any, identity headers only for a valid one from " + strings.Join(r.Requires.Providers, ", ")
	}
	if len(r.Requires.Scopes) > 0 {
		d += "; scopes " + strings.Join(r.Requires.Scopes, ", ")
	}
	if len(r.Requires.Claims) > 0 {
		d += "; claims " + pairs(r.Requires.Claims, "=")
	}
	if r.Requires.When != "" {
		d += "; when " + oneLine(r.Requires.When)
	}
	return d
}

// oneLine is a condition written over several lines on one.
func oneLine(expr string) string { return strings.Join(strings.Fields(expr), " ") }

func listOr(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	return strings.Join(l, ", ")
}

func pairs(m map[string]string, sep string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+sep+m[k])
	}
	return strings.Join(out, ", ")
}

func cacheText(ttl string, size int) string {
	if size == 0 {
		return "off"
	}
	return fmt.Sprintf("%d entries, %s each at most", size, ttl)
}

// writeChecks writes the provider's token checks that are set: a line
// left out means not checked.
func (p SummaryProvider) writeChecks(line func(string, ...any)) {
	if p.RequiredTyp != "" {
		line("  required typ\t%s", p.RequiredTyp)
	}
	if p.MaxLifetime != "" {
		line("  max lifetime\t%s (exp - iat, or exp - now without iat)", p.MaxLifetime)
	}
	if s := p.Subjects; s != nil {
		var alts []string
		if len(s.Exact) > 0 {
			alts = append(alts, "exactly "+strings.Join(s.Exact, ", "))
		}
		if len(s.Prefix) > 0 {
			alts = append(alts, "starting with "+strings.Join(s.Prefix, ", "))
		}
		if s.Regex != "" {
			alts = append(alts, "matching "+s.Regex)
		}
		line("  subjects\t%s", strings.Join(alts, "; or "))
	}
}
