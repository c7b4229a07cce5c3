package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// pki is a CA made in the test, and certificates it signs.
type pki struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), cert: cert, key: key, pool: x509.NewCertPool()}
	p.pool.AddCert(cert)
	writePEM(t, filepath.Join(p.dir, "ca.pem"), "CERTIFICATE", der)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue writes a leaf certificate and its key under name, and returns them.
func (p *pki) issue(t *testing.T, name string, serial int64, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	writePEM(t, filepath.Join(p.dir, name+".pem"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(p.dir, name+"-key.pem"), "PRIVATE KEY", kder)
	pair, err := tls.LoadX509KeyPair(filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// checkOverTLS sends one Check with the given client TLS configuration.
func checkOverTLS(t *testing.T, addr string, tc *tls.Config, tok string) error {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/", Headers: map[string]string{"authorization": "Bearer " + tok}},
	}}}
	resp, err := authv3.NewAuthorizationClient(cc).Check(ctx, req)
	if err == nil && resp.Status.Code != 0 {
		t.Fatalf("denied over TLS: %v", resp.Status)
	}
	return err
}

func TestTLSAndMTLS(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	tok, _ := idp.Token("alice", time.Hour)
	p := newPKI(t)
	p.issue(t, "server", 10, x509.ExtKeyUsageServerAuth)
	client := p.issue(t, "client", 20, x509.ExtKeyUsageClientAuth)
	stranger := newPKI(t).issue(t, "stranger", 30, x509.ExtKeyUsageClientAuth)

	t.Run("TLS", func(t *testing.T) {
		a := startApp(t, true, "--issuer", idp.URL, "--tls-cert", p.path("server.pem"), "--tls-key", p.path("server-key.pem"))
		if err := checkOverTLS(t, a.grpcAddr(), &tls.Config{RootCAs: p.pool}, tok); err != nil {
			t.Fatalf("gRPC over TLS: %v", err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool}}}
		req, _ := http.NewRequest("GET", "https://"+a.httpLis.Addr().String()+"/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("forward-auth over TLS: %v %v", resp, err)
		}
		resp.Body.Close()

		// cert-manager renews the certificate in place: new handshakes see it.
		p.issue(t, "server", 11, x509.ExtKeyUsageServerAuth)
		conn, err := tls.Dial("tcp", a.grpcAddr(), &tls.Config{RootCAs: p.pool, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if got := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 11 {
			t.Fatalf("serial %d after rotation, want 11", got)
		}
	})
	t.Run("mTLS", func(t *testing.T) {
		a := startApp(t, true, "--issuer", idp.URL, "--tls-cert", p.path("server.pem"), "--tls-key", p.path("server-key.pem"), "--tls-client-ca", p.path("ca.pem"))
		if err := checkOverTLS(t, a.grpcAddr(), &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{client}}, tok); err != nil {
			t.Fatalf("with a client certificate: %v", err)
		}
		if err := checkOverTLS(t, a.grpcAddr(), &tls.Config{RootCAs: p.pool}, tok); err == nil {
			t.Fatal("a client without a certificate was let in")
		}
		if err := checkOverTLS(t, a.grpcAddr(), &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{stranger}}, tok); err == nil {
			t.Fatal("a client certificate from another CA was let in")
		}
	})
}
