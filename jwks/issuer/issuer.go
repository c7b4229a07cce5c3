// Package issuer is a small in-process OpenID issuer: it holds signing keys,
// serves a discovery document and a JWKS, and mints tokens.
//
// `jwtauthz dev` runs one so that a newcomer needs no identity provider, and
// tests run one behind httptest, rotating its keys and making it fail.
package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Signer is a private signing key with its kid and alg.
type Signer struct {
	KID     string
	Alg     string
	Private crypto.Signer
}

// NewSigner makes a fresh key for alg: RS*/PS* (RSA 2048), ES256, ES384,
// ES512 or EdDSA (Ed25519). Its kid is the key's RFC 7638 thumbprint.
func NewSigner(alg string) (*Signer, error) {
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("issuer: unsupported alg %q", alg)
	}
	if err != nil {
		return nil, err
	}
	tp, err := (&jose.JSONWebKey{Key: k.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &Signer{KID: base64.RawURLEncoding.EncodeToString(tp)[:16], Alg: alg, Private: k}, nil
}

// MustSigner is NewSigner for tests and start-up code that cannot go on
// without a key.
func MustSigner(alg string) *Signer {
	s, err := NewSigner(alg)
	if err != nil {
		panic(err)
	}
	return s
}

// JWK returns the public half as a JWK with kid, alg and use "sig".
func (s *Signer) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.Private.Public(), KeyID: s.KID, Algorithm: s.Alg, Use: "sig"}
}

// Sign signs claims with this key, kid in the header.
func (s *Signer) Sign(claims jwt.Claims) (string, error) { return s.SignHeader(claims, nil) }

// SignHeader is Sign with the header members hdr set over alg, typ and
// kid; a nil value removes one (e.g. typ, which golang-jwt sets to JWT).
func (s *Signer) SignHeader(claims jwt.Claims, hdr map[string]any) (string, error) {
	t := jwt.NewWithClaims(jwt.GetSigningMethod(s.Alg), claims)
	t.Header["kid"] = s.KID
	for k, v := range hdr {
		if v == nil {
			delete(t.Header, k)
		} else {
			t.Header[k] = v
		}
	}
	return t.SignedString(s.Private)
}

// Fault makes the JWKS endpoint misbehave, for tests.
type Fault int

// Faults.
const (
	OK      Fault = iota
	Fail          // 500
	Hang          // no answer until the client gives up
	Garbage       // 200 with a body that is not a key set
	Empty         // 200 with {"keys":[]}
)

// Issuer serves its keys under its URL: {URL}/.well-known/openid-configuration
// and {URL}/jwks.json. It is safe for concurrent use.
type Issuer struct {
	URL string

	mu        sync.Mutex
	signing   *Signer   // mints tokens
	published []*Signer // in the JWKS
	fault     Fault
	maxAge    int

	jwksHits      atomic.Int64
	discoveryHits atomic.Int64
}

// New returns an issuer at url that signs with the first signer and
// publishes all of them.
func New(url string, signers ...*Signer) *Issuer {
	i := &Issuer{URL: url}
	i.Publish(signers...)
	return i
}

// Publish replaces the published keys; the first one signs from now on.
func (i *Issuer) Publish(signers ...*Signer) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.published = append([]*Signer(nil), signers...)
	if len(signers) > 0 {
		i.signing = signers[0]
	}
}

// Signing returns the key that mints tokens.
func (i *Issuer) Signing() *Signer {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.signing
}

// SetFault makes the JWKS endpoint misbehave (OK restores it).
func (i *Issuer) SetFault(f Fault) {
	i.mu.Lock()
	i.fault = f
	i.mu.Unlock()
}

// SetMaxAge sets the Cache-Control max-age of the JWKS, in seconds (0: none).
func (i *Issuer) SetMaxAge(seconds int) {
	i.mu.Lock()
	i.maxAge = seconds
	i.mu.Unlock()
}

// JWKSRequests returns how many JWKS requests were served.
func (i *Issuer) JWKSRequests() int64 { return i.jwksHits.Load() }

// DiscoveryRequests returns how many discovery requests were served.
func (i *Issuer) DiscoveryRequests() int64 { return i.discoveryHits.Load() }

// JWKSURL is where the key set is served.
func (i *Issuer) JWKSURL() string { return i.URL + "/jwks.json" }

// Mint signs claims with the signing key. iss, iat and exp (iat + 1 h) are
// filled in where absent.
func (i *Issuer) Mint(claims jwt.MapClaims) (string, error) {
	s := i.Signing()
	if s == nil {
		return "", fmt.Errorf("issuer: no signing key")
	}
	c := jwt.MapClaims{"iss": i.URL, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	return s.Sign(c)
}

// Token mints a token for sub that is valid for ttl.
func (i *Issuer) Token(sub string, ttl time.Duration) (string, error) {
	now := time.Now()
	return i.Mint(jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(ttl).Unix()})
}

// ServeHTTP serves the discovery document and the key set, by the last
// element of the path, so the issuer can be mounted under any prefix.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case hasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
		i.discoveryHits.Add(1)
		writeJSON(w, map[string]any{
			"issuer":                                i.URL,
			"jwks_uri":                              i.JWKSURL(),
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
		})
	case hasSuffix(r.URL.Path, "/jwks.json"):
		i.jwksHits.Add(1)
		i.serveJWKS(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	fault, maxAge := i.fault, i.maxAge
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(i.published))}
	for _, s := range i.published {
		set.Keys = append(set.Keys, s.JWK())
	}
	i.mu.Unlock()
	switch fault {
	case Fail:
		http.Error(w, "identity provider down", http.StatusInternalServerError)
		return
	case Hang:
		<-r.Context().Done()
		return
	case Garbage:
		w.Write([]byte("<html>maintenance</html>"))
		return
	case Empty:
		set.Keys = set.Keys[:0] // an empty array, not null
	}
	if maxAge > 0 {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", maxAge))
	}
	writeJSON(w, set)
}

func hasSuffix(p, s string) bool { return len(p) >= len(s) && p[len(p)-len(s):] == s }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// Server is an Issuer behind a real loopback HTTP server.
type Server struct {
	*Issuer
	HTTP *httptest.Server
}

// NewServer starts an issuer on 127.0.0.1 that signs with the first signer
// (a fresh ES256 key if none is given). Close stops it.
func NewServer(signers ...*Signer) *Server {
	if len(signers) == 0 {
		signers = []*Signer{MustSigner("ES256")}
	}
	i := New("", signers...)
	hs := httptest.NewServer(i)
	i.URL = hs.URL
	return &Server{Issuer: i, HTTP: hs}
}

// Close stops the server.
func (s *Server) Close() { s.HTTP.Close() }
