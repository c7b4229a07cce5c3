package extauthz_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
)

// metadataOf returns the dynamic metadata of resp as plain values (nil if
// it has none), read with the real protobuf types from what went over the
// wire.
func metadataOf(resp *authv3.CheckResponse) map[string]any {
	if resp.DynamicMetadata == nil {
		return nil
	}
	return resp.DynamicMetadata.AsMap()
}

// Every check answers with the dynamic metadata of its decision (Envoy
// files it under envoy.filters.http.ext_authz), through gRPC and the
// encoded response, the first time and again when a cache answers.
func TestDynamicMetadata(t *testing.T) {
	withClaims := func(names ...string) authztest.Option {
		return func(_ *authz.Config, p *authz.ProviderConfig) { p.MetadataClaims = names }
	}
	noMetadata := authztest.Option(func(_ *authz.Config, p *authz.ProviderConfig) { p.NoMetadata = true })
	publicRules := authztest.Option(func(c *authz.Config, _ *authz.ProviderConfig) {
		c.Rules = []authz.RuleConfig{
			{Match: authz.Match{PathPrefix: "/public/"}, Action: authz.ActionAllow},
			{Match: authz.Match{PathPrefix: "/maybe/"}, Action: authz.ActionOptional},
			{Match: authz.Match{PathPrefix: "/admin/"}, Require: authz.Require{Scopes: []string{"admin"}}},
			{Match: authz.Match{PathPrefix: "/lenient/"}, Action: authz.ActionOptionalOrFailed},
		}
	})
	claims := jwt.MapClaims{"org": "acme", "tier": 3, "beta": false, "roles": []any{"a", "b"},
		"o": map[string]any{"id": "org_1", "rol": "admin"}}
	cases := []struct {
		name   string
		opts   []authztest.Option
		claims jwt.MapClaims // nil: no token
		bad    bool          // the token expired
		path   string        // "": the request's own
		want   map[string]any
		code   codes.Code
	}{
		{name: "allow, no metadata_claims", claims: claims,
			want: map[string]any{"sub": "user_1", "iss": "ISS", "provider": "test"}},
		{name: "allow with metadata_claims", opts: []authztest.Option{withClaims("org", "tier", "beta", "roles", "o.id", "o", "none", "absent")}, claims: claims,
			want: map[string]any{"sub": "user_1", "iss": "ISS", "provider": "test", "org": "acme", "tier": 3.0, "beta": false,
				"roles": []any{"a", "b"}, "o.id": "org_1", "o": map[string]any{"id": "org_1", "rol": "admin"}}},
		{name: "allow, claims absent", opts: []authztest.Option{withClaims("org", "tier")}, claims: jwt.MapClaims{},
			want: map[string]any{"sub": "user_1", "iss": "ISS", "provider": "test"}},
		{name: "allow, no sub", opts: []authztest.Option{withClaims("org")}, claims: jwt.MapClaims{"sub": nil, "org": "acme"},
			want: map[string]any{"iss": "ISS", "provider": "test", "org": "acme"}},
		{name: "metadata: false, allow", opts: []authztest.Option{noMetadata}, claims: claims},
		{name: "metadata: false, denial", opts: []authztest.Option{noMetadata}, claims: claims, bad: true, code: codes.Unauthenticated},
		{name: "denial of the provider's token", opts: []authztest.Option{withClaims("org")}, claims: claims, bad: true, code: codes.Unauthenticated,
			want: map[string]any{"reason": "expired", "provider": "test"}},
		{name: "denial by a rule", opts: []authztest.Option{publicRules}, claims: claims, path: "/admin/x", code: codes.PermissionDenied,
			want: map[string]any{"reason": "insufficient_scope", "provider": "test"}},
		{name: "no token", code: codes.Unauthenticated, want: map[string]any{"reason": "no_token"}},
		{name: "unknown issuer", claims: jwt.MapClaims{"iss": "https://other.example"}, code: codes.Unauthenticated,
			want: map[string]any{"reason": "wrong_issuer"}},
		{name: "public", opts: []authztest.Option{publicRules}, path: "/public/x", want: map[string]any{"reason": "public"}},
		{name: "public, metadata: false", opts: []authztest.Option{publicRules, noMetadata}, path: "/public/x", want: map[string]any{"reason": "public"}},
		{name: "anonymous", opts: []authztest.Option{publicRules}, path: "/maybe/x", want: map[string]any{"reason": "anonymous"}},
		{name: "failed open", opts: []authztest.Option{publicRules}, claims: claims, bad: true, path: "/lenient/x",
			want: map[string]any{"reason": "expired", "provider": "test"}},
		{name: "optional route with a token", opts: []authztest.Option{publicRules}, claims: claims, path: "/maybe/x",
			want: map[string]any{"sub": "user_1", "iss": "ISS", "provider": "test"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, tc.opts...)
			auth := ""
			if tc.claims != nil {
				c := jwt.MapClaims{}
				for k, v := range tc.claims {
					c[k] = v
				}
				if tc.bad {
					c["exp"] = e.Clock.Now().Add(-time.Hour).Unix()
					c["iat"] = e.Clock.Now().Add(-2 * time.Hour).Unix()
				}
				auth = "Bearer " + e.Token(c)
			}
			req := authztest.BrowserRequest(t, auth, "")
			if tc.path != "" {
				req.Attributes.Request.Http.Path = tc.path
			}
			var want map[string]any
			if tc.want != nil {
				want = map[string]any{}
				for k, v := range tc.want {
					if v == "ISS" {
						v = e.IdP.URL
					}
					want[k] = v
				}
			}
			for i := range 2 { // verified, then answered by a cache
				resp, err := e.client.Check(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if got := codes.Code(resp.Status.Code); got != tc.code {
					t.Fatalf("check %d: code %v, want %v", i, got, tc.code)
				}
				if got := metadataOf(resp); !reflect.DeepEqual(got, want) {
					t.Fatalf("check %d: metadata %v, want %v", i, got, want)
				}
			}
		})
	}
}

// Claim values go into the metadata as their JSON types, whatever they
// hold, escaped by the encoding; a value whose JSON text is over
// authz.MaxMetadataClaimSize, or nested deeper than authz.MaxMetadataDepth,
// is left out, and the check still allows.
func TestDynamicMetadataOddClaims(t *testing.T) {
	odd := map[string]any{
		"quotes":   `"}{\"`,
		"controls": "a\x00b\nc\x7f\u2028",
		"unicode":  "ünïcødé ✓ 𝄞",
		"empty":    "",
		"big":      1e300,
		"negative": -0.5,
		"integer":  float64(1 << 53),
		"list":     []any{"x", 1.0, true, nil, []any{}, map[string]any{"k": "v"}},
		"object":   map[string]any{"": "empty key", "a.b": "dotted key", "\"": "quote"},
		"fits":     strings.Repeat("f", authz.MaxMetadataClaimSize-2), // with its quotes: the limit
		"deep":     nest(authz.MaxMetadataDepth),
	}
	skipped := map[string]any{
		"toolong": strings.Repeat("t", authz.MaxMetadataClaimSize-1),
		"toodeep": nest(authz.MaxMetadataDepth + 1),
		"manynum": repeatList(1.0, authz.MaxMetadataClaimSize/2+1),
	}
	var names []string
	claims := jwt.MapClaims{}
	for k, v := range odd {
		names, claims[k] = append(names, k), v
	}
	for k, v := range skipped {
		names, claims[k] = append(names, k), v
	}
	e := newEnv(t, nil, func(_ *authz.Config, p *authz.ProviderConfig) { p.MetadataClaims = names })
	req := authztest.BrowserRequest(t, "Bearer "+e.Token(claims), "")
	want := map[string]any{"sub": "user_1", "iss": e.IdP.URL, "provider": "test"}
	for k, v := range odd {
		want[k] = v
	}
	for i := range 2 {
		resp, err := e.client.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status.Code != int32(codes.OK) {
			t.Fatalf("check %d: %v", i, resp.Status)
		}
		if got := metadataOf(resp); !reflect.DeepEqual(got, want) {
			t.Fatalf("check %d: metadata %v, want %v", i, got, want)
		}
		if w := structFromMap(t, want); !proto.Equal(w, resp.DynamicMetadata) {
			t.Fatalf("check %d: struct %v, want %v", i, resp.DynamicMetadata, w)
		}
	}
}

func nest(depth int) any {
	var v any = "bottom"
	for i := range depth {
		if i%2 == 0 {
			v = []any{v}
		} else {
			v = map[string]any{"n": v}
		}
	}
	return v
}

func repeatList(v any, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func structFromMap(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
