package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// denial is a denial prepared once, at start or when a policy is built: its
// reason, the provider it counts under, and its challenge and body, whose
// description names what failed. A denial builds no strings. Nothing in it
// comes from a token: names and values are the configuration's, or from a
// fixed set.
type denial struct {
	reason          Reason
	provider        string
	challenge, body string
}

// decision returns the denial as a Decision: without a challenge of its
// own, the reason's (deny).
func (dn *denial) decision() Decision {
	d := deny(dn.reason)
	d.Provider = dn.provider
	if dn.challenge != "" {
		d.Challenge, d.Body = dn.challenge, dn.body
	}
	return d
}

// registeredClaims are the claims the verifier may require; a denial for a
// missing one names it from this fixed set.
var registeredClaims = [...]string{"exp", "aud", "iss"}

const (
	claimExp = iota
	claimAud
	claimIss
)

// plainDenials are the fixed denials of each reason, under provider "".
var plainDenials = func() (ds [numReasons]*denial) {
	for r := range numReasons {
		ds[r] = &denial{reason: r}
	}
	return ds
}()

// missingIss is the denial of a token without iss: it names no provider.
var missingIss = newDenial(ReasonMissingClaim, "", `missing claim "iss"`, "")

// newDenial prepares a denial for r counted under provider, with the
// description desc (safe in a quoted-string once escaped: the
// configuration's control characters are refused at load) and, for
// insufficient_scope, the scopes the rule requires ("" for none).
func newDenial(r Reason, provider, desc, scope string) *denial {
	dn := &denial{reason: r, provider: provider}
	qdesc := quoteEscape(desc)
	code := "invalid_token"
	if r == ReasonInsufficientScope || r == ReasonConditionFailed {
		code = "insufficient_scope"
	}
	dn.challenge = `Bearer realm="` + Realm + `", error="` + code + `"`
	if scope != "" {
		dn.challenge += `, scope="` + quoteEscape(scope) + `"`
	}
	dn.challenge += `, error_description="` + qdesc + `"`
	jdesc, _ := json.Marshal(desc) // a string always marshals
	dn.body = `{"error":"` + code + `","error_description":` + string(jdesc) + `}`
	return dn
}

// quoteEscape escapes s for the inside of an HTTP quoted-string (RFC 9110
// §5.6.4): a backslash before each " and \.
func quoteEscape(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// errControl is the error of a configured string, named in a denial's
// description, that holds a control character.
var errControl = errors.New("holds a control character")

// checkPrintable refuses a configured string that a denial's description
// would carry if it holds a control character (a header value cannot).
func checkPrintable(s string) error {
	for _, c := range s {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return fmt.Errorf("%q %w", s, errControl)
		}
	}
	return nil
}

// providerDenials are a provider's prepared denials under a policy: one per
// reason, with the provider's label, and one per registered claim it may
// find missing.
type providerDenials struct {
	byReason [numReasons]*denial
	missing  [len(registeredClaims)]*denial
}

func newProviderDenials(name string) *providerDenials {
	pd := &providerDenials{}
	for r := range numReasons {
		if reasons[r].status != 200 {
			pd.byReason[r] = &denial{reason: r, provider: name}
		}
	}
	for i, c := range registeredClaims {
		pd.missing[i] = newDenial(ReasonMissingClaim, name, `missing claim "`+c+`"`, "")
	}
	return pd
}

// denialOf is the prepared denial of p's verification error err. Its
// provider is p's.
func (pd *providerDenials) denialOf(p *provider, h header, err error) *denial {
	if dn := checkDenial(err); dn != nil {
		return dn // a token check's, prepared with its provider (tokenchecks.go)
	}
	r := p.reasonOf(h, err)
	if r == ReasonMissingClaim {
		return pd.missing[missingClaim(err)]
	}
	return pd.byReason[r]
}

// missingClaim tells which required claim err says is missing, as verify
// found it (missingClaimError); exp if it did not say.
func missingClaim(err error) int {
	var m *missingClaimError
	if errors.As(err, &m) {
		return m.claim
	}
	return claimExp
}

// missingClaimError says which registered claim a token lacks.
type missingClaimError struct{ claim int }

func (m *missingClaimError) Error() string {
	return registeredClaims[m.claim] + " claim is required"
}

// whichMissing returns the registered claim c lacks that p's validator
// requires, in the validator's order: exp always, aud if p names
// audiences, iss unless p takes any issuer.
func whichMissing(p *provider, c *claims) int {
	switch {
	case c.ExpiresAt == nil:
		return claimExp
	case len(p.cfg.Audiences) > 0 && strings.Join(c.Audience, "") == "": // as the validator: [""] is none
		return claimAud
	case !p.cfg.AnyIssuer && c.Issuer == "":
		return claimIss
	}
	return claimExp
}

// prepareDenials prepares a rule's insufficient_scope denials: one per scope
// and one per claim it requires, their descriptions naming it. Their
// provider is set by the caller (the grant's).
func (ru *rule) prepareDenials(i int) error {
	scope := strings.Join(ru.scopes, " ")
	for j, s := range ru.scopes {
		if err := checkPrintable(s); err != nil {
			return ruleError(i, fmt.Sprintf("require.scopes[%d]", j), "%w", err)
		}
		ru.scopeDenials = append(ru.scopeDenials, newDenial(ReasonInsufficientScope, "", `scope "`+s+`" required`, scope))
	}
	for _, c := range ru.claims {
		for _, s := range c {
			if err := checkPrintable(s); err != nil {
				return ruleError(i, "require.claims", "%w", err)
			}
		}
		ru.claimDenials = append(ru.claimDenials, newDenial(ReasonInsufficientScope, "", `claim "`+c[0]+`" must be "`+c[1]+`"`, scope))
	}
	return nil
}
