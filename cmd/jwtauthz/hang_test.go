package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// These helpers are copies of internal/server's (ops_test.go), for the
// tests of the binary (signal_test.go).

// hangingIdP is an IdP on loopback whose JWKS endpoint, once hang is set,
// answers nothing until the client gives up, and sends on hung as each such
// request arrives.
type hangingIdP struct {
	*issuer.Issuer
	hang atomic.Bool
	hung chan struct{}
}

func newHangingIdP(t *testing.T) *hangingIdP {
	t.Helper()
	p := &hangingIdP{Issuer: issuer.New("", issuer.MustSigner("ES256")), hung: make(chan struct{}, 64)}
	hs := httptest.NewUnstartedServer(p)
	p.URL = "http://" + hs.Listener.Addr().String()
	hs.Start()
	t.Cleanup(hs.Close)
	return p
}

func (p *hangingIdP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.hang.Load() && strings.HasSuffix(r.URL.Path, "/jwks.json") {
		select {
		case p.hung <- struct{}{}:
		default:
		}
		<-r.Context().Done()
		return
	}
	p.Issuer.ServeHTTP(w, r)
}

// sentCounter is a gRPC client stats handler that sends on sent (while it
// has room) each time a request message has gone to the transport.
type sentCounter struct{ sent chan struct{} }

func (s sentCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (s sentCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (s sentCounter) HandleConn(context.Context, stats.ConnStats) {}
func (s sentCounter) HandleRPC(_ context.Context, st stats.RPCStats) {
	if _, ok := st.(*stats.OutPayload); ok {
		select {
		case s.sent <- struct{}{}:
		default:
		}
	}
}

// dialCounting is dial, with a channel that receives once for each of the
// first n request messages sent on the connection.
func dialCounting(t *testing.T, addr string, n int) (*grpc.ClientConn, <-chan struct{}) {
	t.Helper()
	sc := sentCounter{make(chan struct{}, n)}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStatsHandler(sc))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc, sc.sent
}

// awaitN receives n times from ch, or fails t after 10 s.
func awaitN(t *testing.T, ch <-chan struct{}, n int, what string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for i := range n {
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("%d of %d %s within 10s", i, n, what)
		}
	}
}
