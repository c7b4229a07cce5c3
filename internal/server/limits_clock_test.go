package server

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/internal/testutil"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// testClock is a clock the test moves by hand.
type testClock = testutil.Clock

// newTestClock is a testClock at the time it is made.
func newTestClock() *testClock { return testutil.NewClock(time.Now()) }

// startAppClock is startApp (serve, waiting until ready) with the engine
// on clock.
func startAppClock(t *testing.T, clock func() time.Time, args ...string) *testApp {
	t.Helper()
	base := []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--shutdown-delay", "0s"}
	cfg, _, err := config.Load("serve", append(base, args...), envOf(), io.Discard, config.Defaults())
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	ta := runApp(t, cfg, logs, slog.LevelInfo, WithClock(clock))
	ta.waitReady(t)
	return ta
}

// With --clock-skew 0s a token allowed, and so cached and remembered for
// its request, before its exp is refused 2 s past it: neither the token
// cache nor the request dedup outlives it.
func TestClockSkewZeroEndsCachedGrantsAtExp(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	clock := newTestClock()
	a := startAppClock(t, clock.Now, "--issuer", idp.URL, "--clock-skew", "0s")
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	now := clock.Now()
	// One token by request id: the first check of the one with an id
	// misses the token cache, and so its decision is kept for the request.
	toks := map[string]string{}
	for _, id := range []string{"", "req-1"} {
		tok, err := idp.Mint(jwt.MapClaims{"sub": "user" + id, "iat": now.Unix(), "exp": now.Add(5 * time.Second).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		toks[id] = tok
		if code, reason := checkAs(t, client, tok, id); code != codes.OK {
			t.Fatalf("before exp, request id %q: %v %q", id, code, reason)
		}
		if code := askForwardAuth(t, a, tok, id); code != http.StatusOK {
			t.Fatalf("forward-auth before exp, request id %q: %d", id, code)
		}
	}
	if st := a.engine.Stats(); st.Tokens.Size != 2 || st.Dedup.Size == 0 {
		t.Fatalf("before exp: %d tokens cached, %d decisions kept; want 2 and some", st.Tokens.Size, st.Dedup.Size)
	}
	clock.Add(7 * time.Second) // exp + 2 s
	for id, tok := range toks {
		if code, reason := checkAs(t, client, tok, id); code != codes.Unauthenticated || reason != "expired" {
			t.Errorf("gRPC 2 s past exp, request id %q: %v %q, want Unauthenticated expired", id, code, reason)
		}
		if code := askForwardAuth(t, a, tok, id); code != http.StatusUnauthorized {
			t.Errorf("forward-auth 2 s past exp, request id %q: %d, want 401", id, code)
		}
	}
}
