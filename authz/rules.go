package authz

import (
	"cmp"
	"fmt"
	"net/url"
	pathpkg "path"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
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
}

// Require is what a valid token must also have.
type Require struct {
	Providers []string          `yaml:"providers"` // empty: any provider
	Scopes    []string          `yaml:"scopes"`    // all of them
	Claims    map[string]string `yaml:"claims"`    // equal, or a member of an array claim
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
	// challenge is the WWW-Authenticate of a denial for insufficient scope.
	challenge string
	// fpath, fprefix and fre match a folded path (foldPath): path and
	// prefix folded, re with (?i). caseDep says that on a path folding
	// leaves as it is they may match otherwise than path, prefix and re.
	fpath, fprefix string
	fre            *regexp.Regexp
	caseDep        bool
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
	case ActionRequire, ActionOptional, ActionAllow:
	default:
		return nil, ruleError(i, "action", "%q is not one of require, optional, allow", rc.Action)
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
	if r.action == ActionAllow && (len(rc.Require.Providers) > 0 || len(rc.Require.Scopes) > 0 || len(rc.Require.Claims) > 0) {
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
	r.challenge = challenges[ReasonInsufficientScope]
	if len(r.scopes) > 0 {
		r.challenge = `Bearer realm="` + Realm + `", error="insufficient_scope", scope="` + strings.Join(r.scopes, " ") + `"`
	} else {
		r.challenge = `Bearer realm="` + Realm + `", error="insufficient_scope"`
	}
	return r, nil
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

// matchPath returns the path rules match: without its query, with
// percent-escapes decoded, dot segments resolved and repeated slashes
// merged, as a normalising upstream will read it (so that /public/../admin
// is /admin). ok is false for a path servers do not all read alike: a #
// (a fragment never reaches a server: a client or proxy that sends one
// parses the target otherwise than the upstream, which cuts the path
// there; after the ? it cannot change the path, and is left alone), an
// encoded slash, backslash, NUL, ? or #, a backslash, a semicolon (Java
// servers cut ;params out of each segment: /public/..;/admin is their
// /admin), a bad escape, an escape left after decoding (%252e is %2e once
// decoded, and . to an upstream that decodes twice), or dot segments in a
// path that is not absolute. When the dot segments or slashes changed the
// path, alt is it decoded but as it came: what an upstream that does not
// resolve them reads (the caller checks that it selects the same rule).
// fold says that path or alt holds an upper-case letter or a non-ASCII
// rune, which folding may change. A plain path costs nothing.
func matchPath(raw string) (path, alt string, fold, ok bool) {
	path, _, _ = strings.Cut(raw, "?")
	look, fold := scanPath(path)
	if !look {
		return path, "", fold, true
	}
	if strings.ContainsAny(path, "\\\x00;#") || !strings.HasPrefix(path, "/") {
		return "", "", false, false
	}
	lower := strings.ToLower(path)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%00") {
		return "", "", false, false
	}
	dec, err := url.PathUnescape(path)
	bad, fold := checkDecoded(dec)
	if err != nil || bad {
		return "", "", false, false
	}
	clean := pathpkg.Clean(dec)
	// RFC 3986's remove_dot_segments keeps the slash of a last segment that
	// is empty, "." or "..": /a/b/.. is /a/, where Clean says /a.
	if (strings.HasSuffix(dec, "/") || strings.HasSuffix(dec, "/.") || strings.HasSuffix(dec, "/..")) && clean != "/" {
		clean += "/"
	}
	if clean != dec {
		alt = dec
	}
	return clean, alt, fold, true
}

// scanPath reports, in one pass, whether p holds an escape, a backslash, a
// semicolon, a #, a NUL, a repeated slash or a dot segment (look: matchPath
// must look closer), and if not, whether it holds a byte folding may change.
func scanPath(p string) (look, fold bool) {
	for i := 0; i < len(p); i++ {
		k := pathBytes[p[i]]
		if k == 0 {
			continue
		}
		switch k {
		case byteSlash:
			rest := p[i+1:]
			if strings.HasPrefix(rest, "/") || rest == "." || rest == ".." ||
				strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") {
				return true, false
			}
		case byteLook:
			return true, false
		case byteFold:
			fold = true
		}
	}
	return false, fold
}

// Kinds of path bytes, for scanPath and checkDecoded; most are 0.
const (
	byteSlash = 1 + iota
	byteLook  // %, \, ;, #, ?, NUL
	byteFold  // an upper-case ASCII letter, a byte of a multi-byte rune
)

var pathBytes = func() (t [256]uint8) {
	t['/'] = byteSlash
	for _, c := range "%\\;#?\x00" {
		t[c] = byteLook
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byteFold
	}
	for c := utf8.RuneSelf; c < len(t); c++ {
		t[c] = byteFold
	}
	return t
}()

// checkDecoded reports whether dec, a path decoded once, holds what
// servers read apart (bad): a backslash, a NUL, a ;, ? or #, or an escape
// still (a % and two hex digits: an upstream that decodes twice reads
// another path); and if not, whether it holds a byte folding may change.
func checkDecoded(dec string) (bad, fold bool) {
	for i := 0; i < len(dec); i++ {
		switch pathBytes[dec[i]] {
		case byteLook:
			if dec[i] != '%' || i+2 < len(dec) && hexDigit(dec[i+1]) && hexDigit(dec[i+2]) {
				return true, false
			}
		case byteFold:
			fold = true
		}
	}
	return false, fold
}

func hexDigit(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f' }

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

func (ru *rule) allows(p *provider) bool {
	for _, q := range ru.providers {
		if q == p {
			return true
		}
	}
	return false
}

// satisfied reports whether g has every scope and claim the rule requires.
func (ru *rule) satisfied(g *Grant) bool {
	for _, s := range ru.scopes {
		if !slices.Contains(g.scopes(), s) {
			return false
		}
	}
	for _, c := range ru.claims {
		if !slices.Contains(g.claim(c[0]), c[1]) {
			return false
		}
	}
	return true
}
