package authz

import (
	"regexp"
	"regexp/syntax"
	"testing"
	"unicode"
)

func TestFoldPath(t *testing.T) {
	tests := []struct {
		name, in, want string
		changed        bool
	}{
		{name: "lower-case ASCII", in: "/v1/things", want: "/v1/things"},
		{name: "upper-case ASCII", in: "/V1/Things", want: "/v1/things", changed: true},
		{name: "lower-case non-ASCII", in: "/café", want: "/café"},
		{name: "upper-case non-ASCII", in: "/CAFÉ", want: "/café", changed: true},
		{name: "Kelvin sign", in: "/\u212aey", want: "/key", changed: true},
		{name: "long s", in: "/\u017fecret", want: "/secret", changed: true},
		{name: "dotted capital I", in: "/\u0130d", want: "/id", changed: true},
		{name: "dotless i", in: "/\u0131d", want: "/id", changed: true},
		{name: "final sigma", in: "/\u03c2", want: "/\u03c3", changed: true},
		{name: "bytes that are not UTF-8 stay", in: "/a\xffB\xc3", want: "/a\xffb\xc3", changed: true},
		{name: "only bytes that are not UTF-8", in: "/\xff\xfe", want: "/\xff\xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := foldPath(tt.in)
			if got != tt.want || changed != tt.changed {
				t.Fatalf("foldPath(%q) = %q, %v; want %q, %v", tt.in, got, changed, tt.want, tt.changed)
			}
		})
	}
}

// Every rune of a simple case folding orbit folds to one rune of that
// orbit, which folds to itself (İ and ı aside, which fold to i).
func TestFoldRuneOrbits(t *testing.T) {
	for _, r := range casedRunes() {
		f := foldRune(r)
		if foldRune(f) != f {
			t.Fatalf("%U folds to %U, which folds to %U", r, f, foldRune(f))
		}
		if g := foldRune(unicode.SimpleFold(r)); g != f {
			t.Fatalf("%U folds to %U, %U of its orbit to %U", r, f, unicode.SimpleFold(r), g)
		}
		if unicode.ToLower(r) != r && r != 'İ' && foldRune(unicode.ToLower(r)) != f {
			t.Fatalf("%U and its lower case fold apart", r)
		}
	}
	if foldRune('İ') != 'i' || foldRune('ı') != 'i' {
		t.Fatal("İ or ı does not fold to i")
	}
}

func TestCaseBlind(t *testing.T) {
	tests := []struct {
		re   string
		want bool
	}{
		{re: `/files/[^/]+`, want: true},
		{re: `/v[0-9]+/.*`, want: true},
		{re: `/a(b|c)?/\d{2}\b`, want: true},
		{re: `/[a-z]+`, want: true}, // (?i) adds K and the Kelvin sign, which no folded path holds
		{re: `/\w+`, want: true},
		{re: `/[^a-z]+`, want: true}, // (?i) takes A-Z out too, which no folded path holds
		{re: `(?i)/Admin/[A-Z]+`, want: true},
		{re: `/Admin`, want: false},
		{re: `/[[:upper:]]`, want: false},
		{re: `/[A-Z]+`, want: false},
		{re: `/\p{Lu}`, want: false},
		{re: `/[^A-Z]`, want: false},
		{re: `/\x{130}`, want: false}, // İ folds to i
		{re: `/(?:x|[A-Z])`, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.re, func(t *testing.T) {
			src := `^(?:` + tt.re + `)$`
			tree, err := syntax.Parse(src, syntax.Perl)
			if err != nil {
				t.Fatal(err)
			}
			ftree, err := syntax.Parse(`(?i)`+src, syntax.Perl)
			if err != nil {
				t.Fatal(err)
			}
			if got := caseBlind(tree, ftree); got != tt.want {
				t.Fatalf("caseBlind = %v, want %v", got, tt.want)
			}
			// Alone, a class must hold all the cases of a letter or none.
			if got := caseBlind(tree, nil); got && !tt.want {
				t.Fatalf("caseBlind alone = %v, want false", got)
			}
		})
	}
}

func TestInClass(t *testing.T) {
	class := []rune{'a', 'c', 'x', 'x'}
	for r, want := range map[rune]bool{'`': false, 'a': true, 'b': true, 'c': true, 'd': false, 'x': true, 'y': false} {
		if got := inClass(class, r); got != want {
			t.Errorf("inClass(%q) = %v, want %v", r, got, want)
		}
	}
}

// FuzzCaseBlind: a regex caseBlind calls blind matches every folded path
// alike with and without (?i), which is what lets a check skip the second
// match.
//
//	go test ./authz -run '^$' -fuzz '^FuzzCaseBlind$' -fuzztime=30s
func FuzzCaseBlind(f *testing.F) {
	for _, s := range [][2]string{
		{`/[a-z]+`, "/key"}, {`/[^a-z]+`, "/K"}, {`/\w+`, "/s"}, {`/[[:upper:]]`, "/a"}, {`x|X`, "x"},
		{`(?i)k|[^k]`, "k"}, {`[^\x{212a}]`, "k"}, {`[\x{17f}]`, "s"}, {`a(?-i:B)`, "ab"}, {`[^B\x{10FFFF}]`, "b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, expr, path string) {
		if len(expr) > 64 || len(path) > 64 {
			return // longer ones find nothing more and take long to minimise
		}
		src := `^(?:` + expr + `)$`
		re, err := regexp.Compile(src)
		if err != nil {
			return
		}
		fre := regexp.MustCompile(`(?i)` + src)
		tree, err := syntax.Parse(src, syntax.Perl)
		if err != nil {
			t.Fatalf("regexp compiled %q, syntax refused it: %v", src, err)
		}
		ftree, _ := syntax.Parse(`(?i)`+src, syntax.Perl)
		p, _ := foldPath(path)
		for _, fi := range []*syntax.Regexp{ftree, nil} {
			if caseBlind(tree, fi) && re.MatchString(p) != fre.MatchString(p) {
				t.Fatalf("%q blind (twin %v), but on %q it matches %v, with (?i) %v", expr, fi != nil, p, re.MatchString(p), fre.MatchString(p))
			}
		}
	})
}
