package authz

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// PathCase says how the upstream compares paths, and so how rules match
// them (path_case in the YAML file).
type PathCase string

// Values of PathCase.
const (
	// PathCaseUnset (the zero value) is for an upstream whose way is not
	// stated. Rules match paths as written, and a path that would select
	// another rule if rules matched without case is refused (400): a
	// case-insensitive upstream (Express's default, ASP.NET, IIS) serves
	// GET /ADMIN/x as /admin/x, a case-sensitive one does not, and neither
	// may reach a weaker rule than its own reading would select.
	PathCaseUnset PathCase = ""
	// PathCaseSensitive states that the upstream tells /Admin from /admin:
	// rules match paths as written. Behind a case-insensitive upstream it
	// lets /ADMIN pass by a rule written for /admin.
	PathCaseSensitive PathCase = "sensitive"
	// PathCaseInsensitive states that the upstream reads /Admin as /admin:
	// rules match the path folded (Unicode simple case folding, and İ and ı
	// as i) against path and path_prefix folded alike, and path_regex as if
	// written with (?i).
	PathCaseInsensitive PathCase = "insensitive"
)

// ErrPathCase is wrapped by the error New and Validate return for a
// PathCase that is none of the above.
var ErrPathCase = errors.New("authz: path_case must be sensitive, insensitive or unset")

// caseCheck is how route reads a path's case, as the policy's PathCase
// says.
type caseCheck uint8

const (
	caseEither caseCheck = iota // PathCaseUnset
	caseAsIs                    // PathCaseSensitive
	caseFolded                  // PathCaseInsensitive
)

// setPathCase checks pc and prepares every rule's patterns for matching a
// folded path.
func (pol *policy) setPathCase(pc PathCase) error {
	switch pc {
	case PathCaseUnset:
		pol.cases = caseEither
	case PathCaseSensitive:
		pol.cases = caseAsIs
	case PathCaseInsensitive:
		pol.cases = caseFolded
	default:
		return fmt.Errorf("%w, got %q", ErrPathCase, string(pc))
	}
	for i, ru := range pol.rules {
		if err := ru.prepareFolded(); err != nil {
			return ruleError(i, "match.path_regex", "%w", err)
		}
		pol.caseDep = pol.caseDep || ru.caseDep && pol.cases == caseEither
	}
	return nil
}

// prepareFolded sets the rule's folded patterns, and caseDep.
func (ru *rule) prepareFolded() error {
	var fp, fq bool
	ru.fpath, fp = foldPath(ru.path)
	ru.fprefix, fq = foldPath(ru.prefix)
	ru.caseDep = fp || fq
	if ru.re == nil {
		return nil
	}
	src := ru.re.String() // ^(?:…)$
	fre, err := regexp.Compile("(?i)" + src)
	if err != nil {
		return err
	}
	ru.fre = fre
	tree, err := syntax.Parse(src, syntax.Perl) // as regexp.Compile parses them
	if err != nil {
		return err
	}
	ftree, err := syntax.Parse("(?i)"+src, syntax.Perl)
	if err != nil {
		return err
	}
	ru.caseDep = ru.caseDep || !caseBlind(tree, ftree)
	return nil
}

// foldPath returns p with every rune folded (foldRune), and whether that
// changed it; bytes that are not UTF-8 stay as they are. A path folding
// leaves alone costs no allocation.
func foldPath(p string) (string, bool) {
	i := 0
	for i < len(p) {
		c := p[i]
		if c-'A' < 26 {
			break
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(p[i:])
		if (r != utf8.RuneError || n > 1) && foldRune(r) != r {
			break
		}
		i += n
	}
	if i == len(p) {
		return p, false
	}
	var b strings.Builder
	b.Grow(len(p))
	b.WriteString(p[:i])
	for i < len(p) {
		c := p[i]
		if c < utf8.RuneSelf {
			if c-'A' < 26 {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(p[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteByte(c)
		} else {
			b.WriteRune(foldRune(r))
		}
		i += n
	}
	return b.String(), true
}

// foldRune is one rune of each simple case folding orbit (K, k and the
// Kelvin sign K are k; S, s and ſ are s), the lower-case one, and i for İ
// and ı, whose own lower or upper case is i or I: what any upstream that
// compares paths without case reads alike, reads alike here.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	if r == 'İ' || r == 'ı' {
		return 'i'
	}
	low := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		low = min(low, f)
	}
	if low < utf8.RuneSelf {
		return foldRune(low)
	}
	return unicode.ToLower(low) // in the orbit, for every rune but İ and ı
}

// caseBlind reports whether re (parsed as written) matches every folded
// path (one that foldPath leaves as it is) as fi, the same regex parsed
// with (?i), does: its literals are folded runes or without case already,
// and each class holds the same folded runes as its (?i) twin. Where the
// parser shaped the two trees apart (fi nil), a class must hold all the
// cases of a letter or none, since whether (?i) widens it or (negated)
// narrows it cannot be told; and [A-Z] and [[:upper:]] are never blind.
func caseBlind(re, fi *syntax.Regexp) bool {
	if fi != nil && (fi.Op != re.Op || len(fi.Sub) != len(re.Sub)) {
		fi = nil
	}
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return true
		}
		for _, r := range re.Rune {
			if foldRune(r) != r {
				return false
			}
		}
	case syntax.OpCharClass:
		for _, r := range casedRunes() {
			if fi != nil && foldRune(r) == r && inClass(re.Rune, r) != inClass(fi.Rune, r) ||
				fi == nil && inClass(re.Rune, r) != inClass(re.Rune, unicode.SimpleFold(r)) {
				return false
			}
		}
	}
	for i, sub := range re.Sub {
		var fs *syntax.Regexp
		if fi != nil {
			fs = fi.Sub[i]
		}
		if !caseBlind(sub, fs) {
			return false
		}
	}
	return true
}

// inClass reports whether r is in class, a sorted list of rune ranges
// (lo, hi pairs) as syntax.Regexp.Rune holds them.
func inClass(class []rune, r rune) bool {
	i, _ := slices.BinarySearch(class, r) // the first bound not below r
	return i < len(class) && (class[i] == r || i%2 == 1)
}

// casedRunes are the runes that simple case folding maps to another
// (about 2 900), found once.
var casedRunes = sync.OnceValue(func() []rune {
	var rs []rune
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if unicode.SimpleFold(r) != r {
			rs = append(rs, r)
		}
	}
	return rs
})
