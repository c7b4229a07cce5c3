package server

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/jwtauthz/jwtauthz/authz/extauthz"
	"github.com/jwtauthz/jwtauthz/authz/forwardauth"
)

// servers builds the gRPC, HTTP and admin servers; tc, if not nil, is the
// TLS of the first two.
func (a *Server) servers(tc *tls.Config) {
	opts := []grpc.ServerOption{
		// Envoy keeps its connections for hours and may ping them.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.MaxConcurrentStreams(1024),
		grpc.ConnectionTimeout(handshakeTimeout),
		// Workers whose stacks have grown once, instead of a new goroutine
		// per check whose stack then grows for the signature check (gRPC
		// falls back to one when all are busy; an idle worker costs its
		// stack).
		grpc.NumStreamWorkers(uint32(max(64, 16*runtime.GOMAXPROCS(0)))),
	}
	if tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	a.grpcSrv = grpc.NewServer(append(extauthz.ServerOptions(), opts...)...)
	var eopts []extauthz.Option
	if a.tracing != nil {
		eopts = append(eopts, extauthz.WithTracing(a.tracing.checks))
	}
	extauthz.NewServer(a.engine, eopts...).Register(a.grpcSrv)
	healthpb.RegisterHealthServer(a.grpcSrv, a.health)
	if a.cfg.GRPCReflection {
		reflection.Register(a.grpcSrv)
	}
	for _, svc := range []string{"", authService} {
		a.health.SetServingStatus(svc, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	a.httpSrv = httpServer(forwardauth.New(a.engine))
	if tc != nil {
		a.httpSrv.TLSConfig = tc.Clone() // net/http adds its protocols to its own
	}
	a.adminSrv = httpServer(a.adminHandler())
}

func httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// ErrListen is what an error of New is (errors.Is) when a listener could
// not be opened: the address in use, no permission, no directory for the
// socket. That is the host failing, at that moment; New's other errors are
// the configuration's.
var ErrListen = errors.New("cannot listen")

// listenError is an error of listen: the cause's message, and ErrListen.
type listenError struct{ error }

func (e listenError) Unwrap() []error { return []error{e.error, ErrListen} }

// listen binds addr: "" is no listener, unix:///path a Unix socket.
func listen(addr string) (net.Listener, error) {
	l, err := bind(addr)
	if err != nil {
		return nil, listenError{err}
	}
	return l, nil
}

func bind(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	if p, ok := strings.CutPrefix(addr, "unix://"); ok {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		l, err := net.Listen("unix", p)
		if err != nil {
			return nil, err
		}
		// Connecting takes write permission on the socket: its owner and
		// group may (an Envoy in jwtauthz's group, or in the pod's
		// fsGroup, which owns an emptyDir and what is made in it), others
		// may not, whatever the umask.
		if err := os.Chmod(p, 0o660); err != nil {
			l.Close()
			return nil, err
		}
		return l, nil
	}
	return net.Listen("tcp", addr)
}

// loopback reports whether addr is reachable from this machine alone: a
// loopback IP, or a Unix socket.
func loopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

func (a *Server) closeListeners() {
	for _, l := range []net.Listener{a.grpcLis, a.httpLis, a.adminLis} {
		if l != nil {
			l.Close()
		}
	}
}
