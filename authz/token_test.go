package authz

import (
	"strings"
	"testing"
)

// TestCookieValue: a token cookie that occurs twice, or under a name some
// server reads as the source's, is ambiguous (ok false); what is read
// otherwise is the one cookie of that exact name.
func TestCookieValue(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   string
		wantOK bool
	}{
		{name: "one cookie", header: "a=b; __session=GOOD; c=d", want: "GOOD", wantOK: true},
		{name: "quoted", header: `__session="GOOD"`, want: "GOOD", wantOK: true},
		{name: "absent", header: "a=b; __session_abc=x; session=y; __client_uat=1", want: "", wantOK: true},
		{name: "empty header", header: "", want: "", wantOK: true},
		{name: "spaces around the pair", header: "a=b;   __session=GOOD  ;c=d", want: "GOOD", wantOK: true},
		{name: "a comma in another cookie's value", header: "prefs=a,b,c; __session=GOOD", want: "GOOD", wantOK: true},
		{name: "longer names alike", header: "__session_Ab12=x; ___session=y; __sessions=z; __session=GOOD", want: "GOOD", wantOK: true},
		{name: "twice", header: "__session=GOOD; __session=FORGED"},
		{name: "twice, forged first", header: "__session=FORGED; __session=GOOD"},
		{name: "twice, one empty", header: "__session=; __session=GOOD"},
		{name: "twice, one without =", header: "__session; __session=GOOD"},
		{name: "space before =", header: "__session=GOOD; __session =FORGED; a=b"},
		{name: "tab before the name", header: "__session=GOOD;\t\t__session\t=FORGED"},
		{name: "no-break space around the name", header: "__session=GOOD; \u00a0__session\u00a0=FORGED"},
		{name: "byte order mark", header: "__session=GOOD; \ufeff__session=FORGED"},
		{name: "a variant alone", header: "__SESSION=FORGED"},
		{name: "upper case", header: "__session=GOOD; __SESSION=FORGED"},
		{name: "Kelvin sign folds to k", header: "tok=GOOD; to\u212a=FORGED"},
		{name: "percent-encoded name (PHP decodes cookie names)", header: "__session=GOOD; %5F%5Fsession=FORGED"},
		{name: "encoded twice", header: "__session=GOOD; %255F_session=FORGED"},
		{name: "dot for underscore (PHP)", header: "__session=GOOD; _.session=FORGED"},
		{name: "array", header: "__session=GOOD; __session[]=FORGED"},
		{name: "after a comma: two cookie headers joined by Envoy", header: "__session=GOOD,__session=FORGED"},
		{name: "after a comma in another cookie", header: "a=1, __session=FORGED; __session=GOOD"},
		{name: "after a comma, alone", header: "a=1,__session=GOOD"},
		{name: "a comma inside the name", header: "__session,x=FORGED; __session=GOOD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "__session"
			if strings.HasPrefix(tt.header, "tok=") {
				src = "tok"
			}
			got, ok := cookieValue(tt.header, src)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("cookieValue(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestQueryValue is TestCookieValue for the query.
func TestQueryValue(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		want   string
		wantOK bool
	}{
		{name: "one parameter", path: "/x?a=1&access_token=GOOD&b", want: "GOOD", wantOK: true},
		{name: "decoded value", path: "/x?access_token=GO%4FD", want: "GOOD", wantOK: true},
		{name: "no query", path: "/x", want: "", wantOK: true},
		{name: "absent", path: "/x?token=1&access_tokens=2&access=3", want: "", wantOK: true},
		{name: "without a value", path: "/x?access_token", want: "", wantOK: true},
		{name: "twice", path: "/x?access_token=GOOD&access_token=FORGED"},
		{name: "twice, one empty", path: "/x?access_token=&access_token=GOOD"},
		{name: "percent-encoded name", path: "/x?acc%65ss_token=FORGED&access_token=GOOD"},
		{name: "a variant alone", path: "/x?acc%65ss_token=GOOD"},
		{name: "encoded underscore", path: "/x?access%5Ftoken=FORGED&access_token=GOOD"},
		{name: "encoded twice", path: "/x?access%255Ftoken=FORGED&access_token=GOOD"},
		{name: "IIS %u escape", path: "/x?access%u005Ftoken=FORGED&access_token=GOOD"},
		{name: "plus for space (PHP: _)", path: "/x?access+token=FORGED&access_token=GOOD"},
		{name: "trailing space", path: "/x?access_token%20=FORGED&access_token=GOOD"},
		{name: "trailing plus", path: "/x?access_token+=FORGED&access_token=GOOD"},
		{name: "upper case (ASP.NET)", path: "/x?access_token=GOOD&ACCESS_TOKEN=FORGED"},
		{name: "dotless i (.NET invariant upper case)", path: "/x?id_token=GOOD&\u0131d_token=FORGED"},
		{name: "dot for underscore (PHP)", path: "/x?access.token=FORGED&access_token=GOOD"},
		{name: "array (PHP, Rack, Express)", path: "/x?access_token=GOOD&access_token[]=FORGED"},
		{name: "indexed array", path: "/x?access_token=GOOD&access_token%5B0%5D=FORGED"},
		{name: "after a semicolon", path: "/x?access_token=GOOD;access_token=FORGED"},
		{name: "after a semicolon, alone", path: "/x?a=1;access_token=GOOD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "access_token"
			if strings.Contains(tt.path, "?id_token=") {
				src = "id_token"
			}
			got, ok := queryValue(tt.path, src)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("queryValue(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestExtractAmbiguous: an ambiguous source yields a value peek refuses,
// so the request is denied as malformed.
func TestExtractAmbiguous(t *testing.T) {
	tests := []struct {
		name string
		src  TokenSource
		r    Request
	}{
		{name: "cookie", src: TokenSource{Cookie: "__session"}, r: Request{Path: "/", Headers: MapHeaders{"cookie": "__session=a.b.c; __session=d.e.f"}}},
		{name: "query", src: TokenSource{Query: "access_token"}, r: Request{Path: "/?access_token=a.b.c&ACCESS_TOKEN=d.e.f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.src.extract(&tt.r)
			if tok != ambiguousToken {
				t.Fatalf("extract = %q, want ambiguousToken", tok)
			}
			if _, err := peek(tok); err == nil {
				t.Fatal("peek accepted ambiguousToken")
			}
		})
	}
}

// TestSameName holds sameName to the readings it names, and to names it
// must not confuse.
func TestSameName(t *testing.T) {
	tests := []struct {
		k, name string
		want    bool
	}{
		{"__session ", "__session", true},
		{"\t__session", "__session", true},
		{"__Session", "__session", true},
		{"%5f%5fsession", "__session", true},
		{"%u005F_session", "__session", true},
		{"__session[x]", "__session", true},
		{"__session%5B%5D", "__session", true},
		{"__session\u3000", "__session", true},
		{"__session\x85", "__session", true}, // not UTF-8: trimmed
		{"access token", "access_token", true},
		{"access[token", "access_token", true},
		{"__sessio", "__session", false},
		{"__session_x", "__session", false},
		{"session", "__session", false},
		{"__session%zz", "__session", false},
		{"[]", "__session", false},
		{"x__session", "__session", false},
	}
	for _, tt := range tests {
		if got := sameName(tt.k, tt.name); got != tt.want {
			t.Errorf("sameName(%q, %q) = %v, want %v", tt.k, tt.name, got, tt.want)
		}
	}
}

// TestWithoutCookieKeepsNoCopy: with the one cookie read, what
// withoutCookie forwards holds no cookie any reading takes for it.
func TestWithoutCookieKeepsNoCopy(t *testing.T) {
	h := "a=b;  __session=GOOD ;c=\"d\"; ;prefs=x,y"
	if _, ok := cookieValue(h, "__session"); !ok {
		t.Fatal("ambiguous")
	}
	got := withoutCookie(h, "__session")
	if got != `a=b; c="d"; prefs=x,y` {
		t.Fatalf("withoutCookie = %q", got)
	}
	if v, ok := cookieValue(got, "__session"); v != "" || !ok {
		t.Fatalf("the rewritten header still holds %q (ok %v)", v, ok)
	}
}

// BenchmarkCookieValue reads a token cookie from a browser's cookie
// header: the work a cached check with a cookie source does to find it.
func BenchmarkCookieValue(b *testing.B) {
	h := "__client_uat=1733000000; _ga=GA1.1.1234567890.1733000000; _ga_XYZ=GS1.1.1733000000.1.1.1733000001.0.0.0; theme=dark; " +
		strings.Repeat("pref=abcdefghij0123456789; ", 40) + "__session=eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	b.ReportAllocs()
	for b.Loop() {
		if v, ok := cookieValue(h, "__session"); !ok || v == "" {
			b.Fatal("not found")
		}
	}
}
