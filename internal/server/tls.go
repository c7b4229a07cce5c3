package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/internal/safefile"
)

// fileWatch notices that files changed: their size and modification time.
type fileWatch []string

func (w fileWatch) stamp() string {
	s := ""
	for _, p := range w {
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprint(fi.Size(), fi.ModTime().UnixNano(), ";")
		}
	}
	return s
}

// reloading holds what is read from files and reads it again when they
// change (cert-manager rotates certificates in place). A file that no
// longer parses keeps the last good value, with a log line.
type reloading[T any] struct {
	files fileWatch
	parse func() (T, error)
	log   *slog.Logger

	mu    sync.Mutex
	stamp string
	val   T
}

func newReloading[T any](log *slog.Logger, parse func() (T, error), files ...string) (*reloading[T], error) {
	r := &reloading[T]{files: files, parse: parse, log: log, stamp: fileWatch(files).stamp()}
	var err error
	if r.val, err = parse(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *reloading[T]) get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.files.stamp(); s != r.stamp {
		r.stamp = s
		if v, err := r.parse(); err != nil {
			r.log.Error("TLS files changed but do not load; the last good ones stay", "files", []string(r.files), "error", err)
		} else {
			r.val = v
			r.log.Info("TLS files reloaded", "files", []string(r.files))
		}
	}
	return r.val
}

// serverTLS is the TLS configuration of the gRPC and HTTP listeners, nil
// without --tls-cert. With --tls-client-ca, clients must present a
// certificate that CA signed (what Envoy's TLS transport socket sends).
func serverTLS(c *config.Config, log *slog.Logger) (*tls.Config, error) {
	if c.TLSCert == "" {
		return nil, nil
	}
	pair, err := newReloading(log, func() (*tls.Certificate, error) {
		certPEM, err := safefile.Read(c.TLSCert, safefile.MaxPEM)
		if err != nil {
			return nil, err
		}
		keyPEM, err := safefile.Read(c.TLSKey, safefile.MaxPEM)
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		return &cert, err
	}, c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("tls_cert/tls_key: %w", err)
	}
	tc := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return pair.get(), nil },
	}
	if c.TLSClientCA == "" {
		return tc, nil
	}
	pool, err := newReloading(log, func() (*x509.CertPool, error) { return readPool(c.TLSClientCA) }, c.TLSClientCA)
	if err != nil {
		return nil, fmt.Errorf("tls_client_ca: %w", err)
	}
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	tc.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		per := tc.Clone()
		per.GetConfigForClient, per.ClientCAs = nil, pool.get()
		return per, nil
	}
	return tc, nil
}

func readPool(path string) (*x509.CertPool, error) {
	pem, err := safefile.Read(path, safefile.MaxPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New(path + " holds no PEM certificate")
	}
	return pool, nil
}

// serveHTTP serves forward-auth, over TLS when configured.
func (a *Server) serveHTTP(lis net.Listener) error {
	if a.httpSrv.TLSConfig != nil {
		return a.httpSrv.ServeTLS(lis, "", "")
	}
	return a.httpSrv.Serve(lis)
}

// handshakeTimeout bounds a TLS handshake on the gRPC listener.
const handshakeTimeout = 10 * time.Second
