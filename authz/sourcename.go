package authz

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// sameName reports whether a server could read the cookie or query
// parameter called k as the one called name. Servers differ in how they
// read a name, and the upstream behind jwtauthz may be any of them:
//   - whitespace and control characters around it are trimmed (Go, Node,
//     Python and JavaScript's trim take Unicode spaces too);
//   - it is percent-decoded, "+" as a space (every server decodes query
//     names, PHP cookie names too; some decode twice, IIS reads %uXXXX);
//   - an index makes it an array of that name ("name[]", "name[0]": PHP,
//     Rack, Express);
//   - its case is folded (ASP.NET Core looks cookies and query parameters
//     up without case);
//   - ".", " " and "[" are read as "_" (PHP).
//
// Any of these readings that yields name makes k the same name: jwtauthz
// may not read it as another parameter while the upstream reads it as the
// token. It allocates only for a name holding "%" or "+".
func sameName(k, name string) bool {
	if len(k) < shortest(name) {
		return false
	}
	k = trimName(k)
	if strings.IndexByte(k, '%') >= 0 || strings.IndexByte(k, '+') >= 0 {
		k = trimName(unescapeName(k))
	}
	if i := strings.IndexByte(k, '['); i > 0 && k[len(k)-1] == ']' {
		k = trimName(k[:i])
	}
	return foldName(k, name)
}

// shortest is the length below which no name is sameName as name: each
// reading only shortens a name, and no rune is shorter than the ASCII byte
// it may fold to. (A rune may fold to a shorter one: for a name not in
// ASCII, any length may be.)
func shortest(name string) int {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return 0
		}
	}
	return len(name)
}

// trimName trims what some server trims around a name: controls, spaces
// (Unicode's too), a byte order mark, and bytes that are not UTF-8.
func trimName(s string) string {
	if s == "" || plainByte(s[0]) && plainByte(s[len(s)-1]) {
		return s
	}
	return strings.TrimFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '\ufeff' || r == utf8.RuneError || unicode.IsSpace(r)
	})
}

// unescapeName decodes %XX, %uXXXX and "+" leniently (an invalid escape is
// kept, as PHP keeps it), again while a round decodes something, for
// servers that decode twice.
func unescapeName(s string) string {
	for range 4 {
		b := make([]byte, 0, len(s))
		changed := false
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '+':
				b, changed = append(b, ' '), true
			case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
				b, changed = append(b, unhex(s[i+1])<<4|unhex(s[i+2])), true
				i += 2
			case c == '%' && i+5 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') && isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) && isHex(s[i+5]):
				r := rune(unhex(s[i+2]))<<12 | rune(unhex(s[i+3]))<<8 | rune(unhex(s[i+4]))<<4 | rune(unhex(s[i+5]))
				b, changed = utf8.AppendRune(b, r), true
				i += 5
			default:
				b = append(b, c)
			}
		}
		if s = string(b); !changed || !strings.ContainsAny(s, "%+") {
			break
		}
	}
	return s
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// foldName reports whether a and b are one name without case (Unicode
// folding, or one rune the upper or lower case of the other, as .NET's
// invariant culture reads "ı" as "i"), with ".", " ", "[" and "_" alike.
func foldName(a, b string) bool {
	for a != "" && b != "" {
		if ca, cb := a[0], b[0]; ca < utf8.RuneSelf && cb < utf8.RuneSelf {
			if ca != cb && lower(ca) != lower(cb) && !(underscoreLike(rune(ca)) && underscoreLike(rune(cb))) {
				return false
			}
			a, b = a[1:], b[1:]
			continue
		}
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		a, b = a[na:], b[nb:]
		if ra == rb || underscoreLike(ra) && underscoreLike(rb) {
			continue
		}
		if unicode.ToUpper(ra) != unicode.ToUpper(rb) && unicode.ToLower(ra) != unicode.ToLower(rb) && !sameFold(ra, rb) {
			return false
		}
	}
	return a == "" && b == ""
}

// plainByte reports whether c is printable ASCII other than a space: a
// name's end that trimName keeps.
func plainByte(c byte) bool { return c > ' ' && c < 0x7f }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func underscoreLike(r rune) bool { return r == '_' || r == '.' || r == ' ' || r == '[' }

// sameFold reports whether r and s are in one Unicode case-folding orbit
// ("K", "k" and the Kelvin sign).
func sameFold(r, s rune) bool {
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f == s {
			return true
		}
	}
	return false
}
