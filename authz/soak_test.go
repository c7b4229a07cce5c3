package authz_test

// The soak: 32 clients send a mix of valid, expired, forged, malformed and
// unknown-kid tokens over gRPC while the IdP flaps between up, down, broken
// and rotating keys. Every decision is compared with an oracle computed in
// the test from what the key source held while the check ran.
//
//	JWTAUTHZ_SOAK=10s go test ./authz -run TestSoak -v      # as .ci/run runs it
//	JWTAUTHZ_SOAK=60s go test ./authz -run TestSoak -v      # the documented run
//
// Without JWTAUTHZ_SOAK it is skipped.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/extauthz"
	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

const soakClients = 32

// soakDuration is JWTAUTHZ_SOAK, a duration up to 60 s; without it the
// soak is skipped.
func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("JWTAUTHZ_SOAK")
	if v == "" {
		t.Skip("soak: runs with JWTAUTHZ_SOAK=10s (.ci/run sets it) or up to 60s")
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second || d > 60*time.Second {
		t.Fatalf("JWTAUTHZ_SOAK=%q: want a duration from 1s to 60s, such as 10s", v)
	}
	return d
}

// keyHistory is every key set the source published, in order. Sets are
// noted when first seen, by the source's Observe hook (called after each
// publish and before a waiting refresh resumes) and by clients before and
// after each check, so the sets current during a check are those from the
// one seen before it to the one seen after it.
type keyHistory struct {
	mu   sync.Mutex
	sets []*jwks.Set
	idx  map[*jwks.Set]int
}

func (h *keyHistory) note(s *jwks.Set) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i, ok := h.idx[s]; ok {
		return i
	}
	h.idx[s] = len(h.sets)
	h.sets = append(h.sets, s)
	return len(h.sets) - 1
}

// presence says whether kid was in all, some or none of the sets noted
// between i and j.
func (h *keyHistory) presence(kid string, i, j int) (all, some bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i > j {
		i, j = j, i
	}
	all = true
	for _, s := range h.sets[i : j+1] {
		_, ok := s.Lookup(kid)
		all, some = all && ok, some || ok
	}
	return all, some
}

// soakKind is what a soak token is.
type soakKind int

const (
	kindValid soakKind = iota
	kindExpired
	kindForged // a foreign key claiming a pool kid
	kindMalformed
	kindUnknownKID
	numKinds
)

var kindNames = [numKinds]string{"valid", "expired", "forged", "malformed", "unknown_kid"}

// soakToken is a token and what the oracle needs to know of it.
type soakToken struct {
	tok  string
	kind soakKind
	kid  string // the pool kid it names (valid, expired, forged)
}

// acceptable returns the decisions that are right for t given whether its
// kid was in all or some of the sets current during the check. "ok" is an
// allow. A rejection the negative cache remembers may outlive the key that
// decided it, so expired and forged tokens may keep their first reason.
func (t *soakToken) acceptable(all, some bool) []string {
	switch t.kind {
	case kindValid:
		switch {
		case all:
			return []string{"ok"}
		case !some:
			return []string{"unknown_kid"}
		}
		return []string{"ok", "unknown_kid"}
	case kindExpired:
		if all {
			return []string{"expired"}
		}
		return []string{"expired", "unknown_kid"}
	case kindForged:
		if all {
			return []string{"bad_signature"}
		}
		return []string{"bad_signature", "unknown_kid"}
	case kindMalformed:
		return []string{"malformed"}
	}
	return []string{"unknown_kid"}
}

// soak is one soak run's parts and counters.
type soak struct {
	idp    *issuer.Server
	src    *jwks.Source
	client authv3.AuthorizationClient
	// template is the realistic CheckRequest each client copies.
	template *authv3.CheckRequest
	hist     *keyHistory
	pool     []*issuer.Signer
	now      time.Time
	iss      string
	checks   [numKinds]atomic.Int64
	exact    atomic.Int64 // checks whose key sets left one right answer
	twins    atomic.Int64
	allowed  atomic.Int64
	faults   atomic.Int64
	rotates  atomic.Int64

	mu    sync.Mutex
	wrong []string
}

type soakResult struct {
	checks, exact, twins, allowed, faults, rotations, sets, jwks int64
	perKind                                                      [numKinds]int64
	wrong                                                        []string
}

func TestSoak(t *testing.T) {
	dur := soakDuration(t)
	goBefore, heapBefore := liveGoroutines(), heapAfterGC()
	var r soakResult
	t.Run("load", func(t *testing.T) { r = runSoak(t, dur) })
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	goAfter := goBefore
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if goAfter = liveGoroutines(); goAfter <= goBefore {
			break
		}
	}
	heapAfter := heapAfterGC()
	t.Logf("soak %v, %d clients: %d checks (%v by kind: %v), %d with one right answer, %d twins, %d allowed; "+
		"IdP: %d fault changes, %d rotations, %d JWKS requests, %d key sets published",
		dur, soakClients, r.checks, kindNames, r.perKind, r.exact, r.twins, r.allowed, r.faults, r.rotations, r.jwks, r.sets)
	t.Logf("wrong decisions: %d; goroutines %d → %d; heap %d → %d bytes after GC",
		len(r.wrong), goBefore, goAfter, heapBefore, heapAfter)
	if len(r.wrong) > 0 {
		t.Errorf("%d wrong decisions, e.g.:\n%s", len(r.wrong), strings.Join(r.wrong[:min(len(r.wrong), 10)], "\n"))
	}
	if goAfter > goBefore {
		t.Errorf("goroutines grew from %d to %d:\n%s", goBefore, goAfter, goroutineDump())
	}
	if heapAfter > heapBefore+16<<20 {
		t.Errorf("heap grew from %d to %d bytes", heapBefore, heapAfter)
	}
	if r.checks < 200 || r.perKind[kindValid] == 0 || r.allowed == 0 || r.rotations == 0 {
		t.Errorf("the soak did too little to mean anything: %+v", r)
	}
}

func runSoak(t *testing.T, dur time.Duration) soakResult {
	s := &soak{hist: &keyHistory{idx: map[*jwks.Set]int{}}, now: newClock().Now(), template: browserRequest(t, "", "")}
	for _, alg := range []string{"ES256", "EdDSA", "ES256", "EdDSA", "ES256", "EdDSA"} {
		s.pool = append(s.pool, issuer.MustSigner(alg))
	}
	s.idp = issuer.NewServer(s.pool[0], s.pool[1])
	t.Cleanup(s.idp.Close)
	s.iss = s.idp.URL
	var srcp atomic.Pointer[jwks.Source] // set once runSource returns
	s.src = runSource(t, jwks.Config{
		Name: "soak", Issuer: s.iss, URL: s.idp.JWKSURL(),
		Refresh: 150 * time.Millisecond, MinRefresh: 50 * time.Millisecond, Timeout: 200 * time.Millisecond,
		Observe: func(jwks.FetchResult) {
			if src := srcp.Load(); src != nil && src.Keys() != nil {
				s.hist.note(src.Keys())
			}
		},
	}, true)
	srcp.Store(s.src)
	s.hist.note(s.src.Keys())
	eng, err := authz.New(withDefaultLimits(authz.Config{
		Providers: []authz.ProviderConfig{{Name: "soak", Issuer: s.iss, Keys: s.src}},
		Now:       func() time.Time { return s.now },
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	s.client = serveGRPC(t, extauthz.NewServer(eng))

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.chaos(ctx) }()
	for c := range soakClients {
		wg.Add(1)
		go func() { defer wg.Done(); s.client1(ctx, c) }()
	}
	wg.Wait()

	r := soakResult{exact: s.exact.Load(), twins: s.twins.Load(), allowed: s.allowed.Load(), faults: s.faults.Load(),
		rotations: s.rotates.Load(), jwks: s.idp.JWKSRequests(), wrong: s.wrong}
	for k := range numKinds {
		r.perKind[k] = s.checks[k].Load()
		r.checks += r.perKind[k]
	}
	s.hist.mu.Lock()
	r.sets = int64(len(s.hist.sets))
	s.hist.mu.Unlock()
	return r
}

// chaos flaps the IdP: faults (500, hang, garbage, an empty set) and key
// rotations, a change every few milliseconds, until ctx ends.
func (s *soak) chaos(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	defer s.idp.SetFault(issuer.OK)
	faults := []issuer.Fault{issuer.OK, issuer.OK, issuer.OK, issuer.Fail, issuer.Garbage, issuer.Empty, issuer.Hang}
	first := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if rand.N(3) == 0 {
			first = (first + 1) % len(s.pool)
			keys := []*issuer.Signer{s.pool[first], s.pool[(first+1)%len(s.pool)]}
			if rand.N(4) == 0 {
				keys = keys[:1]
			}
			s.idp.Publish(keys...)
			s.rotates.Add(1)
		} else {
			s.idp.SetFault(faults[rand.N(len(faults))])
			s.faults.Add(1)
		}
	}
}

// clientTokens are one client's own tokens, so that no two clients check
// the same token at once: a verification shared between concurrent checks
// would have read the keys at a time the oracle does not know.
func (s *soak) clientTokens(c int) (valid, expired, forged []soakToken) {
	for i, k := range s.pool {
		foreign := issuer.MustSigner(k.Alg)
		foreign.KID = k.KID
		for j := range 2 {
			valid = append(valid, soakToken{tok: s.sign(k, fmt.Sprintf("c%d-k%d-%d", c, i, j), time.Hour), kind: kindValid, kid: k.KID})
		}
		expired = append(expired, soakToken{tok: s.sign(k, fmt.Sprintf("c%d-k%d", c, i), -time.Hour), kind: kindExpired, kid: k.KID})
		forged = append(forged, soakToken{tok: s.sign(foreign, fmt.Sprintf("c%d-k%d", c, i), time.Hour), kind: kindForged, kid: k.KID})
	}
	return valid, expired, forged
}

func (s *soak) sign(k *issuer.Signer, sub string, ttl time.Duration) string {
	tok, err := k.Sign(jwt.MapClaims{"iss": s.iss, "sub": sub, "iat": s.now.Add(-2 * time.Hour).Unix(), "exp": s.now.Add(ttl).Unix()})
	if err != nil {
		panic(err)
	}
	return tok
}

// client1 is one client: it checks tokens of every kind until ctx ends, and
// now and then sends the same request twice with one x-request-id.
func (s *soak) client1(ctx context.Context, c int) {
	valid, expired, forged := s.clientTokens(c)
	malformed := []string{"not-a-jwt", "a.b.c", b64(`{"alg":"none"}`) + "." + b64(`{"iss":"`+s.iss+`"}`) + ".", strings.Repeat("x", 9000), "e30.e30.e30"}
	req := proto.Clone(s.template).(*authv3.CheckRequest)
	for n := 0; ctx.Err() == nil; n++ {
		var tk soakToken
		switch p := rand.N(100); {
		case p < 40:
			tk = valid[rand.N(len(valid))]
		case p < 55:
			tk = expired[rand.N(len(expired))]
		case p < 70:
			tk = forged[rand.N(len(forged))]
		case p < 85:
			tk = soakToken{tok: malformed[rand.N(len(malformed))], kind: kindMalformed}
		default:
			h := b64(fmt.Sprintf(`{"alg":"ES256","kid":"unknown-%d-%d"}`, c, n))
			tk = soakToken{tok: h + "." + b64(`{"iss":"`+s.iss+`","exp":9999999999}`) + ".c2ln", kind: kindUnknownKID}
		}
		hdrs := req.Attributes.Request.Http.Headers
		hdrs["authorization"] = "Bearer " + tk.tok
		delete(hdrs, "x-request-id")
		twin := rand.N(5) == 0
		if twin {
			hdrs["x-request-id"] = fmt.Sprintf("soak-%d-%d", c, n)
		}
		first := s.checkOne(ctx, req, &tk, "")
		if twin && first != "" {
			s.twins.Add(1)
			s.checkOne(ctx, req, &tk, first)
		}
	}
}

// checkOne sends req and compares the decision with the oracle. prev is the
// decision of the twin sent before with the same x-request-id, if any: a
// denial may be reused for the same request. It returns the decision, ""
// if the soak ended first.
func (s *soak) checkOne(ctx context.Context, req *authv3.CheckRequest, tk *soakToken, prev string) string {
	before := s.hist.note(s.src.Keys())
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := s.client.Check(cctx, req)
	cancel()
	after := s.hist.note(s.src.Keys())
	if ctx.Err() != nil && err != nil {
		return ""
	}
	got := "error"
	switch {
	case err != nil:
		got = "error: " + err.Error()
	case resp.Status == nil:
		got = "no status"
	case codes.Code(resp.Status.Code) == codes.OK:
		got = "ok"
	default:
		got = resp.Status.Message
	}
	s.checks[tk.kind].Add(1)
	if got == "ok" {
		s.allowed.Add(1)
	}
	all, some := s.hist.presence(tk.kid, before, after)
	want := tk.acceptable(all, some)
	if len(tk.tok) > authz.DefaultMaxTokenSize {
		want = []string{"token_too_large"}
	}
	if len(want) == 1 && prev == "" {
		s.exact.Add(1)
	}
	if prev != "" && prev != "ok" {
		want = append(want, prev)
	}
	for _, w := range want {
		if got == w {
			return got
		}
	}
	s.mu.Lock()
	s.wrong = append(s.wrong, fmt.Sprintf("%s token (kid %q, in all sets %v, in some %v, sets %d..%d): got %s, want one of %v",
		kindNames[tk.kind], tk.kid, all, some, before, after, got, want))
	s.mu.Unlock()
	return got
}

// liveGoroutines counts the goroutines: the caches start none, so every
// one is the soak's or the test binary's.
func liveGoroutines() int { return runtime.NumGoroutine() }

func stacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutineDump lists the goroutines counted by liveGoroutines, by their
// first frame, for a failure message.
func goroutineDump() string {
	count := map[string]int{}
	for _, g := range bytes.Split(stacks(), []byte("\n\n")) {
		lines := strings.Split(string(g), "\n")
		if len(lines) > 1 {
			count[lines[1]]++
		}
	}
	var out []string
	for k, v := range count {
		out = append(out, fmt.Sprintf("%4d %s", v, k))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
