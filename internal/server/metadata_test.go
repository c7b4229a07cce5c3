package server

import (
	"context"
	"os"
	"reflect"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// Through the whole server over gRPC: an allow carries the dynamic metadata
// the provider's metadata_claims name, a denial its reason and provider, a
// provider with metadata: false none; a reload that changes
// metadata_claims changes what the next check of a cached token says.
func TestDynamicMetadataThroughTheServer(t *testing.T) {
	one, two := issuer.NewServer(), issuer.NewServer()
	defer one.Close()
	defer two.Close()
	file := func(claims string) string {
		return "providers:\n  - {name: one, issuer: " + one.URL + ", metadata_claims: " + claims + "}\n" +
			"  - {name: two, issuer: " + two.URL + ", metadata: false}\n" +
			"rules:\n  - {match: {path_prefix: /public/}, action: allow}\n"
	}
	path := writeFile(t, file("[org, tier, o.rol]"))
	a := startApp(t, true, "--config", path)
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	mint := func(idp *issuer.Server, claims jwt.MapClaims) string {
		tok, err := idp.Mint(claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint(one, jwt.MapClaims{"sub": "u1", "org": "acme", "tier": 2, "o": map[string]any{"rol": "admin"}})
	expired := mint(one, jwt.MapClaims{"sub": "u1", "iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()})
	twoGood := mint(two, jwt.MapClaims{"sub": "u2"})
	twoExpired := mint(two, jwt.MapClaims{"sub": "u2", "iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()})
	check := func(name, tok, path string, code codes.Code, want map[string]any) {
		t.Helper()
		for i := range 2 { // verified, then from a cache
			resp, err := client.Check(context.Background(), checkReq(tok, path))
			if err != nil {
				t.Fatal(err)
			}
			if got := codes.Code(resp.Status.Code); got != code {
				t.Fatalf("%s, check %d: %v, want %v", name, i, got, code)
			}
			var got map[string]any
			if resp.DynamicMetadata != nil {
				got = resp.DynamicMetadata.AsMap()
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s, check %d: metadata %v, want %v", name, i, got, want)
			}
		}
	}
	check("allow", good, "/x", codes.OK, map[string]any{"sub": "u1", "iss": one.URL, "provider": "one", "org": "acme", "tier": 2.0, "o.rol": "admin"})
	check("denial", expired, "/x", codes.Unauthenticated, map[string]any{"reason": "expired", "provider": "one"})
	check("metadata: false, allow", twoGood, "/x", codes.OK, nil)
	check("metadata: false, denial", twoExpired, "/x", codes.Unauthenticated, nil)
	check("no token", "", "/x", codes.Unauthenticated, map[string]any{"reason": "no_token"})
	check("public", "", "/public/x", codes.OK, map[string]any{"reason": "public"})

	if err := os.WriteFile(path, []byte(file("[org]")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.reload("test"); err != nil {
		t.Fatal(err)
	}
	check("allow after the reload", good, "/x", codes.OK, map[string]any{"sub": "u1", "iss": one.URL, "provider": "one", "org": "acme"})
}
