package extauthz_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/extauthz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
)

// TestCachedConditionAllocates: a cached check allocates once (its
// response), on a rule with match.when and require.when as without: the
// condition's evaluation builds nothing, and the request does not escape
// to the heap through it.
func TestCachedConditionAllocates(t *testing.T) {
	if extauthz.RaceEnabled {
		t.Skip("allocations are not counted under the race detector")
	}
	allocs := func(t *testing.T, rules []authz.RuleConfig) float64 {
		e := authztest.New(t, nil, authztest.RealClock(), authztest.Option(func(c *authz.Config, _ *authz.ProviderConfig) { c.Rules = rules }))
		tok, err := e.IdP.Signing().Sign(jwt.MapClaims{"iss": e.IdP.URL, "sub": "user_1", "org": "acme", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		srv := extauthz.NewServer(e.Eng)
		req := authztest.BrowserRequest(t, "Bearer "+tok, "")
		srv.Check(context.Background(), req)
		m, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := mem.BufferSlice{mem.SliceBuffer(m)}
		ctx := context.Background()
		return testing.AllocsPerRun(200, func() {
			if code := srv.CheckBytes(ctx, buf); code != 0 {
				t.Fatalf("code %d", code)
			}
		})
	}
	none := allocs(t, nil)
	plain := allocs(t, []authz.RuleConfig{{Match: authz.Match{PathPrefix: "/"}}})
	cond := allocs(t, []authz.RuleConfig{{Match: authz.Match{When: `request.method != "TRACE"`}, Require: authz.Require{When: `claims.org == "acme" && request.method in ["GET", "HEAD"]`}}})
	// One: the response's buffer. A Request that escapes to the heap is
	// another, with or without conditions.
	if none > 1 || plain != none || cond != none {
		t.Errorf("allocations per cached check: %v without rules, %v with a rule, %v with conditions; want 1 each", none, plain, cond)
	}
}
