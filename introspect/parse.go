package introspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// MaxBody is the largest introspection answer or discovery document read, in
// bytes. A larger one is refused (ErrFailed for an answer); only MaxBody+1
// bytes of it are read.
const MaxBody = 64 << 10

var (
	errNotObject = errors.New("not a JSON object")
	errDuplicate = errors.New("a member name appears twice")
	errUTF8      = errors.New("invalid UTF-8")
	errActive    = errors.New(`"active" is missing or not a JSON boolean`)
	errTooLarge  = fmt.Errorf("larger than %d bytes", MaxBody)
)

// ParseResponse reads an RFC 7662 introspection answer: exactly one JSON
// object (whitespace around it, nothing else), valid UTF-8, no member name
// twice at any depth (two parsers taking different copies would read two
// answers), at most MaxBody bytes, with an "active" member that is a JSON
// boolean (RFC 7662 §2.2 requires it). Anything else is an error wrapping
// ErrFailed, and the map is nil.
//
// Numbers are json.Number, so that exp, nbf and iat keep their exact text:
// the engine reads them as integers (strconv.ParseInt of the Number's
// string) and refuses fractions, exponents and values out of range, as it
// does for a JWT's. Strings, booleans, null, arrays ([]any) and objects
// (map[string]any) are as encoding/json decodes them.
//
// A map is returned for "active": false as for true; whether the token is
// active is the engine's decision (Active states the rule).
func ParseResponse(body []byte) (map[string]any, error) {
	m, err := parseObject(body)
	if err != nil {
		return nil, fmt.Errorf("%w: answer %w", ErrFailed, err)
	}
	if _, ok := m["active"].(bool); !ok {
		return nil, fmt.Errorf("%w: answer %w", ErrFailed, errActive)
	}
	return m, nil
}

// Active reports whether an answer ParseResponse returned says the token is
// active: its "active" member is the JSON boolean true, nothing else (not
// "true", not 1). The engine (authz) applies the same rule where it
// decides; here it only labels what Observe sees.
func Active(m map[string]any) bool {
	return m["active"] == true
}

// parseObject decodes one JSON object with the checks ParseResponse lists
// (all but "active").
func parseObject(body []byte) (map[string]any, error) {
	if len(body) > MaxBody {
		return nil, errTooLarge
	}
	if !utf8.Valid(body) {
		return nil, errUTF8 // encoding/json would replace it silently
	}
	if !json.Valid(body) { // also bounds the nesting depth for the walk below
		return nil, errors.New("invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, errNotObject
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	m, err := decodeObject(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the object")
	}
	return m, nil
}

// decodeObject reads the members of an object whose '{' dec has read, and
// its '}'.
func decodeObject(dec *json.Decoder) (map[string]any, error) {
	m := make(map[string]any)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("invalid JSON")
		}
		if _, dup := m[name]; dup {
			return nil, errDuplicate
		}
		v, err := decodeValue(dec)
		if err != nil {
			return nil, err
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	return m, nil
}

// decodeValue reads one value. The decoder's scanner bounds nesting, so the
// recursion is bounded too.
func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	switch d {
	case '{':
		return decodeObject(dec)
	case '[':
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := dec.Token(); err != nil { // ']'
			return nil, err
		}
		return a, nil
	}
	return nil, errors.New("invalid JSON")
}
