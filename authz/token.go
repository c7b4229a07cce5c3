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
// rejected later as malformed; so is ambiguousToken, for a cookie or query
// parameter the request holds twice or under another spelling of its name.
func (s *TokenSource) extract(r *Request) string {
	switch {
	case s.Cookie != "":
		return orAmbiguous(cookieValue(r.header("cookie"), s.Cookie))
	case s.Query != "":
		return orAmbiguous(queryValue(r.Path, s.Query))
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

// ambiguousToken is what extract returns for a cookie or query parameter
// that the request holds twice, or under a name that some server reads as
// the source's (sameName). Like two authorization headers, which Envoy
// joins with ",", it is one value that is not a compact JWS (peek refuses
// its first byte): the request is denied as malformed on the path of every
// malformed token, and neither the token cache nor the request dedup can
// answer for it with a valid token's grant. So nothing is allowed, and
// nothing rewritten, while an upstream could read another token than the
// one verified.
const ambiguousToken = "\x00ambiguous token source"

func orAmbiguous(v string, ok bool) string {
	if !ok {
		return ambiguousToken
	}
	return v
}

// cookieValue finds the cookie name in a Cookie header without allocating.
// ok is false if the header is ambiguous about it: name twice (servers
// differ on which one they take), a cookie whose name a server may read as
// name (sameName), or name after a "," (Envoy joins the cookie headers of
// an HTTP/1.1 request with ",", and RFC 2965 servers split cookies there).
// A quoted value is unquoted.
func cookieValue(h, name string) (v string, ok bool) {
	found, commas, short := false, strings.IndexByte(h, ',') >= 0, shortest(name)
	for h != "" {
		var part string
		part, h = cutByte(h, ';')
		part = strings.TrimSpace(part) // as withoutCookie reads it
		k, val := cutByte(part, '=')
		switch {
		case k == name && found, k != name && len(k) >= short && sameName(k, name), commas && altNamed(part, ',', name):
			return "", false
		case k == name:
			found, v = true, val
		}
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v, true
}

// queryValue finds the parameter name in the query of path, decoded. ok is
// false if the query is ambiguous about it: name twice, a parameter whose
// name a server may read as name (sameName), or name after a ";" (Rack and
// Pythons before 3.9.2 split parameters there too).
func queryValue(path, name string) (v string, ok bool) {
	_, q, hasQuery := strings.Cut(path, "?")
	if !hasQuery {
		return "", true
	}
	found, semicolons, short := false, strings.IndexByte(q, ';') >= 0, shortest(name)
	for q != "" {
		var part string
		part, q = cutByte(q, '&')
		k, val := cutByte(part, '=')
		switch {
		case k == name && found, k != name && len(k) >= short && sameName(k, name), semicolons && altNamed(part, ';', name):
			return "", false
		case k == name:
			found, v = true, val
		}
	}
	if strings.ContainsAny(v, "%+") {
		if u, err := url.QueryUnescape(v); err == nil {
			return u, true
		}
	}
	return v, true
}

// cutByte is strings.Cut for a one-byte separator, a little cheaper: a
// browser's cookie header has dozens of pairs to cut.
func cutByte(s string, sep byte) (before, after string) {
	if i := strings.IndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// altNamed reports whether part, one name=value pair, holds another pair
// named name (or a name sameName reads as name) for a server that also
// splits pairs at sep.
func altNamed(part string, sep byte, name string) bool {
	own, _, _ := strings.Cut(part, "=")
	for i := 0; ; i++ {
		j := strings.IndexByte(part, sep)
		if j < 0 && i == 0 {
			return false // one pair to every reading
		}
		piece := part
		if j >= 0 {
			piece = part[:j]
		}
		// The first piece's name is part's own unless that holds sep.
		if k, _, _ := strings.Cut(piece, "="); (i > 0 || k != own) && (k == name || sameName(k, name)) {
			return true
		}
		if j < 0 {
			return false
		}
		part = part[j+1:]
	}
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
