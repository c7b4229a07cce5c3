package main

import (
	"context"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// hostIPs are this machine's addresses other than loopback (and link-local,
// which needs a zone): where another host on the network reaches it.
func hostIPs(t *testing.T) []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var ips []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() && !n.IP.IsLinkLocalMulticast() {
			ips = append(ips, n.IP)
		}
	}
	return ips
}

// TestDevListensOnLoopback is issue 17's item 7: `jwtauthz dev`, with no
// address given, must not be reachable from another host, since its
// /dev/token mints tokens it trusts. It runs `dev` as a user would, on its
// default ports, and connects to them through this machine's network
// addresses (refused) and through loopback, as the README's tour does
// (answered).
func TestDevListensOnLoopback(t *testing.T) {
	ports := []string{"9001", "9002", "9003"}
	for _, p := range ports {
		l, err := net.Listen("tcp", ":"+p)
		if err != nil {
			t.Skipf("port %s is taken (%v): dev's defaults cannot be tried here", p, err)
		}
		l.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testutil.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"dev", "--log-format", "json"}, testutil.EnvOf(), &stdout, &stderr) }()
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("dev exit %d:\n%s", code, stderr.String())
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); strings.Count(stderr.String(), `"msg":"listener started"`) < 3 || !strings.Contains(stderr.String(), `"msg":"ready: every provider has keys"`); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("dev did not start its three listeners and get ready:\n%s\n%s", stdout.String(), stderr.String())
		}
	}
	for _, m := range regexp.MustCompile(`"msg":"listener started","listener":"(\w+)","addr":"([^"]+)"`).FindAllStringSubmatch(stderr.String(), -1) {
		if host, _, _ := net.SplitHostPort(m[2]); !net.ParseIP(host).IsLoopback() {
			t.Errorf("dev's %s listener is bound to %s, want loopback", m[1], m[2])
		}
	}
	if strings.Contains(stderr.String(), "DEV ISSUER REACHABLE") {
		t.Errorf("dev on loopback warned of a reachable issuer:\n%s", stderr.String())
	}
	ips := hostIPs(t)
	if len(ips) == 0 {
		t.Log("this machine has no address but loopback: the connections from the network are not tried")
	}
	for _, ip := range ips {
		for _, p := range ports {
			addr := net.JoinHostPort(ip.String(), p)
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("dev is reachable at %s, this machine's network address", addr)
			}
		}
	}

	// The README's tour and the banner, on loopback: a token, and the
	// HTTP forward-auth port taking it.
	code, tok, _ := testutil.Get(t, "http://127.0.0.1:9003/dev/token?sub=alice&ttl=10m")
	if code != http.StatusOK {
		t.Fatalf("the tour's /dev/token: %d %s", code, tok)
	}
	if code, _, hdr := testutil.Get(t, "http://localhost:9002/anything", "Authorization", "Bearer "+strings.TrimSpace(tok)); code != http.StatusOK || hdr.Get("X-Auth-Subject") != "alice" {
		t.Errorf("the tour's forward-auth request: %d %v", code, hdr)
	}
	banner := stdout.String()
	for _, want := range []string{"http://127.0.0.1:9002/anything", "127.0.0.1:9001 envoy.service.auth.v3.Authorization/Check", "curl 'http://127.0.0.1:9003/dev/token?sub=alice&ttl=10m'"} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner does not print %q:\n%s", want, banner)
		}
	}
	// dev serves reflection, for the banner's grpcurl line.
	if err := listServices(t, "127.0.0.1:9001"); err != nil {
		t.Errorf("reflection under dev: %v", err)
	}
}

// An admin listener beyond loopback under dev is logged loudly; on
// loopback it is not. On one network address, the dev issuer's keys are
// fetched there (it gets ready).
func TestDevWarnsOfReachableIssuer(t *testing.T) {
	const warning = "DEV ISSUER REACHABLE FROM THE NETWORK"
	if a := startApp(t, false, "dev"); strings.Contains(a.logs.String(), warning) {
		t.Errorf("dev on 127.0.0.1 warned:\n%s", a.logs.String())
	}
	addrs := []string{":0"}
	if ips := hostIPs(t); len(ips) > 0 {
		addrs = append(addrs, net.JoinHostPort(ips[0].String(), "0"))
	}
	for _, addr := range addrs {
		a := startApp(t, true, "dev", "--admin-addr", addr)
		if !strings.Contains(a.logs.String(), `"level":"WARN","msg":"`+warning) || !strings.Contains(a.logs.String(), "/dev/token mints tokens") {
			t.Errorf("dev with its admin listener on %s did not warn:\n%s", addr, a.logs.String())
		}
	}
}

// listServices asks addr's gRPC server reflection (v1, then v1alpha, as
// grpcurl does) for its services.
func listServices(t *testing.T, addr string) error {
	cc := testutil.Dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s1, err := reflectionv1.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return err
	}
	// A failed Send (io.EOF) means the stream has ended: Recv says why.
	s1.Send(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{ListServices: "*"}})
	if _, err := s1.Recv(); err != nil {
		return err
	}
	s2, err := reflectionv1alpha.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return err
	}
	s2.Send(&reflectionv1alpha.ServerReflectionRequest{MessageRequest: &reflectionv1alpha.ServerReflectionRequest_ListServices{ListServices: "*"}})
	_, err = s2.Recv()
	return err
}

// gRPC reflection is served only with --grpc-reflection: without it, a
// reflection client gets Unimplemented.
func TestGRPCReflectionSwitch(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	tests := []struct {
		name     string
		args     []string
		wantCode codes.Code
	}{
		{name: "serve", args: nil, wantCode: codes.Unimplemented},
		{name: "serve --grpc-reflection=false", args: []string{"--grpc-reflection=false"}, wantCode: codes.Unimplemented},
		{name: "serve --grpc-reflection", args: []string{"--grpc-reflection"}, wantCode: codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startApp(t, false, append([]string{"--issuer", idp.URL}, tt.args...)...)
			if got := status.Code(listServices(t, a.grpcAddr())); got != tt.wantCode {
				t.Errorf("reflection: %v, want %v", got, tt.wantCode)
			}
		})
	}
}
