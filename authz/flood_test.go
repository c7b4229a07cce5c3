package authz_test

// Floods, cache pollution and size limits: what an attacker can grow stays
// bounded, and no amount of garbage displaces a valid token.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// floodBytesPerEntry is the documented bound (SECURITY.md) of what one unit
// of capacity of the negative cache or the dedup costs once garbage has
// churned through it, measured after a GC: the LRU entry with its value (a
// rejection is 16 bytes, a shared Decision about 200) and its two map slots,
// maps keeping the largest size they had. Measured: 530 to 550 bytes.
const floodBytesPerEntry = 1 << 10

// heapAfterGC returns the live heap once garbage is collected.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// floodTokens makes many distinct invalid tokens, of four kinds: garbage,
// an HMAC alg, an issuer nobody configured, and a published kid with a
// random signature (which costs a real verification, so it is the rarest).
// Tokens of one kind differ in their last segment only, which is as good as
// any for the caches (keyed by the hash of the whole token) and cheap.
type floodTokens struct {
	hmac, wrongIss, forged string // header.payload.
}

func newFloodTokens(a *attackEnv) *floodTokens {
	return &floodTokens{
		hmac:     b64(obj("alg", "HS256")) + "." + b64(obj("iss", a.iss)) + ".",
		wrongIss: b64(obj("alg", "ES256")) + "." + b64(obj("iss", "https://evil.example")) + ".",
		forged:   b64(hdr("ES256", a.es)) + "." + b64(a.claims()) + ".",
	}
}

// token returns the i-th token and the reason it must be denied for.
func (f *floodTokens) token(i int) (tok, reason string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(i))
	tail := base64.RawURLEncoding.EncodeToString(n[:])
	switch i % 64 {
	case 0:
		sig := make([]byte, 64)
		rand.Read(sig[8:])
		copy(sig, n[:])
		return f.forged + base64.RawURLEncoding.EncodeToString(sig), "bad_signature"
	case 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20:
		return f.hmac + tail, "alg_not_allowed"
	case 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40:
		return f.wrongIss + tail, "wrong_issuer"
	}
	return "Zmxvb2Q." + tail + ".eA", "malformed"
}

// TestFloodCannotEvictValidTokens: one valid token, then 200,000 distinct
// invalid ones. The valid token is still answered by the token cache, the
// negative cache and the dedup stay within their sizes, and the heap grows
// by no more than their bounded entries.
//
// The flood calls Engine.Check in-process (every 1000th over gRPC): 200,000
// gRPC round trips under -race would take minutes and test the transport,
// not the caches.
func TestFloodCannotEvictValidTokens(t *testing.T) {
	const flood, negSize, dedupSize = 200_000, 10_000, 10_000
	a := newAttackEnvWith(t, func(c *authz.Config) { c.NegativeCacheSize, c.DedupSize = negSize, dedupSize })
	valid := a.sign(t, a.es, a.claims())
	req := func(tok, id string) *authz.Request {
		return &authz.Request{Method: "GET", Host: "api.example.com", Path: "/v1/things", RequestID: id,
			Headers: authz.MapHeaders{"authorization": "Bearer " + tok, "x-request-id": id}}
	}
	ctx := context.Background()
	if d := a.eng.Check(ctx, req(valid, "")); !d.Allow {
		t.Fatalf("valid token: %v", d.Reason)
	}
	before := heapAfterGC()

	ft := newFloodTokens(a)
	base := browserRequest(t, "", "")
	var wg sync.WaitGroup
	errs := make(chan string, 1)
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < flood; i += workers {
				tok, want := ft.token(i)
				id := ""
				if i%2 == 0 {
					id = fmt.Sprintf("req-%d", i) // half of them fill the dedup too
				}
				got := ""
				if i%1000 == 0 {
					req := proto.Clone(base).(*authv3.CheckRequest)
					req.Attributes.Request.Http.Headers["authorization"] = "Bearer " + tok
					req.Attributes.Request.Http.Headers["x-request-id"] = id
					got = checkQuietly(a.env, req)
				} else if d := a.eng.Check(ctx, req(tok, id)); d.Allow {
					got = "ALLOWED"
				} else {
					got = d.Reason.String()
				}
				if got != want {
					select {
					case errs <- fmt.Sprintf("flood token %d: %s, want %s", i, got, want):
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if msg, ok := <-errs; ok {
		t.Fatal(msg)
	}

	after := heapAfterGC()
	d := a.eng.Check(ctx, req(valid, ""))
	if !d.Allow || !d.Cached {
		t.Fatalf("valid token after the flood: allow %v, cached %v (%v)", d.Allow, d.Cached, d.Reason)
	}
	if resp := a.check("Bearer " + valid); codes.Code(resp.Status.Code) != codes.OK {
		t.Fatalf("valid token over gRPC after the flood: %v", resp.Status)
	}
	st := a.eng.Stats()
	if st.Tokens.Size != 1 || st.Tokens.Evictions != 0 {
		t.Errorf("token cache: size %d, evictions %d; want 1, 0", st.Tokens.Size, st.Tokens.Evictions)
	}
	if st.Negative.Size > negSize || st.Dedup.Size > dedupSize {
		t.Errorf("negative cache %d entries (max %d), dedup %d (max %d)", st.Negative.Size, negSize, st.Dedup.Size, dedupSize)
	}
	growth := int64(after) - int64(before)
	bound := int64(floodBytesPerEntry * (negSize + dedupSize))
	t.Logf("flood of %d: heap %d → %d bytes (%+d; bound %d); negative cache %d entries, %d evictions; dedup %d entries; %.0f bytes per cached entry",
		flood, before, after, growth, bound, st.Negative.Size, st.Negative.Evictions, st.Dedup.Size, float64(growth)/float64(st.Negative.Size+st.Dedup.Size))
	if growth > bound {
		t.Errorf("heap grew by %d bytes, more than the documented %d", growth, bound)
	}
}

// TestUnknownKIDFloodCostsOneFetch: thousands of distinct unknown kids from
// 32 clients cost the IdP at most one JWKS request per cooldown, whether it
// answers or not, and are never remembered (a later rotation may add them).
func TestUnknownKIDFloodCostsOneFetch(t *testing.T) {
	for _, fault := range []issuer.Fault{issuer.OK, issuer.Fail} {
		t.Run(fmt.Sprint("fault ", fault), func(t *testing.T) {
			a := newAttackEnv(t)
			a.idp.SetFault(fault)
			before, negBefore := a.idp.JWKSRequests(), a.eng.Stats().Negative.Size
			const clients, each = 32, 32
			base := browserRequest(t, "", "")
			var wg sync.WaitGroup
			var mu sync.Mutex
			wrong := map[string]int{}
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req := proto.Clone(base).(*authv3.CheckRequest)
					for i := range each {
						tok := b64(obj("alg", "ES256", "kid", fmt.Sprintf("kid-%d-%d", c, i))) + "." + b64(a.claims()) + ".c2ln"
						req.Attributes.Request.Http.Headers["authorization"] = "Bearer " + tok
						if got := checkQuietly(a.env, req); got != "unknown_kid" {
							mu.Lock()
							wrong[got]++
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			if len(wrong) > 0 {
				t.Fatalf("decisions other than unknown_kid: %v", wrong)
			}
			n := a.idp.JWKSRequests() - before
			t.Logf("%d unknown kids cost the IdP %d JWKS requests", clients*each, n)
			if n > 1 {
				t.Errorf("%d JWKS requests, want at most 1 per cooldown", n)
			}
			if got := a.eng.Stats().Negative.Size; got != negBefore {
				t.Errorf("negative cache grew from %d to %d: unknown kids must not be remembered", negBefore, got)
			}
		})
	}
}

// TestOversizeTokenIsNeitherParsedNorHashed: a token over --max-token-size
// is refused before any cache is asked (asking needs its hash), whatever
// its content.
func TestOversizeTokenIsNeitherParsedNorHashed(t *testing.T) {
	const limit = 1024
	a := newAttackEnvWith(t, func(c *authz.Config) { c.MaxTokenSize = limit })
	small := a.sign(t, a.es, a.claims())
	big := a.sign(t, a.es, a.claims("pad", strings.Repeat("p", limit)))
	if resp := a.check("Bearer " + small); codes.Code(resp.Status.Code) != codes.OK {
		t.Fatalf("token of %d bytes under a %d limit: %v", len(small), limit, resp.Status)
	}
	lookups := func() uint64 {
		st := a.eng.Stats()
		return st.Tokens.Hits + st.Tokens.Misses + st.Negative.Hits + st.Negative.Misses + st.Dedup.Hits + st.Dedup.Misses
	}
	before := lookups()
	for _, tok := range []string{big, strings.Repeat("x", limit+1), small + strings.Repeat(".", limit)} {
		for _, id := range []string{"", "req-1"} {
			if got := a.send(browserRequest(t, "Bearer "+tok, id)).Status.Message; got != "token_too_large" {
				t.Fatalf("token of %d bytes: %s, want token_too_large", len(tok), got)
			}
		}
	}
	if after := lookups(); after != before {
		t.Fatalf("oversize tokens caused %d cache lookups, want 0", after-before)
	}
}

// TestCheckRequestSize: the adapter reads at most 1024 headers and 64 KiB of
// them from a CheckRequest (Envoy's own defaults are 100 and 60 KiB) and
// denies a request with more, 431, whatever its token. Past gRPC's 4 MiB
// message limit the call fails (Envoy then applies failure_mode_allow:
// false and status_on_error): never an allow.
func TestCheckRequestSize(t *testing.T) {
	a := newAttackEnv(t)
	valid, forged := a.sign(t, a.es, a.claims()), a.sign(t, a.attacker, a.claims())
	withHeaders := func(auth string, n, size int) *authv3.CheckRequest {
		req := browserRequest(t, auth, "")
		for i := range n {
			req.Attributes.Request.Http.Headers[fmt.Sprintf("x-junk-%d", i)] = strings.Repeat("j", size)
		}
		return req
	}
	for _, tc := range []struct {
		name       string
		auth       string
		n, size    int
		wantCode   codes.Code
		wantReason string
		wantHTTP   int32
		wantError  codes.Code
	}{
		{name: "1,000 headers, valid token", auth: "Bearer " + valid, n: 1000, size: 40, wantCode: codes.OK},
		{name: "1,000 headers, forged token", auth: "Bearer " + forged, n: 1000, size: 40, wantCode: codes.Unauthenticated, wantReason: "unknown_kid", wantHTTP: 401},
		{name: "10,000 headers, valid token", auth: "Bearer " + valid, n: 10_000, size: 100, wantCode: codes.InvalidArgument, wantReason: "request_too_large", wantHTTP: 431},
		{name: "10,000 headers, forged token", auth: "Bearer " + forged, n: 10_000, size: 100, wantCode: codes.InvalidArgument, wantReason: "request_too_large", wantHTTP: 431},
		{name: "60 KiB of headers, valid token", auth: "Bearer " + valid, n: 6, size: 10 << 10, wantCode: codes.OK},
		{name: "3 MiB of headers, valid token", auth: "Bearer " + valid, n: 3, size: 1 << 20, wantCode: codes.InvalidArgument, wantReason: "request_too_large", wantHTTP: 431},
		{name: "5 MiB of headers: refused by gRPC", auth: "Bearer " + valid, n: 5, size: 1 << 20, wantError: codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := a.client.Check(ctx, withHeaders(tc.auth, tc.n, tc.size))
			if tc.wantError != codes.OK {
				if err == nil || grpcCode(err) != tc.wantError {
					t.Fatalf("err = %v, want %v", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := codes.Code(resp.Status.Code); got != tc.wantCode || (got != codes.OK && resp.Status.Message != tc.wantReason) {
				t.Fatalf("%v %q, want %v %q", got, resp.Status.Message, tc.wantCode, tc.wantReason)
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); tc.wantCode != codes.OK && int32(got) != tc.wantHTTP {
				t.Fatalf("HTTP status %d, want %d", got, tc.wantHTTP)
			}
		})
	}
}

func grpcCode(err error) codes.Code { return status.Code(err) }

// checkQuietly is env.send for goroutines other than the test's, which must
// not call t.Fatal: it returns the reason label, "ALLOWED" for an allow, or
// the error.
func checkQuietly(e *env, req *authv3.CheckRequest) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.client.Check(ctx, req)
	switch {
	case err != nil:
		return "error: " + err.Error()
	case resp.Status == nil:
		return "no status"
	case codes.Code(resp.Status.Code) == codes.OK:
		return "ALLOWED"
	}
	return resp.Status.Message
}

// TestCacheChurnMemory measures what floodBytesPerEntry bounds: garbage
// churned through the negative cache and the dedup for longer than their
// TTLs (shortened to 2 s here, on the engine's fake clock), so that every
// expiry bucket has been filled and emptied, costs at most
// floodBytesPerEntry per unit of capacity, and the valid token is still
// answered from the token cache.
func TestCacheChurnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("churns the caches with 40,000 checks")
	}
	const size, ttl = 10_000, 2 * time.Second
	a := newAttackEnvWith(t, func(c *authz.Config) {
		c.NegativeCacheSize, c.DedupSize, c.NegativeTTL, c.DedupWindow = size, size, ttl, ttl
	})
	valid := a.sign(t, a.es, a.claims())
	ctx := context.Background()
	check := func(tok, id string) authz.Decision {
		return a.eng.Check(ctx, &authz.Request{Method: "GET", Host: "api", Path: "/", RequestID: id,
			Headers: authz.MapHeaders{"authorization": "Bearer " + tok, "x-request-id": id}})
	}
	check(valid, "")
	before := heapAfterGC()
	var wg sync.WaitGroup
	var checks atomic.Int64
	// Four times each cache's capacity, the clock moved on by ttl+ttl/4
	// over the run, a step at each check.
	const n = 4 * size
	const step = (ttl + ttl/4) / n
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 2 {
				a.clock.Add(step)
				tok := fmt.Sprintf("Zmxvb2Q.%x.eA", i)
				if d := check(tok, tok); d.Reason != authz.ReasonMalformed {
					t.Errorf("%s: %v", tok, d.Reason)
					return
				}
				checks.Add(1)
			}
		}()
	}
	wg.Wait()
	growth := int64(heapAfterGC()) - int64(before)
	perUnit := float64(growth) / (2 * size)
	t.Logf("%d distinct garbage tokens over %v of the engine's clock through a negative cache and a dedup of %d each: heap %+d bytes, %.0f bytes per unit of capacity (bound %d)",
		checks.Load(), ttl+ttl/4, size, growth, perUnit, floodBytesPerEntry)
	if perUnit > floodBytesPerEntry {
		t.Errorf("%.0f bytes per unit of capacity, more than the documented %d", perUnit, floodBytesPerEntry)
	}
	if d := check(valid, ""); !d.Allow || !d.Cached {
		t.Errorf("valid token after the churn: allow %v, cached %v", d.Allow, d.Cached)
	}
}
