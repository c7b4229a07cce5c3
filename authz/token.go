package authz

import (
	"net/url"
	"strings"
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
