package authz_test

import (
	"context"
	"testing"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
)

// (BenchmarkCheck, the gRPC path with the engine, is extauthz's.)

// BenchmarkEngineCheck is the core alone on a cached token: a Request whose
// headers are the browser request's, no wire read, no CheckResponse.
func BenchmarkEngineCheck(b *testing.B) {
	e := authztest.New(b, nil, authztest.RealClock())
	toks := e.Bearers(e.IdP.Signing(), 1)
	req := authztest.BrowserRequest(b, toks[0], "")
	h := req.Attributes.Request.Http
	r := &authz.Request{Method: h.Method, Host: h.Host, Path: h.Path, RequestID: h.Headers["x-request-id"], Headers: authz.MapHeaders(h.Headers)}
	ctx := context.Background()
	e.Eng.Check(ctx, r)
	b.ReportAllocs()
	for b.Loop() {
		if d := e.Eng.Check(ctx, r); !d.Allow {
			b.Fatal(d.Reason)
		}
	}
}
