package authz

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// BenchmarkCondition is one require.when on a cached grant's CEL values:
// what BenchmarkCheck/cached-cel adds to a cached check (split: the claim
// was compared when the grant was made, the method is on each check);
// the same condition on a grant made under another policy, evaluated
// whole (whole); and a condition on the token alone (token-only).
func BenchmarkCondition(b *testing.B) {
	for _, tt := range []struct {
		name, when string
		gen        uint64 // the policy's; the grant's is 1
	}{
		{"split", `claims.org == "acme" && request.method in ["GET","HEAD"]`, 1},
		{"whole", `claims.org == "acme" && request.method in ["GET","HEAD"]`, 2},
		{"token-only", `claims.org == "acme"`, 1},
	} {
		b.Run(tt.name, func(b *testing.B) {
			c, err := compileCondition(tt.when, false)
			if err != nil {
				b.Fatal(err)
			}
			p := &provider{name: "p"}
			n := &celNeeds{}
			n.add(c)
			g := &Grant{p: p, extra: &grantExtra{cel: newCELGrant(n, 1, p, map[string]any{"org": "acme", "sub": "x"}, nil)}}
			r := &Request{Method: "GET", Host: "h", Path: "/x", Headers: MapHeaders{}}
			b.ReportAllocs()
			for b.Loop() {
				if !c.holds(r, g, tt.gen) {
					b.Fatal("false")
				}
			}
		})
	}
}

// BenchmarkCELGrantMemory reports the live heap per cached token (B/token)
// of a token with a typical payload (14 claims, 560 bytes of JSON) under
// rules without a condition, with one that reads one claim by name, and
// with one that reads claims whole, which makes every grant keep every
// claim as a CEL value:
//
//	go test -run '^$' -bench CELGrantMemory ./authz
func BenchmarkCELGrantMemory(b *testing.B) {
	for _, tt := range []struct{ name, when string }{
		{"none", ""},
		{"one-claim", `claims.org == "acme"`},
		{"whole-claims", `claims.exists(k, k == "org")`},
	} {
		b.Run(tt.name, func(b *testing.B) {
			var per float64
			for b.Loop() {
				per = celBytesPerToken(b, 100_000, tt.when)
			}
			b.ReportMetric(per, "B/token")
		})
	}
}

func celBytesPerToken(t testing.TB, n int, when string) float64 {
	return grantBytesPerToken(t, n, when, func(i int, now time.Time) map[string]json.RawMessage {
		var m map[string]json.RawMessage
		s := fmt.Sprintf(`{"iss":"https://p","sub":"user_2%027d","aud":["https://api.example.com"],"exp":%d,"iat":%d,"nbf":%d,`+
			`"azp":"https://app.example.com","jti":"%032d","org":"acme","org_role":"admin","email":"user%d@example.com",`+
			`"roles":["reader","writer","billing"],"permissions":["read:orders","write:orders"],"sid":"sess_2%027d"}`,
			i, now.Add(time.Hour).Unix(), now.Unix(), now.Unix(), i, i, i)
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	})
}
