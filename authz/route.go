package authz

import (
	"net/url"
	pathpkg "path"
	"strings"
	"unicode/utf8"
)

// route returns the rule for r, or nil if its path is refused: matchPath
// refuses it, or its rule depends on how the upstream reads it (with its
// dot segments and repeated slashes resolved or not; with or without case,
// unless the policy's PathCase says which).
func (pol *policy) route(r *Request) *rule {
	path, alt, fold, ok := matchPath(r.Path)
	if !ok {
		return nil
	}
	if pol.cases == caseFolded {
		return pol.routeFolded(r, path, alt, fold)
	}
	ru := pol.match(r, path)
	if alt != "" && pol.match(r, alt) != ru {
		// Resolving the dot segments or merging the slashes changed the
		// rule: an upstream that does neither would read another path
		// than the rule saw.
		return nil
	}
	if pol.caseDep || fold && pol.cases == caseEither {
		if !pol.foldedSelects(r, path, ru) || alt != "" && !pol.foldedSelects(r, alt, ru) {
			return nil // a case-insensitive upstream would serve another rule's path
		}
	}
	return ru
}

// match returns the first rule for r, whose path (cleaned by matchPath) is
// path.
func (pol *policy) match(r *Request, path string) *rule {
	for _, ru := range pol.rules {
		if ru.matches(r, path) {
			if sel := ru.selects(r, path); sel != nil {
				return sel
			}
		}
	}
	return pol.fallback
}

// routeFolded is route for PathCaseInsensitive.
func (pol *policy) routeFolded(r *Request, path, alt string, fold bool) *rule {
	if fold {
		path, _ = foldPath(path)
		alt, _ = foldPath(alt)
	}
	ru := pol.matchFolded(r, path)
	if alt != "" && pol.matchFolded(r, alt) != ru {
		return nil
	}
	return ru
}

// matchFolded is match for a folded path (foldPath): the first rule whose
// folded patterns match it.
func (pol *policy) matchFolded(r *Request, path string) *rule {
	for _, ru := range pol.rules {
		if ru.matchesFolded(r, path) {
			if sel := ru.selects(r, path); sel != nil {
				return sel
			}
		}
	}
	return pol.fallback
}

// foldedSelects reports whether rules matching without case select sel,
// the rule that p selected as written. If folding leaves p as it is, only
// the rules that may match it otherwise without case need a look.
func (pol *policy) foldedSelects(r *Request, p string, sel *rule) bool {
	fp, changed := foldPath(p)
	for _, ru := range pol.rules {
		if !changed && !ru.caseDep && (ru.matchWhen == nil || !ru.matchWhen.path) {
			if ru == sel || ru.whenFailed == sel {
				return true // it matches fp as it matched p
			}
			continue // it did not match p, nor does it match fp
		}
		if ru.matchesFolded(r, fp) {
			if s := ru.selects(r, fp); s != nil {
				return s == sel
			}
		}
	}
	return sel == pol.fallback
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
