package authz

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxNumericDate bounds exp, nbf and iat: integers in [0, 2^53), the range a
// JSON number holds exactly. Larger, negative or fractional values are
// refused rather than rounded.
const maxNumericDate = 1 << 53

var (
	errNumericDate = errors.New("must be an integer NumericDate")
	errClaimType   = errors.New("has the wrong JSON type")
)

// claims is the payload as golang-jwt's validator checks it, plus what
// rules and claim headers read. It is read strictly: wrong types and
// non-integer dates are errors, so the token is malformed.
type claims struct {
	jwt.RegisteredClaims
	Azp    string
	Scopes []string
	all    map[string]json.RawMessage
	key    crypto.PublicKey // the key that verified the signature
}

// fromMembers reads the claims from the payload's members, as peek decoded
// them (duplicate names and invalid UTF-8 already refused).
func (c *claims) fromMembers(m map[string]json.RawMessage) error {
	c.all = m
	for _, s := range []struct {
		name string
		dst  *string
	}{{"iss", &c.Issuer}, {"sub", &c.Subject}, {"jti", &c.ID}, {"azp", &c.Azp}} {
		if err := stringMember(m, s.name, s.dst); err != nil {
			return fmt.Errorf("%s %w", s.name, errClaimType)
		}
	}
	var err error
	for _, d := range []struct {
		name string
		dst  **jwt.NumericDate
	}{{"exp", &c.ExpiresAt}, {"nbf", &c.NotBefore}, {"iat", &c.IssuedAt}} {
		if *d.dst, err = numericDate(m[d.name]); err != nil {
			return fmt.Errorf("%s %w", d.name, err)
		}
	}
	if raw, ok := m["aud"]; ok {
		if err := json.Unmarshal(raw, &c.Audience); err != nil {
			return fmt.Errorf("aud %w", errClaimType)
		}
	}
	c.Scopes, err = scopes(m)
	return err
}

func numericDate(raw json.RawMessage) (*jwt.NumericDate, error) {
	if raw == nil {
		return nil, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < 0 || n >= maxNumericDate {
		return nil, errNumericDate
	}
	return jwt.NewNumericDate(time.Unix(n, 0)), nil
}

// scopes reads `scope` and `scp`: a string is a list of scopes separated
// by spaces, U+0020 alone (RFC 6749 §3.3; RFC 8693 §4.2 for `scope`, as
// Entra ID sends `scp`); an array, as Okta sends `scp`, holds one scope per
// element, whatever it contains. So "read\u00a0admin" and ["read admin"]
// are one scope each, never admin.
func scopes(m map[string]json.RawMessage) ([]string, error) {
	var out []string
	for _, name := range []string{"scope", "scp"} {
		raw := m[name]
		vs, ok, err := stringsClaim(raw)
		if err != nil {
			return nil, fmt.Errorf("%s %w", name, errClaimType)
		}
		if !ok {
			continue
		}
		if raw[0] == '[' {
			out = append(out, vs...)
			continue
		}
		for s := range strings.SplitSeq(vs[0], " ") {
			if s != "" { // spaces in a row, or around the list
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// stringsClaim reads a claim that is a string or an array of strings.
func stringsClaim(raw json.RawMessage) (vs []string, ok bool, err error) {
	if raw == nil || string(raw) == "null" {
		return nil, false, nil
	}
	if raw[0] == '[' {
		err = json.Unmarshal(raw, &vs)
		return vs, true, err
	}
	var s string
	err = json.Unmarshal(raw, &s)
	return []string{s}, true, err
}

// claimAt finds a claim by name, or by a dotted path into objects
// ("o.rol": Clerk's v2 session tokens nest the organization), like Envoy's
// claim_to_headers. A name holding a dot is looked up whole first.
func claimAt(all map[string]json.RawMessage, name string) json.RawMessage {
	if v, ok := all[name]; ok {
		return v
	}
	head, rest, ok := strings.Cut(name, ".")
	if !ok {
		return nil
	}
	raw := all[head]
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return nil
	}
	return claimAt(obj, rest)
}

// claimValues returns the values of a claim for rules and claim headers: a
// string as itself, a number or boolean as its JSON text, an array as its
// scalar members. Objects and nulls have no value.
func claimValues(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return []string{s}
		}
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil
		}
		var out []string
		for _, it := range items {
			if len(it) > 0 && it[0] != '[' && it[0] != '{' {
				out = append(out, claimValues(it)...)
			}
		}
		return out
	case '{', 'n':
		return nil
	default: // number, true, false
		return []string{string(raw)}
	}
	return nil
}
