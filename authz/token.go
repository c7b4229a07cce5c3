package authz

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// TokenSource is one place a token may be found. Exactly one of Header,
// Cookie and Query is set.
type TokenSource struct {
	Header string `yaml:"header"` // lower-case header name
	Prefix string `yaml:"prefix"` // with Header: e.g. "Bearer ", matched case-insensitively
	Cookie string `yaml:"cookie"`
	Query  string `yaml:"query"`
}

// BearerSource is the default: `authorization: Bearer <token>`.
var BearerSource = TokenSource{Header: "authorization", Prefix: "Bearer "}

func (s TokenSource) String() string {
	switch {
	case s.Cookie != "":
		return "cookie " + s.Cookie
	case s.Query != "":
		return "query " + s.Query
	case s.Prefix != "":
		return "header " + s.Header + " " + strings.TrimSpace(s.Prefix)
	}
	return "header " + s.Header
}

// extract returns the token this source finds in r, "" if none. A value that
// is present but is not shaped like a compact JWS is returned as is and
// rejected later as malformed.
func (s *TokenSource) extract(r *Request) string {
	switch {
	case s.Cookie != "":
		return cookieValue(r.header("cookie"), s.Cookie)
	case s.Query != "":
		return queryValue(r.Path, s.Query)
	}
	v := r.header(s.Header)
	if s.Prefix == "" {
		return strings.TrimSpace(v)
	}
	if len(v) < len(s.Prefix) || !strings.EqualFold(v[:len(s.Prefix)], s.Prefix) {
		// "Bearer" alone, or another scheme: no token.
		return ""
	}
	return strings.TrimSpace(v[len(s.Prefix):])
}

// cookieValue finds name in a Cookie header without allocating. The first
// occurrence wins; a quoted value is unquoted.
func cookieValue(h, name string) string {
	for h != "" {
		var part string
		part, h, _ = strings.Cut(h, ";")
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if ok && k == name {
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}

// queryValue finds a parameter in the query of path.
func queryValue(path, name string) string {
	_, q, ok := strings.Cut(path, "?")
	if !ok {
		return ""
	}
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(part, "=")
		if k == name {
			if strings.ContainsAny(v, "%+") {
				if u, err := url.QueryUnescape(v); err == nil {
					return u
				}
			}
			return v
		}
	}
	return ""
}

// withoutCookie returns the Cookie header h with every cookie called name
// taken out.
func withoutCookie(h, name string) string {
	var b strings.Builder
	for h != "" {
		var part string
		part, h, _ = strings.Cut(h, ";")
		part = strings.TrimSpace(part)
		if k, _, _ := strings.Cut(part, "="); k == name || part == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(part)
	}
	return b.String()
}

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
	h.payload = pm
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
// object, and trailing data.
func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(b) {
		return nil, errUTF8
	}
	obj := bytes.TrimLeft(b, " \t\r\n")
	if len(obj) == 0 || obj[0] != '{' {
		return nil, errNotObject
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return nil, err // also trailing data
	}
	// encoding/json keeps the last of repeated names: fewer members in the
	// map than in the text means a name came twice (escaped spellings of one
	// name count as the same).
	if members(obj) != len(m) {
		return nil, errDuplicate
	}
	return m, nil
}

// members counts the members of the JSON object obj, which encoding/json
// has accepted: every ':' outside strings at the object's own depth.
func members(obj []byte) int {
	n, depth, inStr, esc := 0, 0, false, false
	for _, c := range obj {
		switch {
		case esc:
			esc = false
		case inStr:
			esc, inStr = c == '\\', c != '"'
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ':' && depth == 1:
			n++
		}
	}
	return n
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
	return json.Unmarshal(raw, dst)
}
