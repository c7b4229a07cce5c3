package extauthz_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/extauthz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// benchEnv is an engine on the real clock, as in production.
func benchEnv(b *testing.B, signers []*issuer.Signer, opts ...authztest.Option) *authztest.Env {
	return authztest.New(b, signers, append(opts, authztest.RealClock())...)
}

// marshaled returns the realistic request with the i-th token and request
// id of the pools, marshaled, for every i up to the larger pool: what Envoy
// sends, made before the clock starts.
func marshaled(b *testing.B, s *authv3.CheckRequest, toks, ids []string) []mem.BufferSlice {
	h := s.Attributes.Request.Http.Headers
	out := make([]mem.BufferSlice, max(len(toks), len(ids), 1))
	for i := range out {
		if toks != nil {
			h["authorization"] = toks[i%len(toks)]
		}
		if ids != nil {
			h["x-request-id"] = ids[i%len(ids)]
		}
		m, err := proto.Marshal(s)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = mem.BufferSlice{mem.SliceBuffer(m)} // as gRPC hands a request to the codec
	}
	return out
}

// run checks the realistic request b.N times, with the i-th token and
// request id of the pools, in-process, the way the gRPC path does: the
// codec's wire read, the engine, and the encoded CheckResponse.
func run(b *testing.B, s *authv3.CheckRequest, srv *extauthz.Server, toks, ids []string, want codes.Code) {
	reqs := marshaled(b, s, toks, ids)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if code := srv.CheckBytes(ctx, reqs[i%len(reqs)]); codes.Code(code) != want {
			b.Fatalf("check %d: %v", i, codes.Code(code))
		}
	}
}

// benchIntrospector answers every token active, as an introspection
// endpoint would once: the cached benchmarks never ask it again.
type benchIntrospector struct{ iss string }

func (bi benchIntrospector) Introspect(context.Context, string) (map[string]any, error) {
	return map[string]any{"active": true, "iss": bi.iss, "sub": "user_2000000000000000000000000000000", "token_type": "access_token",
		"exp": time.Now().Add(time.Hour).Unix(), "scope": "read"}, nil
}

func BenchmarkCheck(b *testing.B) {
	// A few distinct requests, hot in the CPU's caches as a request just
	// received is: a pool of thousands of 3 KB requests would measure
	// memory misses instead.
	ids := authztest.RequestIDs(64)
	b.Run("cached", func(b *testing.B) {
		e := benchEnv(b, nil)
		toks := e.Bearers(e.IdP.Signing(), 1)
		srv := extauthz.NewServer(e.Eng)
		req := authztest.BrowserRequest(b, toks[0], "")
		srv.Check(context.Background(), req)
		run(b, req, srv, nil, ids, codes.OK)
	})
	b.Run("cached-nometadata", func(b *testing.B) {
		// cached with metadata: false: what a cached check costs without
		// the dynamic metadata every allow carries by default.
		e := benchEnv(b, nil, authztest.Option(func(_ *authz.Config, p *authz.ProviderConfig) { p.NoMetadata = true }))
		toks := e.Bearers(e.IdP.Signing(), 1)
		srv := extauthz.NewServer(e.Eng)
		req := authztest.BrowserRequest(b, toks[0], "")
		srv.Check(context.Background(), req)
		run(b, req, srv, nil, ids, codes.OK)
	})
	b.Run("cached-metadata", func(b *testing.B) {
		// The provider sends two metadata claims beside sub, iss and
		// provider: encoded once per grant, copied on each hit.
		e := benchEnv(b, nil, authztest.Option(func(_ *authz.Config, p *authz.ProviderConfig) { p.MetadataClaims = []string{"org", "tier"} }))
		runCachedToken(b, e, jwt.MapClaims{"org": "org_2abcdefghijkl", "tier": "enterprise"}, ids)
	})
	// cached-cel: one rule with a condition on a claim and the method
	// (the grant keeps org as a CEL value, each hit evaluates the
	// program); cached-cel-base: the same token on the same rule without
	// the condition, what cached-cel adds to.
	for _, when := range []string{`claims.org == "acme" && request.method in ["GET","HEAD"]`, ""} {
		name := "cached-cel"
		if when == "" {
			name = "cached-cel-base"
		}
		b.Run(name, func(b *testing.B) { benchCondition(b, when, ids) })
	}
	b.Run("cached-opaque", func(b *testing.B) {
		// An opaque token (Hydra's shape) of an introspection provider
		// beside the JWT one, its grant cached: no call, no key to check.
		const iss = "https://hydra.example.com/"
		e := benchEnv(b, nil, authztest.Option(func(c *authz.Config, _ *authz.ProviderConfig) {
			c.Providers = append(c.Providers, authz.ProviderConfig{Name: "hydra", Issuer: iss, Introspector: benchIntrospector{iss}, IntrospectionCacheTTL: time.Minute})
		}))
		srv := extauthz.NewServer(e.Eng)
		req := authztest.BrowserRequest(b, "Bearer ory_at_kq3HfP9xZ0sY1c8VbWn2Lm4Rt6Ue7Io5Pa3Sd1Fg0Hj.Xc2Vb4Nm6Kl8Jh0Gf2Ds4Aq6Wz8Ex0Rc2Tv4By6Un8Mi", "")
		srv.Check(context.Background(), req)
		run(b, req, srv, nil, ids, codes.OK)
	})
	b.Run("cached-traced", func(b *testing.B) {
		// The realistic request carries a sampled traceparent: each check
		// records a Check span, exported (to nowhere) as it ends.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
		b.Cleanup(func() { tp.Shutdown(context.Background()) })
		tr := extauthz.NewTracing(tp)
		e := benchEnv(b, nil, authztest.Option(func(c *authz.Config, _ *authz.ProviderConfig) { c.Tracer = tr }))
		toks := e.Bearers(e.IdP.Signing(), 1)
		srv := extauthz.NewServer(e.Eng, extauthz.WithTracing(tr))
		req := authztest.BrowserRequest(b, toks[0], "")
		srv.Check(context.Background(), req)
		run(b, req, srv, nil, ids, codes.OK)
	})
	b.Run("cached-10-rules-3-providers", func(b *testing.B) {
		// A token of the third provider on a route only the tenth rule
		// matches: every rule and provider is passed over on each check.
		one, two := issuer.NewServer(), issuer.NewServer()
		b.Cleanup(one.Close)
		b.Cleanup(two.Close)
		e := benchEnv(b, nil, authztest.Option(func(c *authz.Config, _ *authz.ProviderConfig) {
			for i, idp := range []*issuer.Server{one, two} {
				c.Providers = append(c.Providers, authz.ProviderConfig{Name: fmt.Sprint("other", i), Issuer: idp.URL,
					Keys:         authztest.RunSource(b, jwks.Config{Name: "o", Issuer: idp.URL, URL: idp.JWKSURL()}, true),
					TokenSources: []authz.TokenSource{{Header: fmt.Sprint("x-token-", i)}, {Cookie: fmt.Sprint("tok", i)}}})
			}
			for i := range 9 {
				c.Rules = append(c.Rules, authz.RuleConfig{Match: authz.Match{PathPrefix: fmt.Sprint("/r", i, "/"), Methods: []string{"POST"}, Hosts: []string{"*.internal"}},
					Require: authz.Require{Providers: []string{"other0"}, Scopes: []string{"s"}}})
			}
			c.Rules = append(c.Rules, authz.RuleConfig{Match: authz.Match{PathPrefix: "/v1/"}, Require: authz.Require{Providers: []string{"test"}}})
		}))
		toks := e.Bearers(e.IdP.Signing(), 1)
		srv := extauthz.NewServer(e.Eng)
		req := authztest.BrowserRequest(b, toks[0], "")
		srv.Check(context.Background(), req)
		run(b, req, srv, nil, ids, codes.OK)
	})
	for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
		b.Run("uncached-"+alg, func(b *testing.B) {
			s := issuer.MustSigner(alg)
			// A cache of one entry and a pool of distinct tokens: every
			// check verifies a signature.
			e := benchEnv(b, []*issuer.Signer{s}, authztest.Option(func(c *authz.Config, _ *authz.ProviderConfig) { c.CacheSize = 1 }))
			toks := e.Bearers(s, 512)
			run(b, authztest.BrowserRequest(b, "", ""), extauthz.NewServer(e.Eng), toks, nil, codes.OK)
		})
	}
	b.Run("denied-no-token", func(b *testing.B) {
		e := benchEnv(b, nil)
		run(b, authztest.BrowserRequest(b, "", ""), extauthz.NewServer(e.Eng), nil, ids, codes.Unauthenticated)
	})
	b.Run("denied-garbage", func(b *testing.B) {
		e := benchEnv(b, nil)
		run(b, authztest.BrowserRequest(b, "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln", ""), extauthz.NewServer(e.Eng), nil, ids, codes.Unauthenticated)
	})
	b.Run("dedup-hit", func(b *testing.B) {
		// Twins of earlier checks (same x-request-id, token and route)
		// whose tokens the token cache no longer holds.
		e := benchEnv(b, nil, authztest.Option(func(c *authz.Config, _ *authz.ProviderConfig) { c.CacheSize = 1 }))
		toks := e.Bearers(e.IdP.Signing(), 512)
		ids := authztest.RequestIDs(len(toks))
		srv := extauthz.NewServer(e.Eng)
		req := authztest.BrowserRequest(b, "", "")
		for i := range toks {
			req.Attributes.Request.Http.Headers["authorization"] = toks[i]
			req.Attributes.Request.Http.Headers["x-request-id"] = ids[i]
			srv.Check(context.Background(), req)
		}
		run(b, req, srv, toks, ids, codes.OK)
	})
}

func BenchmarkCheckParallel(b *testing.B) {
	b.Run("cached", func(b *testing.B) {
		e := benchEnv(b, nil)
		toks := e.Bearers(e.IdP.Signing(), 1)
		srv := extauthz.NewServer(e.Eng)
		req := authztest.BrowserRequest(b, toks[0], "")
		srv.Check(context.Background(), req)
		reqs := marshaled(b, req, nil, authztest.RequestIDs(64))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if code := srv.CheckBytes(context.Background(), reqs[i%len(reqs)]); code != 0 {
					b.Fatal(codes.Code(code))
				}
			}
		})
	})
}

// benchCondition checks a cached token whose org is acme on one rule whose
// require.when is when ("": none).
func benchCondition(b *testing.B, when string, ids []string) {
	e := benchEnv(b, nil, authztest.Option(func(c *authz.Config, _ *authz.ProviderConfig) {
		c.Rules = []authz.RuleConfig{{Require: authz.Require{When: when}}}
	}))
	runCachedToken(b, e, jwt.MapClaims{"org": "acme"}, ids)
}

// runCachedToken signs a token of e's IdP with a subject, an hour to live
// and the claims extra, has it verified by one check, then benchmarks the
// checks of it that the token cache answers.
func runCachedToken(b *testing.B, e *authztest.Env, extra jwt.MapClaims, ids []string) {
	claims := jwt.MapClaims{"iss": e.IdP.URL, "sub": "user_2000000000000000000000000000000", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	maps.Copy(claims, extra)
	tok, err := e.IdP.Signing().Sign(claims)
	if err != nil {
		b.Fatal(err)
	}
	srv := extauthz.NewServer(e.Eng)
	req := authztest.BrowserRequest(b, "Bearer "+tok, "")
	srv.Check(context.Background(), req)
	run(b, req, srv, nil, ids, codes.OK)
}
