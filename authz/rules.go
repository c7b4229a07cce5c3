package authz

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Action is what a rule does with a matching request.
type Action string

// Actions.
const (
	// ActionRequire needs a valid token (the default).
	ActionRequire Action = "require"
	// ActionOptional lets a request without a token pass; a token that is
	// present must be valid (Envoy jwt_authn's allow_missing).
	ActionOptional Action = "optional"
	// ActionOptionalOrFailed lets a request pass with no token or with one
	// that fails (Envoy jwt_authn's allow_missing_or_failed): identity
	// headers are set only for a valid token, removed otherwise, and the
	// check counts as an allow with the failure's reason (actions.go).
	ActionOptionalOrFailed Action = "optional_or_failed"
	// ActionAllow lets every request pass; a token is not even read.
	ActionAllow Action = "allow"
)

// Match selects requests. Empty fields match everything; a rule with an
// empty Match matches every request.
type Match struct {
	Hosts      []string `yaml:"hosts"` // exact, or "*.example.com"; the port is ignored
	Path       string   `yaml:"path"`
	PathPrefix string   `yaml:"path_prefix"`
	PathRegex  string   `yaml:"path_regex"` // RE2, matched against the whole path
	Methods    []string `yaml:"methods"`
	// When is a CEL expression over request alone (request.method, .host,
	// .path, .query, .headers): the rule matches only if its other fields
	// match and When is true. An error in it denies the request,
	// condition_failed.
	When string `yaml:"when"`
}

// Require is what a valid token must also have.
type Require struct {
	Providers []string          `yaml:"providers"` // empty: any provider
	Scopes    []string          `yaml:"scopes"`    // all of them
	Claims    map[string]string `yaml:"claims"`    // equal, or a member of an array claim
	// When is a CEL expression over claims, scopes, provider and request,
	// evaluated once the token is valid and the scopes and claims above
	// hold: anything but true (false, an error, a cost over
	// ConditionCostLimit) is a 403, condition_failed.
	When string `yaml:"when"`
}

// RuleConfig is one route rule. Rules are tried in order; the first that
// matches decides.
type RuleConfig struct {
	Match   Match   `yaml:"match"`
	Action  Action  `yaml:"action"`
	Require Require `yaml:"require"`
}

type rule struct {
	hosts     []string
	path      string
	prefix    string
	re        *regexp.Regexp
	methods   []string
	action    Action
	providers []*provider // allowed; all providers when the rule names none
	sources   []TokenSource
	scopes    []string
	claims    [][2]string // name, value
	// scopeDenials and claimDenials are the denials for a missing scope
	// or claim, by index in scopes and claims (prepareDenials).
	scopeDenials, claimDenials []*denial
	// fpath, fprefix and fre match a folded path (foldPath): path and
	// prefix folded, re with (?i). caseDep says that on a path folding
	// leaves as it is they may match otherwise than path, prefix and re.
	fpath, fprefix string
	fre            *regexp.Regexp
	caseDep        bool
	// num is the rule's index in the configuration plus one: 0 for the
	// fallback that applies where no rule matches (Decision.Rule).
	num int32
	// when is require.when, and whenDenial its denial; matchWhen is
	// match.when, and whenFailed the rule a request selects whose
	// match.when fails (an error, a cost over the limit): a copy of this
	// one that denies it, failDenial.
	when, matchWhen *condition
	whenDenial      *denial
	whenFailed      *rule
	failDenial      *denial
}

func newRule(i int, rc RuleConfig, byName map[string]*provider, all []*provider) (*rule, error) {
	r := &rule{
		path: rc.Match.Path, prefix: rc.Match.PathPrefix, action: rc.Action,
		scopes: rc.Require.Scopes, providers: all,
	}
	if r.action == "" {
		r.action = ActionRequire
	}
	switch r.action {
	case ActionRequire, ActionOptional, ActionOptionalOrFailed, ActionAllow:
	default:
		return nil, ruleError(i, "action", "%q is not one of require, optional, optional_or_failed, allow", rc.Action)
	}
	if rc.Match.PathRegex != "" {
		// The pattern alone first: ^(?:a)|(.*)$ compiles, and matches all.
		_, err := regexp.Compile(rc.Match.PathRegex)
		re, err2 := regexp.Compile(`^(?:` + rc.Match.PathRegex + `)$`)
		if err != nil || err2 != nil {
			return nil, ruleError(i, "match.path_regex", "%q: %w", rc.Match.PathRegex, cmp.Or(err, err2))
		}
		r.re = re
	}
	for j, h := range rc.Match.Hosts {
		if !hostPattern(h) {
			return nil, ruleError(i, fmt.Sprintf("match.hosts[%d]", j), "%q is not a host name or *. and a domain (without a port)", h)
		}
		r.hosts = append(r.hosts, strings.ToLower(bareHost(h))) // as matchHost reads the request's
	}
	for _, m := range rc.Match.Methods {
		r.methods = append(r.methods, strings.ToUpper(m))
	}
	for _, p := range [...]struct{ key, v string }{{"path", rc.Match.Path}, {"path_prefix", rc.Match.PathPrefix}} {
		if p.v != "" && (!strings.HasPrefix(p.v, "/") || strings.ContainsAny(p.v, "?#;")) {
			return nil, ruleError(i, "match."+p.key, "%q must start with / and hold no ?, # or ; (rules match the path without its query)", p.v)
		}
	}
	if r.action == ActionAllow && (len(rc.Require.Providers) > 0 || len(rc.Require.Scopes) > 0 || len(rc.Require.Claims) > 0 || rc.Require.When != "") {
		return nil, ruleError(i, "", "action allow takes no require (it lets every request pass)")
	}
	if len(rc.Require.Providers) > 0 {
		r.providers = nil
		for _, n := range rc.Require.Providers {
			p, ok := byName[n]
			if !ok {
				return nil, ruleError(i, "require.providers", "no provider named %q", n)
			}
			r.providers = append(r.providers, p)
		}
	}
	for name, v := range rc.Require.Claims {
		r.claims = append(r.claims, [2]string{name, v})
	}
	slices.SortFunc(r.claims, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	if err := r.prepareDenials(i); err != nil {
		return nil, err
	}
	if err := r.compileConditions(i, rc); err != nil {
		return nil, err
	}
	return r, nil
}

// hostPattern reports whether h is a host name (or an IP address), *. and
// a domain, or * alone: without a port, a path or any other *.
func hostPattern(h string) bool {
	if h == "*" {
		return true // any host, as no hosts at all
	}
	d := strings.TrimPrefix(h, "*.")
	if d == "" || strings.HasPrefix(d, ".") || strings.ContainsAny(d, "*/?#@ ") {
		return false
	}
	if strings.HasPrefix(d, "[") {
		return h == d && len(d) > 2 && strings.HasSuffix(d, "]") && !strings.ContainsAny(d[1:len(d)-1], "[]")
	}
	return !strings.Contains(d, ":")
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

// matches reports whether the rule applies to r, whose path matchPath
// cleaned is path (matchesFolded is its twin for a folded path).
func (ru *rule) matches(r *Request, path string) bool {
	if len(ru.methods) > 0 && !ru.matchMethod(r.Method) {
		return false
	}
	if len(ru.hosts) > 0 && !ru.matchHost(r.Host) {
		return false
	}
	switch {
	case ru.path != "" && path != ru.path:
		return false
	case ru.prefix != "" && !strings.HasPrefix(path, ru.prefix):
		return false
	case ru.re != nil && !ru.re.MatchString(path):
		return false
	}
	return true
}

// matchesFolded is matches for a folded path, with the rule's folded
// patterns.
func (ru *rule) matchesFolded(r *Request, path string) bool {
	if len(ru.methods) > 0 && !ru.matchMethod(r.Method) {
		return false
	}
	if len(ru.hosts) > 0 && !ru.matchHost(r.Host) {
		return false
	}
	switch {
	case ru.fpath != "" && path != ru.fpath:
		return false
	case ru.fprefix != "" && !strings.HasPrefix(path, ru.fprefix):
		return false
	case ru.fre != nil && !ru.fre.MatchString(path):
		return false
	}
	return true
}

// matchMethod matches the request's method without case, as many servers
// read it.
func (ru *rule) matchMethod(m string) bool {
	for _, want := range ru.methods {
		if strings.EqualFold(want, m) {
			return true
		}
	}
	return false
}

// matchHost matches the request's authority as bareHost leaves it.
func (ru *rule) matchHost(host string) bool {
	host = bareHost(host)
	for _, want := range ru.hosts {
		if suffix, ok := strings.CutPrefix(want, "*"); ok {
			if len(host) > len(suffix) && hasSuffixFold(host, suffix) {
				return true
			}
		} else if strings.EqualFold(host, want) {
			return true
		}
	}
	return false
}

// bareHost is an authority without its port, IPv6 brackets and a final
// dot (api.example.com. is api.example.com), without allocating.
func bareHost(host string) string { return strings.TrimSuffix(stripPort(host), ".") }

// stripPort drops a :port from an authority without allocating.
func stripPort(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
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

func (ru *rule) allows(p *provider) bool {
	for _, q := range ru.providers {
		if q == p {
			return true
		}
	}
	return false
}

// unmet returns the prepared denial of the first scope or claim the rule
// requires that g lacks, or nil if g has them all.
func (ru *rule) unmet(g *Grant) *denial {
	for i, s := range ru.scopes {
		if !slices.Contains(g.scopes(), s) {
			return ru.scopeDenials[i]
		}
	}
	for i, c := range ru.claims {
		if !slices.Contains(g.claim(c[0]), c[1]) {
			return ru.claimDenials[i]
		}
	}
	return nil
}
