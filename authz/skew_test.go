package authz_test

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/authz"
)

// With ClockSkew 0 a token is refused from its exp on, and neither the
// token cache nor the request dedup keeps an allow made before it: 2 s past
// exp the answer is "expired" whichever path the check takes.
func TestZeroSkewEndsGrantsAtExp(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) { c.ClockSkew = 0 }))
	exp := e.clock.Now().Add(5 * time.Second).Unix()
	cached := "Bearer " + e.token(jwt.MapClaims{"sub": "cached", "exp": exp})
	shared := "Bearer " + e.token(jwt.MapClaims{"sub": "shared", "exp": exp}) // first checked with a request id
	expired := "Bearer " + e.token(jwt.MapClaims{"sub": "late", "exp": e.clock.Now().Add(-2 * time.Second).Unix()})
	if resp := e.check(expired); codes.Code(resp.Status.Code) != codes.Unauthenticated {
		t.Errorf("a token 2 s past exp: %v, want a denial", resp.Status)
	}
	for _, req := range [][2]string{{cached, ""}, {shared, "req-1"}} {
		if resp := e.send(browserRequest(t, req[0], req[1])); codes.Code(resp.Status.Code) != codes.OK {
			t.Fatalf("before exp, request id %q: %v", req[1], resp.Status)
		}
	}
	e.clock.Add(7 * time.Second) // exp + 2 s
	for _, req := range [][2]string{{cached, ""}, {cached, "req-2"}, {shared, "req-1"}} {
		resp := e.send(browserRequest(t, req[0], req[1]))
		if codes.Code(resp.Status.Code) != codes.Unauthenticated || resp.Status.Message != "expired" {
			t.Errorf("2 s past exp, request id %q: %v, want expired", req[1], resp.Status)
		}
	}
}
