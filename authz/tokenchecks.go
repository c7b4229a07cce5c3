package authz

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// SubjectMatch lists the sub values a provider accepts (Envoy jwt_authn's
// subjects): a token passes if its sub equals one of Exact, starts with
// one of Prefix, or matches Regex (RE2, against the whole sub). The zero
// SubjectMatch checks nothing; an empty string among them is an error.
type SubjectMatch struct {
	Exact  []string `yaml:"exact"`
	Prefix []string `yaml:"prefix"`
	Regex  string   `yaml:"regex"`
}

// IsZero reports whether m names no subject: sub is then not checked.
func (m SubjectMatch) IsZero() bool {
	return len(m.Exact) == 0 && len(m.Prefix) == 0 && m.Regex == ""
}

// CompileSubjectRegex compiles a subjects regex as providers match it:
// RE2 against the whole sub.
func CompileSubjectRegex(re string) (*regexp.Regexp, error) {
	if re == "" {
		return nil, errors.New("must not be empty")
	}
	if _, err := regexp.Compile(re); err != nil { // the error of the pattern as written
		return nil, err
	}
	return regexp.Compile(`^(?:` + re + `)$`)
}

// CheckRequiredTyp refuses a RequiredTyp that no token could carry: it
// must be a media type name (RFC 6838's characters), with or without
// "application/".
func CheckRequiredTyp(typ string) error {
	rest := typ
	if sub, ok := strings.CutPrefix(strings.ToLower(typ), "application/"); ok {
		rest = sub
	}
	if rest == "" {
		return fmt.Errorf("%q is not a media type", typ)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&^_.+-", c) >= 0) {
			return fmt.Errorf("%q is not a media type such as at+jwt", typ)
		}
	}
	return nil
}

// normalTyp is a typ as RFC 7515 §4.1.9 compares it: without case, and
// without "application/" when no other '/' follows.
func normalTyp(typ string) string {
	if len(typ) > len("application/") && strings.EqualFold(typ[:len("application/")], "application/") && !strings.Contains(typ[len("application/"):], "/") {
		typ = typ[len("application/"):]
	}
	return typ
}

// checkFailure is a failed token check: its denial, prepared once per
// provider, names what failed and nothing of the token.
type checkFailure struct{ dn *denial }

func (f *checkFailure) Error() string { return f.dn.reason.String() }

// tokenChecks are a provider's optional checks of a verified token. A
// provider that sets none has none (nil): its checks cost nothing.
type tokenChecks struct {
	typ         string        // normalTyp of RequiredTyp; "": not checked
	maxLifetime time.Duration // 0: not checked
	skew        time.Duration
	now         func() time.Time
	exact       []string
	prefix      []string
	regex       *regexp.Regexp
	subjects    bool // Subjects is set
	tenants     *tenantTemplate

	wrongTyp, tooLong, wrongSub, tidMissing, tidWrong *checkFailure
}

// newTokenChecks prepares cfg's token checks and their denials; nil if it
// sets none.
func newTokenChecks(cfg ProviderConfig, skew time.Duration, now func() time.Time) (*tokenChecks, error) {
	tt, err := parseTenants(cfg.Issuer, cfg.Tenants)
	if err != nil {
		return nil, err
	}
	if cfg.RequiredTyp == "" && cfg.MaxLifetime == 0 && cfg.Subjects.IsZero() && tt == nil {
		return nil, nil
	}
	if cfg.Introspector != nil {
		return nil, errors.New("required_typ, max_lifetime, subjects and tenants check JWTs verified with the provider's keys: an introspection provider takes none of them")
	}
	tc := &tokenChecks{maxLifetime: cfg.MaxLifetime, skew: skew, now: now, tenants: tt, subjects: !cfg.Subjects.IsZero()}
	fail := func(r Reason, desc string) *checkFailure { return &checkFailure{newDenial(r, cfg.Name, desc, "")} }
	if cfg.RequiredTyp != "" {
		if err := CheckRequiredTyp(cfg.RequiredTyp); err != nil {
			return nil, fmt.Errorf("required_typ: %w", err)
		}
		tc.typ = normalTyp(cfg.RequiredTyp)
		tc.wrongTyp = fail(ReasonWrongTyp, `header "typ" must be "`+cfg.RequiredTyp+`"`)
	}
	if cfg.MaxLifetime < 0 {
		return nil, fmt.Errorf("max_lifetime: %v is negative (0 or leaving it out does not check the lifetime)", cfg.MaxLifetime)
	}
	tc.tooLong = fail(ReasonLifetimeTooLong, "token lifetime exceeds "+cfg.MaxLifetime.String())
	if err := tc.setSubjects(cfg.Subjects); err != nil {
		return nil, err
	}
	tc.wrongSub = fail(ReasonWrongSubject, `claim "sub" is not among the provider's subjects`)
	tc.tidMissing = fail(ReasonInvalidClaims, `missing claim "tid": the issuer names a tenant`)
	tc.tidWrong = fail(ReasonInvalidClaims, `claim "tid" must be the tenant "iss" names`)
	return tc, nil
}

func (tc *tokenChecks) setSubjects(m SubjectMatch) error {
	for _, l := range []struct {
		key  string
		list []string
	}{{"exact", m.Exact}, {"prefix", m.Prefix}} {
		for j, s := range l.list {
			if s == "" {
				return fmt.Errorf("subjects.%s[%d]: must not be empty", l.key, j)
			}
		}
	}
	tc.exact, tc.prefix = slices.Clone(m.Exact), slices.Clone(m.Prefix)
	if m.Regex != "" {
		re, err := CompileSubjectRegex(m.Regex)
		if err != nil {
			return fmt.Errorf("subjects.regex: %w", err)
		}
		tc.regex = re
	}
	return nil
}

// check runs the checks on a token whose signature and registered claims
// verified: h is its header, c its claims.
func (tc *tokenChecks) check(h header, c *claims) error {
	if tc.typ != "" {
		var typ string
		if stringMember(h.members, "typ", &typ) != nil || !strings.EqualFold(normalTyp(typ), tc.typ) {
			return tc.wrongTyp
		}
	}
	if tc.maxLifetime > 0 && tc.tooLongLived(c) {
		return tc.tooLong
	}
	if tc.subjects && !tc.subjectOK(c.Subject) {
		return tc.wrongSub
	}
	if tc.tenants != nil {
		return tc.tenantOK(c)
	}
	return nil
}

// tooLongLived reports whether exp - iat exceeds the maximum lifetime, or
// without iat, exp - now beyond the clock skew.
func (tc *tokenChecks) tooLongLived(c *claims) bool {
	exp := c.ExpiresAt.Time // required: the validator has seen it
	if c.IssuedAt != nil {
		return exp.Sub(c.IssuedAt.Time) > tc.maxLifetime
	}
	return exp.Sub(tc.now()) > tc.maxLifetime+tc.skew
}

func (tc *tokenChecks) subjectOK(sub string) bool {
	if sub == "" {
		return false
	}
	if slices.Contains(tc.exact, sub) {
		return true
	}
	for _, p := range tc.prefix {
		if strings.HasPrefix(sub, p) {
			return true
		}
	}
	return tc.regex != nil && tc.regex.MatchString(sub)
}

// tenantOK checks that the token's tid is the tenant its iss names (the
// provider was chosen by that iss, so it fits the template).
func (tc *tokenChecks) tenantOK(c *claims) error {
	tenant, ok := tc.tenants.tenantOf(c.Issuer)
	if !ok || !tc.tenants.accepts(tenant) {
		return errTenantIssuer
	}
	var tid string
	raw, present := c.all["tid"]
	switch {
	case !present:
		return tc.tidMissing
	case len(raw) == 0 || raw[0] != '"' || stringMember(c.all, "tid", &tid) != nil || tid != tenant:
		return tc.tidWrong
	}
	return nil
}

// errTenantIssuer is a token whose iss is not one of a template
// provider's tenants: never seen, since such a token finds no provider.
var errTenantIssuer = errors.New("iss is not one of the provider's tenants")

// checkDenial is the prepared denial of a failed token check, or nil.
func checkDenial(err error) *denial {
	var f *checkFailure
	if errors.As(err, &f) {
		return f.dn
	}
	return nil
}
