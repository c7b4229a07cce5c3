package authz

import (
	"testing"
)

// BenchmarkCondition is one require.when on a cached grant's CEL values:
// what BenchmarkCheck/cached-cel adds to a cached check.
func BenchmarkCondition(b *testing.B) {
	c, err := compileCondition(`claims.org == "acme" && request.method in ["GET","HEAD"]`, false)
	if err != nil {
		b.Fatal(err)
	}
	p := &provider{name: "p"}
	n := &celNeeds{}
	n.add(c)
	g := &Grant{p: p, extra: &grantExtra{cel: newCELGrant(n, p, map[string]any{"org": "acme", "sub": "x"}, nil)}}
	r := &Request{Method: "GET", Host: "h", Path: "/x", Headers: MapHeaders{}}
	b.ReportAllocs()
	for b.Loop() {
		if !c.holds(r, g) {
			b.Fatal("false")
		}
	}
}
