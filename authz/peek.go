package authz

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Errors of reading a token before its signature is checked.
var (
	errSegments  = errors.New("a compact JWS has three segments")
	errCharset   = errors.New("token holds characters outside base64url")
	errCrit      = errors.New(`"crit" names extensions jwtauthz does not implement`)
	errDuplicate = errors.New("duplicate member name")
	errNotObject = errors.New("not a JSON object")
	errUTF8      = errors.New("invalid UTF-8")
)

// header is what is read of a token before its signature is verified: enough
// to choose the provider and the key. None of it is trusted.
type header struct {
	Alg string
	KID string
	Iss string
	// payload is the decoded payload: verify reads the claims from it.
	payload map[string]json.RawMessage
	// members are the decoded header's: the token checks read typ.
	members map[string]json.RawMessage
}

// peek checks that tok is a compact JWS (three base64url segments, strict
// JSON objects without duplicate names) and reads its alg, kid and iss.
func peek(tok string) (header, error) {
	var h header
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return h, errCharset
		}
	}
	hdr, rest, ok1 := strings.Cut(tok, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") || hdr == "" || payload == "" || sig == "" {
		return h, errSegments
	}
	hm, err := decodeSegment(hdr)
	if err != nil {
		return h, fmt.Errorf("header: %w", err)
	}
	if _, ok := hm["crit"]; ok {
		return h, errCrit
	}
	if err := stringMember(hm, "alg", &h.Alg); err != nil || h.Alg == "" {
		return h, fmt.Errorf("header: alg: %w", orMissing(err))
	}
	if err := stringMember(hm, "kid", &h.KID); err != nil {
		return h, fmt.Errorf("header: kid: %w", err)
	}
	pm, err := decodeSegment(payload)
	if err != nil {
		return h, fmt.Errorf("payload: %w", err)
	}
	if err := stringMember(pm, "iss", &h.Iss); err != nil {
		return h, fmt.Errorf("payload: iss: %w", err)
	}
	h.payload, h.members = pm, hm
	return h, nil
}

func orMissing(err error) error {
	if err == nil {
		return errors.New("missing")
	}
	return err
}

func decodeSegment(seg string) (map[string]json.RawMessage, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return nil, fmt.Errorf("base64url: %w", err)
	}
	return decodeObject(b)
}

// decodeObject decodes a JSON object into its members, refusing duplicate
// names (RFC 7515 §4 allows refusing them; taking the last, as
// encoding/json does, lets two parsers read two different tokens), invalid
// UTF-8 (which encoding/json would silently replace), anything but an
// object, and trailing data. encoding/json checks the syntax (json.Valid);
// the members are then cut out of b, which they point into: no copy of a
// value, no reflection.
func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(b) {
		return nil, errUTF8
	}
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return nil, errNotObject
	}
	if !json.Valid(b) {
		return nil, errJSON // also trailing data
	}
	m := make(map[string]json.RawMessage, 8)
	for i = skipSpace(b, i+1); b[i] != '}'; {
		end := skipString(b, i)
		name, err := memberName(b[i:end])
		if err != nil {
			return nil, err
		}
		i = skipSpace(b, skipSpace(b, end)+1) // past the ':'
		end = skipValue(b, i)
		// Escaped spellings of one name are the same name.
		if _, dup := m[name]; dup {
			return nil, errDuplicate
		}
		m[name] = json.RawMessage(b[i:end:end])
		if i = skipSpace(b, end); b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return m, nil
}

var errJSON = errors.New("invalid JSON")

// The scanners below walk JSON that json.Valid accepted: they look for the
// end of a token, not for errors.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		for depth := 0; ; {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
		i++
	}
	return i
}

// memberName returns the name a quoted member name spells.
func memberName(q []byte) (string, error) {
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1 : len(q)-1]), nil
	}
	var name string
	err := json.Unmarshal(q, &name)
	return name, err
}

// stringMember sets *dst to the string member name of m; absent leaves it.
func stringMember(m map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := m[name]
	if !ok {
		return nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return errors.New("not a string")
	}
	var err error
	*dst, err = memberName(raw)
	return err
}
