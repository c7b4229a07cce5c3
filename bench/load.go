package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// picker chooses the token of each check. ok false ends the stream.
type picker interface {
	next(r *rand.Rand) (tok string, ok bool)
}

// oneToken is scenario (a): the same token every time.
type oneToken string

func (t oneToken) next(*rand.Rand) (string, bool) { return string(t), true }

// uniform picks a token of the pool at random: scenario (b).
type uniform []string

func (p uniform) next(r *rand.Rand) (string, bool) { return p[r.IntN(len(p))], true }

// cycle hands out the pool in order, round and round, shared by all
// streams: with a pool larger than the server's cache every check is a
// miss. limit > 0 stops after that many checks (filling a cache).
type cycle struct {
	pool  []string
	n     atomic.Uint64
	limit uint64
}

func (c *cycle) next(*rand.Rand) (string, bool) {
	i := c.n.Add(1) - 1
	if c.limit > 0 && i >= c.limit {
		return "", false
	}
	return c.pool[i%uint64(len(c.pool))], true
}

// loadTemplate reads a protojson CheckRequest, such as
// testdata/checkrequest-browser.json.
func loadTemplate(path string) (*authv3.CheckRequest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(b, req); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if req.GetAttributes().GetRequest().GetHttp().GetHeaders() == nil {
		return nil, fmt.Errorf("%s: no attributes.request.http.headers", path)
	}
	return req, nil
}

// dialAll opens n connections to target and makes one call on each, so
// that no run pays for a handshake.
func dialAll(target string, n int) ([]*grpc.ClientConn, error) {
	var ccs []*grpc.ClientConn
	for range n {
		cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll(ccs)
			return nil, err
		}
		ccs = append(ccs, cc)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = authv3.NewAuthorizationClient(cc).Check(ctx, &authv3.CheckRequest{})
		cancel()
		if err != nil {
			closeAll(ccs)
			return nil, fmt.Errorf("dial %s: %w", target, err)
		}
	}
	return ccs, nil
}

func closeAll(ccs []*grpc.ClientConn) {
	for _, cc := range ccs {
		cc.Close()
	}
}

// load is one fixed-time run's traffic: streams goroutines, each issuing
// unary Checks back to back over conns (round robin), a new x-request-id
// on each unless noRequestID.
type load struct {
	conns       []*grpc.ClientConn
	template    *authv3.CheckRequest
	streams     int
	pick        picker
	timeout     time.Duration // each call's deadline, as Envoy sends one
	noRequestID bool
}

// tally is what the streams of one run counted.
type tally struct {
	hist    Histogram
	checks  uint64
	denied  uint64 // answered with a non-OK status: the scenario is broken
	errored uint64 // the call failed
	lastErr error
}

// drive runs l until stop is closed (or every stream's picker is done) and
// returns the merged counts.
func (l *load) drive(stop <-chan struct{}) *tally {
	tallies := make([]tally, l.streams)
	var wg sync.WaitGroup
	for s := range l.streams {
		wg.Go(func() { l.stream(s, stop, &tallies[s]) })
	}
	wg.Wait()
	total := &tally{}
	for i := range tallies {
		t := &tallies[i]
		total.hist.Merge(&t.hist)
		total.checks += t.checks
		total.denied += t.denied
		total.errored += t.errored
		if t.lastErr != nil {
			total.lastErr = t.lastErr
		}
	}
	return total
}

// stream is one goroutine's loop. Its request is a clone of the template
// whose authorization and x-request-id headers change on every call; gRPC
// marshals it anew each time, as Envoy sends each check.
func (l *load) stream(s int, stop <-chan struct{}, t *tally) {
	req := proto.Clone(l.template).(*authv3.CheckRequest)
	h := req.Attributes.Request.Http.Headers
	delete(h, "x-request-id")
	client := authv3.NewAuthorizationClient(l.conns[s%len(l.conns)])
	r := rand.New(rand.NewPCG(uint64(s), uint64(time.Now().UnixNano())))
	ids := newRequestIDs(r)
	for {
		select {
		case <-stop:
			return
		default:
		}
		tok, ok := l.pick.next(r)
		if !ok {
			return
		}
		h["authorization"] = "Bearer " + tok
		if !l.noRequestID {
			h["x-request-id"] = ids.next()
		}
		l.call(client, req, t)
	}
}

func (l *load) call(client authv3.AuthorizationClient, req *authv3.CheckRequest, t *tally) {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	t0 := time.Now()
	resp, err := client.Check(ctx, req)
	d := time.Since(t0)
	cancel()
	switch {
	case err != nil:
		t.errored++
		t.lastErr = err
	case resp.GetStatus().GetCode() != 0:
		t.denied++
		t.lastErr = fmt.Errorf("denied: %s", resp.GetStatus().GetMessage())
	default:
		t.checks++
		t.hist.Record(d)
	}
}

// requestIDs makes UUID-shaped x-request-ids, distinct across streams and
// runs, as Envoy gives each request its own.
type requestIDs struct {
	prefix []byte
	n      uint64
	buf    []byte
}

func newRequestIDs(r *rand.Rand) *requestIDs {
	p := fmt.Sprintf("%08x-%04x-4%03x-%04x-", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, 0x8000|r.Uint32()&0x3fff)
	return &requestIDs{prefix: []byte(p)}
}

func (q *requestIDs) next() string {
	q.n++
	q.buf = append(q.buf[:0], q.prefix...)
	hex := strconv.FormatUint(q.n, 16)
	for range 12 - len(hex) {
		q.buf = append(q.buf, '0')
	}
	q.buf = append(q.buf, hex...)
	return string(q.buf)
}
