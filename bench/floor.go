package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// floorServer is the floor: an Authorization service that allows
// everything, the least any ext_authz server can do per check.
type floorServer struct {
	authv3.UnimplementedAuthorizationServer
}

var _ authv3.AuthorizationServer = floorServer{}

// Check implements authv3.AuthorizationServer: allow, read nothing.
func (floorServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: 0}}, nil
}

// runFloor serves the floor on addr (host:port or unix:///path) with
// grpc-go's default server options until SIGTERM or SIGINT. It is what
// `bench -role floor` runs, in its own process.
func runFloor(addr string) error {
	lis, err := listenAddr(addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, floorServer{})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	if err := srv.Serve(lis); err != nil && ctx.Err() == nil {
		return fmt.Errorf("floor: %w", err)
	}
	return nil
}

// listenAddr listens on host:port, or on the socket of unix:///path.
func listenAddr(addr string) (net.Listener, error) {
	if p, ok := strings.CutPrefix(addr, "unix://"); ok {
		os.Remove(p)
		return net.Listen("unix", p)
	}
	return net.Listen("tcp", addr)
}
