package testutil

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
)

// Get fetches url with the headers given as name, value pairs and returns
// the status, body and headers of the response.
func Get(t testing.TB, url string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// CheckReq is a CheckRequest for GET api{path}, with tok as a bearer token
// unless it is "".
func CheckReq(tok, path string) *authv3.CheckRequest {
	h := map[string]string{}
	if tok != "" {
		h["authorization"] = "Bearer " + tok
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api", Path: path, Headers: h},
	}}}
}

// Dial connects to the gRPC listener at addr, without TLS, and closes the
// connection when the test ends.
func Dial(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// DialCounting is Dial, with a channel that receives once for each of the
// first n request messages sent on the connection.
func DialCounting(t testing.TB, addr string, n int) (*grpc.ClientConn, <-chan struct{}) {
	t.Helper()
	sc := sentCounter{make(chan struct{}, n)}
	return Dial(t, addr, grpc.WithStatsHandler(sc)), sc.sent
}

// AwaitN receives n times from ch, or fails t after 10 s; what names the
// events in the failure.
func AwaitN(t testing.TB, ch <-chan struct{}, n int, what string) {
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
