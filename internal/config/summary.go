package config

import (
	"cmp"
	"encoding/json"
	"io"
	"maps"
	"net/url"
	"slices"
	"time"

	"github.com/jwtauthz/jwtauthz/authz"
)

// Summary is what a configuration resolves to, as `serve --check-config`
// prints it (-o json: this as JSON). It holds no secret: of the Clerk
// secret key and jwks_headers, only the header names; of a URL, neither a
// password nor the query's values.
type Summary struct {
	File      string            `json:"file"` // the config file, "" if none
	Listeners SummaryListeners  `json:"listeners"`
	Providers []SummaryProvider `json:"providers"`
	Rules     []SummaryRule     `json:"rules"` // in order: the first that matches decides
	Cache     SummaryCache      `json:"cache"`
	PathCase  string            `json:"path_case"` // sensitive, insensitive or unset
	// CORSPreflight is allow (a CORS preflight passes before any rule) or off.
	CORSPreflight string              `json:"cors_preflight"`
	NetworkWait   string              `json:"network_wait"`
	ClockSkew     string              `json:"clock_skew"`
	SharedCache   *SummarySharedCache `json:"shared_cache"` // null: none
}

// SummaryListeners are the three listeners; a disabled one is nil (null).
type SummaryListeners struct {
	GRPC  *SummaryListener `json:"grpc"`
	HTTP  *SummaryListener `json:"http"`
	Admin *SummaryListener `json:"admin"`
}

// SummaryListener is one listener.
type SummaryListener struct {
	Address string `json:"address"`
	TLS     string `json:"tls"` // off, tls, or mtls (client certificates required)
}

// SummaryProvider is one provider, in the order tokens' issuers are
// matched against them.
type SummaryProvider struct {
	Name              string               `json:"name"`
	Issuer            string               `json:"issuer"`     // "" with any_issuer
	AnyIssuer         bool                 `json:"any_issuer"` // the Clerk preset with the secret key alone
	Keys              SummaryKeys          `json:"keys"`
	Audiences         []string             `json:"audiences"` // empty: aud not checked
	Algorithms        []string             `json:"algorithms"`
	ClaimHeaders      map[string]string    `json:"claim_headers"` // header: claim
	PayloadHeader     string               `json:"payload_header"`
	TokenSources      []SummaryTokenSource `json:"token_sources"`
	ForwardToken      bool                 `json:"forward_token"`
	AuthorizedParties []string             `json:"authorized_parties"` // empty: azp not checked
	// Metadata says whether checks tell Envoy dynamic metadata, and
	// MetadataClaims the claims an allow adds to sub, iss and provider.
	Metadata       bool     `json:"metadata"`
	MetadataClaims []string `json:"metadata_claims"`
	// The token checks, each left out when not set: the tenants of an
	// issuer template (["*"]: every tenant), the typ required, the longest
	// lifetime, the accepted subjects.
	Tenants     []string         `json:"tenants,omitempty"`
	RequiredTyp string           `json:"required_typ,omitempty"`
	MaxLifetime string           `json:"max_lifetime,omitempty"`
	Subjects    *SummarySubjects `json:"subjects,omitempty"`

	// Introspection is an introspection provider's endpoint and client,
	// never its secret; left out for a JWT provider.
	Introspection *SummaryIntrospection `json:"introspection,omitempty"`
}

// SummarySubjects are the sub values a provider accepts: any of exact, one
// starting with a prefix, or one regex matches whole.
type SummarySubjects struct {
	Exact  []string `json:"exact,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
	Regex  string   `json:"regex,omitempty"`
}

// SummaryKeys says where a provider's keys come from.
type SummaryKeys struct {
	Source   string   `json:"source"`   // url, discovery or file
	Location string   `json:"location"` // the JWKS URL, the discovery document's URL, or the file
	Headers  []string `json:"headers"`  // names of the headers sent with the fetch (jwks_headers), never their values
}

// SummaryTokenSource is where a token is looked for: one of header (with
// its prefix), cookie, query.
type SummaryTokenSource struct {
	Header string `json:"header,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Cookie string `json:"cookie,omitempty"`
	Query  string `json:"query,omitempty"`
}

// SummaryRule is one rule.
type SummaryRule struct {
	Index    int             `json:"index"`
	Match    SummaryMatch    `json:"match"`
	Action   string          `json:"action"` // require, optional or allow
	Requires SummaryRequires `json:"requires"`
}

// SummaryMatch is what a rule matches; an empty field matches everything.
type SummaryMatch struct {
	Hosts      []string `json:"hosts,omitempty"`
	Methods    []string `json:"methods,omitempty"`
	Path       string   `json:"path,omitempty"`
	PathPrefix string   `json:"path_prefix,omitempty"`
	PathRegex  string   `json:"path_regex,omitempty"` // matched against the whole path
	When       string   `json:"when,omitempty"`       // a CEL condition on the request
}

// SummaryRequires is what a token must have on the rule's route: from
// one of the providers, with every scope and claim. Empty for allow.
type SummaryRequires struct {
	Providers []string          `json:"providers"`
	Scopes    []string          `json:"scopes"`
	Claims    map[string]string `json:"claims"`
	When      string            `json:"when,omitempty"` // a CEL condition on the token and request
}

// SummaryCache are the caches' limits in effect (a cache one of whose
// two limits is 0 is off, and shows both at 0).
type SummaryCache struct {
	TokenTTL     string `json:"token_ttl"`
	TokenSize    int    `json:"token_size"`
	NegativeTTL  string `json:"negative_ttl"`
	NegativeSize int    `json:"negative_size"`
	DedupWindow  string `json:"dedup_window"`
	DedupSize    int    `json:"dedup_size"`
	MaxTokenSize int    `json:"max_token_size"`
}

// Summary returns what c resolves to. Call it on a configuration Check
// passed.
func (c *Config) Summary() Summary {
	ac := c.EngineConfig(nil)
	s := Summary{
		File:          c.path,
		Listeners:     c.listeners(),
		Providers:     []SummaryProvider{},
		Rules:         []SummaryRule{},
		PathCase:      cmp.Or(c.PathCase, "unset"),
		CORSPreflight: cmp.Or(c.CORSPreflight, "off"),
		NetworkWait:   ac.NetworkWait.String(),
		ClockSkew:     ac.ClockSkew.String(),
		SharedCache:   c.sharedCacheSummary(),
	}
	var names []string
	for _, p := range c.AllProviders() {
		s.Providers = append(s.Providers, summarizeProvider(p))
		names = append(names, p.Name)
	}
	for i, r := range c.Rules {
		s.Rules = append(s.Rules, summarizeRule(i, r, names))
	}
	// As authz.Config says: a cache one of whose limits is 0 is off.
	off := func(d time.Duration, n int) (string, int) {
		if d == 0 || n == 0 {
			return "0s", 0
		}
		return d.String(), n
	}
	s.Cache.TokenTTL, s.Cache.TokenSize = off(ac.CacheTTL, ac.CacheSize)
	s.Cache.NegativeTTL, s.Cache.NegativeSize = off(ac.NegativeTTL, ac.NegativeCacheSize)
	s.Cache.DedupWindow, s.Cache.DedupSize = off(ac.DedupWindow, ac.DedupSize)
	s.Cache.MaxTokenSize = ac.MaxTokenSize
	return s
}

func (c *Config) listeners() SummaryListeners {
	tls := "off"
	switch {
	case c.TLSClientCA != "":
		tls = "mtls"
	case c.TLSCert != "":
		tls = "tls"
	}
	l := func(addr, tls string) *SummaryListener {
		if addr == "" {
			return nil
		}
		return &SummaryListener{Address: addr, TLS: tls}
	}
	return SummaryListeners{GRPC: l(c.GRPCAddr, tls), HTTP: l(c.HTTPAddr, tls), Admin: l(c.AdminAddr, "off")}
}

func summarizeProvider(p ProviderConfig) SummaryProvider {
	sp := SummaryProvider{
		Name: p.Name, Issuer: p.Issuer, AnyIssuer: p.anyIssuer,
		Audiences: orEmpty(p.Audiences), Algorithms: orEmpty(p.Algorithms),
		ClaimHeaders: map[string]string{}, PayloadHeader: p.PayloadHeader,
		ForwardToken: p.ForwardToken == nil || *p.ForwardToken, AuthorizedParties: orEmpty(p.AuthorizedParties),
	}
	maps.Copy(sp.ClaimHeaders, p.ClaimHeaders)
	sp.Metadata, sp.MetadataClaims = p.Metadata == nil || *p.Metadata, orEmpty(p.MetadataClaims)
	sp.Tenants, sp.RequiredTyp = p.Tenants, p.RequiredTyp
	if p.MaxLifetime > 0 {
		sp.MaxLifetime = p.MaxLifetime.String()
	}
	if s := p.Subjects; !s.IsZero() {
		sp.Subjects = &SummarySubjects{Exact: s.Exact, Prefix: s.Prefix, Regex: s.Regex}
	}
	switch {
	case p.Introspection.Set():
		sp.Introspection = summarizeIntrospection(p)
		sp.Algorithms = []string{}
		sp.Keys = SummaryKeys{Source: "none", Location: "introspection"}
	case p.JWKSFile != "":
		sp.Keys = SummaryKeys{Source: "file", Location: p.JWKSFile}
	case p.JWKSURL != "":
		sp.Keys = SummaryKeys{Source: "url", Location: redactURL(p.JWKSURL)}
	default: // as jwks discovers it
		sp.Keys = SummaryKeys{Source: "discovery", Location: redactURL(p.discoveryURL())}
	}
	sp.Keys.Headers = slices.Sorted(maps.Keys(p.JWKSHeaders))
	if sp.Keys.Headers == nil {
		sp.Keys.Headers = []string{}
	}
	sources := p.TokenSources
	if len(sources) == 0 {
		sources = []authz.TokenSource{authz.BearerSource} // as authz defaults them
	}
	for _, t := range sources {
		sp.TokenSources = append(sp.TokenSources, SummaryTokenSource{Header: t.Header, Prefix: t.Prefix, Cookie: t.Cookie, Query: t.Query})
	}
	return sp
}

// redactURL hides what a URL may carry of a secret: the password of its
// user info and the values of its query.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(not a URL)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

func summarizeRule(i int, r authz.RuleConfig, all []string) SummaryRule {
	sr := SummaryRule{
		Index: i,
		Match: SummaryMatch{Hosts: r.Match.Hosts, Methods: r.Match.Methods, Path: r.Match.Path,
			PathPrefix: r.Match.PathPrefix, PathRegex: r.Match.PathRegex, When: r.Match.When},
		Action:   string(cmp.Or(r.Action, authz.ActionRequire)),
		Requires: SummaryRequires{Providers: []string{}, Scopes: orEmpty(r.Require.Scopes), Claims: map[string]string{}},
	}
	if sr.Action != string(authz.ActionAllow) {
		sr.Requires.Providers = orEmpty(r.Require.Providers)
		if len(r.Require.Providers) == 0 {
			sr.Requires.Providers = slices.Clone(all) // any provider
		}
	}
	maps.Copy(sr.Requires.Claims, r.Require.Claims)
	sr.Requires.When = r.Require.When
	return sr
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// WriteJSON writes s as one indented JSON object (the shape
// docs/configuration.md shows), and nothing else.
func (s Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}
