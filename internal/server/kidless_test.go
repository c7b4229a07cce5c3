package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// serveKeysWithoutKID serves a JWKS of the signers' public keys, none with
// a kid.
func serveKeysWithoutKID(t *testing.T, signers ...*issuer.Signer) string {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, s := range signers {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: s.Private.Public(), Algorithm: s.Alg, Use: "sig"})
	}
	doc, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/jwks.json"
}

// signWithoutKID signs claims with s, the header naming no kid.
func signWithoutKID(t *testing.T, s *issuer.Signer, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.GetSigningMethod(s.Alg), claims).SignedString(s.Private)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil || h["kid"] != nil {
		t.Fatalf("header %s: a kid, or not JSON (%v)", hdr, err)
	}
	return tok
}

// A key set of two keys without kid keeps both, and a token without kid is
// checked against each: the one the second key signed is allowed over
// gRPC and forward-auth, as the one the first key signed; one neither
// signed is denied.
func TestTokenWithoutKIDAgainstTwoKeysWithoutKID(t *testing.T) {
	const iss = "https://kidless.example"
	first, second, stranger := issuer.MustSigner("ES256"), issuer.MustSigner("ES256"), issuer.MustSigner("ES256")
	a := startApp(t, true, "--issuer", iss, "--jwks-url", serveKeysWithoutKID(t, first, second))
	claims := func(sub string) jwt.MapClaims {
		return jwt.MapClaims{"iss": iss, "sub": sub, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	}
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	tests := []struct {
		name     string
		signer   *issuer.Signer
		sub      string
		wantCode codes.Code
		wantWhy  string // the denial's reason
		wantHTTP int
	}{
		{name: "signed by the second key", signer: second, sub: "bob", wantCode: codes.OK, wantHTTP: http.StatusOK},
		{name: "signed by the first key", signer: first, sub: "alice", wantCode: codes.OK, wantHTTP: http.StatusOK},
		{name: "signed by neither", signer: stranger, sub: "mallory", wantCode: codes.Unauthenticated, wantWhy: "bad_signature", wantHTTP: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := signWithoutKID(t, tt.signer, claims(tt.sub))
			for pass := range 2 { // the second is answered by a cache
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
					Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api", Path: "/x", Headers: map[string]string{"authorization": "Bearer " + tok}},
				}}})
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				if got := codes.Code(resp.Status.Code); got != tt.wantCode || (tt.wantWhy != "" && resp.Status.Message != tt.wantWhy) {
					t.Fatalf("gRPC pass %d: %v %q, want %v %q", pass, got, resp.Status.Message, tt.wantCode, tt.wantWhy)
				}
				if tt.wantCode == codes.OK && resp.GetOkResponse() == nil {
					t.Fatalf("gRPC pass %d: OK without an OkResponse", pass)
				}
				code, _, hdr := get(t, a.httpURL()+"/auth", "Authorization", "Bearer "+tok, "X-Original-URI", "/x", "X-Original-Method", "GET")
				if code != tt.wantHTTP {
					t.Fatalf("forward-auth pass %d: %d, want %d", pass, code, tt.wantHTTP)
				}
				if code == http.StatusOK && hdr.Get("X-Auth-Subject") != tt.sub {
					t.Fatalf("forward-auth pass %d: subject %q, want %q", pass, hdr.Get("X-Auth-Subject"), tt.sub)
				}
			}
		})
	}
}
