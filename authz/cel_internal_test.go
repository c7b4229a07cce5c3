package authz

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// TestCompileConditionErrors: what compileCondition refuses, and where it
// says the problem is.
func TestCompileConditionErrors(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		inMatch bool
		want    string // in the error
	}{
		{name: "syntax error", expr: `claims.org == "acme" &&`, want: "column 24: "},
		{name: "syntax error on a second line", expr: "claims.org == \"acme\" &&\n  (", want: "line 2, column 4: "},
		{name: "not a bool", expr: `claims.org`, want: "dyn is not a bool"},
		{name: "a string", expr: `request.method + "x"`, want: "string is not a bool"},
		{name: "unknown variable", expr: `claim.org == "acme"`, want: "column 1: undeclared reference to 'claim'"},
		{name: "unknown request attribute", expr: `request.port == "443"`, want: "undeclared reference to 'request'"},
		{name: "wrong type", expr: `request.method == 1`, want: "found no matching overload for '_==_'"},
		{name: "claims in match.when", expr: `request.path == "/x" || claims.org == "acme"`, inMatch: true, want: "column 25: claims is not available in match.when"},
		{name: "scopes in match.when", expr: `"admin" in scopes`, inMatch: true, want: "scopes is not available in match.when"},
		{name: "provider in match.when", expr: `provider == "auth0"`, inMatch: true, want: "provider is not available in match.when"},
		{name: "headers listed", expr: `request.headers.exists(k, k.startsWith("x-"))`, want: "column 1: request.headers can only be read by name"},
		{name: "headers counted", expr: `size(request.headers) > 2`, want: "request.headers can only be read by name"},
		{name: "over the cost limit", expr: `claims.a.all(x, claims.b.all(y, x == y))`, want: "more than the limit of 1000000"},
		{name: "nested comprehension over the query", expr: `request.query.all(k, request.query.all(j, request.query[k] == request.query[j]))`, want: "more than the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileCondition(tt.expr, tt.inMatch)
			if err == nil || !errors.Is(err, errCondition) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}

// TestConditionReads: which claims a condition makes grants keep.
func TestConditionReads(t *testing.T) {
	tests := []struct {
		expr           string
		claims         []string
		all, sc, provd bool
	}{
		{expr: `claims.org == "acme"`, claims: []string{"org"}},
		{expr: `claims["org"] == "acme" && has(claims.roles)`, claims: []string{"org", "roles"}},
		{expr: `claims.o.rol == "admin"`, claims: []string{"o"}},
		{expr: `"admin" in claims.roles && "read" in scopes`, claims: []string{"roles"}, sc: true},
		{expr: `provider == "auth0" && request.method == "GET"`, provd: true},
		{expr: `claims.exists(k, k == "org")`, all: true},
		{expr: `size(claims) > 3`, all: true},
		{expr: `claims[request.headers["x-claim"]] == "1"`, all: true},
		{expr: `"org" in claims`, claims: []string{"org"}},
		{expr: `request.headers["x"] in claims`, all: true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			c, err := compileCondition(tt.expr, false)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.claims, tt.claims) || c.allClaims != tt.all || c.scopes != tt.sc || c.provider != tt.provd {
				t.Errorf("claims %v all %v scopes %v provider %v, want %v %v %v %v", c.claims, c.allClaims, c.scopes, c.provider, tt.claims, tt.all, tt.sc, tt.provd)
			}
		})
	}
}

// TestCELValue: claims become CEL values as JSON reads them, whole numbers
// as ints; from a JWT's raw members and from an introspection answer alike.
func TestCELValue(t *testing.T) {
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal([]byte(`{"s":"x","n":42,"f":1.5,"big":1e300,"b":true,"z":null,"l":["a",1],"o":{"k":"v"}}`), &raw); err != nil {
		t.Fatal(err)
	}
	var native map[string]any
	if err := json.Unmarshal([]byte(`{"s":"x","n":42,"f":1.5,"big":1e300,"b":true,"z":null,"l":["a",1],"o":{"k":"v"}}`), &native); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]func(k string) any{"raw": func(k string) any { return raw[k] }, "native": func(k string) any { return native[k] }} {
		t.Run(name, func(t *testing.T) {
			if v := celValue(in("s")); v != types.String("x") {
				t.Errorf("s: %v", v)
			}
			if v := celValue(in("n")); v != types.Int(42) {
				t.Errorf("n: %v (%T)", v, v)
			}
			if v := celValue(in("f")); v != types.Double(1.5) {
				t.Errorf("f: %v", v)
			}
			if v := celValue(in("big")); v != types.Double(1e300) {
				t.Errorf("big: %v", v)
			}
			if v := celValue(in("b")); v != types.True {
				t.Errorf("b: %v", v)
			}
			if v := celValue(in("z")); v != types.NullValue {
				t.Errorf("z: %v", v)
			}
			if v := celValue(in("l")); v.Equal(types.NewDynamicList(types.DefaultTypeAdapter, []any{"a", 1})) != types.True {
				t.Errorf("l: %v", v)
			}
			if v := celValue(in("o")); v.Equal(types.NewStringStringMap(types.DefaultTypeAdapter, map[string]string{"k": "v"})) != types.True {
				t.Errorf("o: %v", v)
			}
		})
	}
	if v := celValue(json.RawMessage(`{`)); v != nil {
		t.Errorf("bad JSON: %v, want nil", v)
	}
}

// FuzzCELCondition compiles arbitrary expressions in both places and runs
// those that compile on a grant and a request: never a panic, and an
// expression that fails to compile or to run never allows.
func FuzzCELCondition(f *testing.F) {
	for _, s := range []string{
		`claims.org == "acme" && request.method in ["GET","HEAD"]`,
		`claims.roles.exists(r, r.startsWith("adm"))`,
		`request.path.matches("^/v[0-9]+/") || "x" in request.query`,
		`request.headers["x-a"].split(",").size() > 1`,
		`size(claims) > 1 && claims.n + 1 > 2`,
		`"read" in scopes && provider == "p" && request.host.endsWith(".example.com")`,
		`claims.o.k == "v" && has(claims.l)`,
		`[1,2,3].map(x, x * 2)[5] == 1`,
		`claims.n / 0 == 1`,
		`request.query["q"].all(a, request.query["q"].all(b, a == b))`,
		// Split, then written back and compiled again: literals, escapes,
		// macros, a ternary, a shadowed name.
		`claims.org == "a\"b\u00e9\n" && r'\d' != claims.org && request.method == "GET"`,
		`(claims.n > 1 ? claims.org : 'x') == "acme" && request.path != "" && b"\x00" != bytes(claims.org)`,
		`claims.l.exists_one(x, x == 1) && !(request.host in ["a", "b"]) && claims.n in [7, 8u, 9.0]`,
		`claims.roles.exists(request, request == "admin") && "read" in scopes && request.query.size() >= 0`,
		`has(claims.o.k) && claims.o.k.matches("^v$") && request.headers["x-a"].contains(",")`,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	p := &provider{name: "p"}
	raw := map[string]json.RawMessage{"org": json.RawMessage(`"acme"`), "roles": json.RawMessage(`["admin","x"]`), "n": json.RawMessage(`7`),
		"o": json.RawMessage(`{"k":"v"}`), "l": json.RawMessage(`[1,"a",null,{"z":[]}]`)}
	r := &Request{Method: "GET", Host: "api.example.com:443", Path: "/v1/x?q=1&q=2&x", Headers: MapHeaders{"x-a": "1,2"}}
	f.Fuzz(func(t *testing.T, expr string, inMatch bool) {
		c, err := compileCondition(expr, inMatch)
		if err != nil {
			if c != nil || !errors.Is(err, errCondition) {
				t.Fatalf("%q: condition %v, error %v", expr, c, err)
			}
			return
		}
		var n celNeeds
		n.add(c)
		g := &Grant{p: p, extra: &grantExtra{cel: newCELGrant(&n, 1, p, raw, []string{"read"})}}
		if inMatch {
			g = nil
		}
		out := c.test(r, "/v1/x", inMatch, g)
		if out != types.True && out != types.False && !types.IsError(out) {
			t.Fatalf("%q: %v", expr, out)
		}
		if inMatch {
			return
		}
		// Split or whole, under the grant's policy or another: the same.
		out = c.test(r, "", false, g)
		for _, gen := range []uint64{1, 2} {
			if held := c.holds(r, g, gen); held != (out == types.True) {
				t.Fatalf("%q (token part %q, rest %q), generation %d: holds %v, evaluated whole %v", expr, partOf(c.token), partOf(c.rest), gen, held, out)
			}
		}
	})
}

// TestConditionMetered: a condition whose cost cannot grow with what it
// reads runs unmetered (its estimate bounds it); any other is metered and
// stopped at the limit.
func TestConditionMetered(t *testing.T) {
	for expr, want := range map[string]bool{
		`claims.org == "acme" && request.method in ["GET", "HEAD"]`: false,
		`request.path.startsWith("/api/") && provider == "p"`:       false,
		`"read" in scopes`:                             true, // a search of the list
		`claims.roles.exists(r, r == "admin")`:         true,
		`request.path.matches("^/v[0-9]+/")`:           true,
		`request.headers["x-a"].split(",").size() > 1`: true,
	} {
		c, err := compileCondition(expr, false)
		if err != nil {
			t.Fatal(err)
		}
		if c.metered != want {
			t.Errorf("%s: metered %v, want %v", expr, c.metered, want)
		}
	}
}

// TestConditionRuntimeLimits: a metered condition that exceeds the cost
// limit at run time, or runs past ConditionTimeLimit, fails: never true.
func TestConditionRuntimeLimits(t *testing.T) {
	const expr = `!request.headers["x"].split(",").exists(v, v == "b")`
	c, err := compileConditionLimit(expr, false, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	small, err := compileConditionLimit(`!request.query["q"].exists(v, v == "b")`, true, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	// The same program with a limit the test can reach.
	envs, _ := celEnvs()
	a, iss := envs[1].Compile(`!request.query["q"].exists(v, v == "b")`)
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	if small.prg, err = envs[1].Program(a, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(20), cel.InterruptCheckFrequency(conditionInterruptEvery)); err != nil {
		t.Fatal(err)
	}
	g := &Grant{p: &provider{name: "p"}}
	tests := []struct {
		name string
		c    *condition
		r    *Request
		want ref.Val
	}{
		{name: "under the cost limit", c: small, r: &Request{Path: "/x?q=a&q=a"}, want: types.True},
		{name: "over the cost limit", c: small, r: &Request{Path: "/x?" + strings.Repeat("q=a&", 20)}},
		{name: "short", c: c, r: &Request{Headers: MapHeaders{"x": "a,a"}}, want: types.True},
		{name: "past the time limit", c: c, r: &Request{Headers: MapHeaders{"x": strings.Repeat("a,", 32000)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.c.metered {
				t.Fatal("not metered")
			}
			var gg *Grant
			if tt.c == c {
				gg = g
			}
			got := tt.c.test(tt.r, "/x", tt.c == small, gg)
			if tt.want != nil && got != tt.want || tt.want == nil && !types.IsError(got) {
				t.Fatalf("%v, want %v", got, tt.want)
			}
		})
	}
}

// partOf is c's expression, "" for none.
func partOf(c *condition) string {
	if c == nil {
		return ""
	}
	return c.expr
}

// TestConditionSplit: a require.when's clauses that read the token alone
// are its token part, the others (any that names request, even as a loop
// variable) its rest; with none of the former it is not split, with none
// of the latter it is its own token part.
func TestConditionSplit(t *testing.T) {
	for _, tt := range []struct{ expr, token, rest string }{
		{`claims.org == "acme" && request.method in ["GET","HEAD"]`, `(claims.org == "acme")`, `(request.method in ["GET", "HEAD"])`},
		{`request.method == "GET" && "read" in scopes && (provider == "p" && claims.n > 1) && request.host != ""`,
			`("read" in scopes) && (provider == "p") && (claims.n > 1)`, `(request.method == "GET") && (request.host != "")`},
		{`claims.roles.exists(r, r == "admin") && has(request.headers.x)`, `(claims.roles.exists(r, r == "admin"))`, `(has(request.headers.x))`},
		{`claims.roles.exists(request, request == "admin") && request.path != ""`, ``, ``}, // a loop variable named request
		{`claims.org == "acme" || request.method == "GET"`, ``, ``},
		{`request.method == "GET" && request.path.startsWith("/a")`, ``, ``},
		{`claims.org == "acme" && "read" in scopes`, `claims.org == "acme" && "read" in scopes`, ``},
		{`claims.org == "acme"`, `claims.org == "acme"`, ``},
		{`claims.tenant == request.headers["x-tenant"] && size(claims) > 2`, `(size(claims) > 2)`, `(claims.tenant == request.headers["x-tenant"])`},
	} {
		c, err := compileCondition(tt.expr, false)
		if err != nil {
			t.Fatal(err)
		}
		if tok, rest := partOf(c.token), partOf(c.rest); tok != tt.token || rest != tt.rest {
			t.Errorf("%s: token part %q, rest %q; want %q, %q", tt.expr, tok, rest, tt.token, tt.rest)
		}
	}
	c, err := compileCondition(`claims.org == "acme" && request.method == "GET"`, true)
	if err == nil || c != nil {
		t.Fatalf("match.when reading claims: %v, %v", c, err)
	}
	c, err = compileCondition(`request.path != "" && request.method == "GET"`, true)
	if err != nil || c.token != nil {
		t.Fatalf("match.when: %v, split %v", err, c.token)
	}
}
