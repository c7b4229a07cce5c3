package authz_test

// Fuzz targets of the request path. Each asserts, besides not panicking,
// that every answer is well formed and that nothing is allowed unless the
// request carries a token this file verifies on its own (crypto/ecdsa and
// crypto/ed25519, not golang-jwt) under a key the IdP published.
//
//	go test ./authz -run '^$' -fuzz '^FuzzCheck$' -fuzztime=20s
//
// The committed corpus (testdata/fuzz) holds tokens signed by fuzzSigner, a
// key derived from a fixed seed, valid at the env's fixed clock for
// fuzzIssuer: they stay valid, so the fuzzer can mutate real tokens.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/extauthz"
	"github.com/jwtauthz/jwtauthz/authz/forwardauth"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// fuzzIssuer is the iss of the fuzz env's provider.
const fuzzIssuer = "https://issuer.fuzz.test"

// fuzzSigner is an Ed25519 key from a fixed seed (Ed25519 signatures are
// deterministic too), published by every fuzz env.
var fuzzSigner = func() *issuer.Signer {
	seed := sha256.Sum256([]byte("jwtauthz fuzz corpus key"))
	return &issuer.Signer{KID: "fuzz-ed25519", Alg: "EdDSA", Private: ed25519.NewKeyFromSeed(seed[:])}
}()

// fuzzEnv is an env for fuzzing: the IdP publishes fuzzSigner and a fresh
// ES256 key; the provider reads tokens from the authorization header, the
// __session cookie, the access_token query parameter and x-jwt.
type fuzzEnv struct {
	*env
	es     *issuer.Signer
	keys   map[string]*issuer.Signer
	valid  string // signed by fuzzSigner
	validE string // signed by es
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	es := issuer.MustSigner("ES256")
	e := newEnv(f, []*issuer.Signer{fuzzSigner, es}, withConfig(func(_ *authz.Config, p *authz.ProviderConfig) {
		p.Issuer = fuzzIssuer
		p.TokenSources = []authz.TokenSource{authz.BearerSource, {Cookie: "__session"}, {Query: "access_token"}, {Header: "x-jwt"}}
	}))
	fe := &fuzzEnv{env: e, es: es, keys: map[string]*issuer.Signer{fuzzSigner.KID: fuzzSigner, es.KID: es}}
	fe.valid, fe.validE = fe.mint(fuzzSigner, "user_1"), fe.mint(es, "user_2")
	return fe
}

// mint signs a token valid for an hour at the env's clock.
func (fe *fuzzEnv) mint(s *issuer.Signer, sub string) string {
	now := fe.clock.Now()
	tok, err := s.Sign(jwt.MapClaims{"iss": fuzzIssuer, "sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	if err != nil {
		panic(err)
	}
	return tok
}

// expand replaces the placeholders $VALID and $ES with valid tokens, so that
// seeds written by hand reach verification.
func (fe *fuzzEnv) expand(s string) string {
	return strings.NewReplacer("$VALID", fe.valid, "$ES", fe.validE).Replace(s)
}

// verified returns the subs of the tokens found in texts that verify, by
// this file's own reading, under a published key.
func (fe *fuzzEnv) verified(texts ...string) map[string]bool {
	var all []string
	for _, text := range texts {
		all = append(all, text)
		if u, err := url.QueryUnescape(text); err == nil && u != text {
			all = append(all, u)
		}
	}
	subs := map[string]bool{}
	for _, text := range all {
		for _, cand := range tokenRuns(text) {
			if sub, ok := fe.verify(cand); ok {
				subs[sub] = true
			}
		}
	}
	return subs
}

// subjectHeader is the x-auth-subject jwtauthz sets for sub: none if empty
// or unsafe in a header.
func subjectHeader(sub string) string {
	for i := 0; i < len(sub); i++ {
		if sub[i] < 0x20 || sub[i] == 0x7f {
			return ""
		}
	}
	if len(sub) > 4096 {
		return ""
	}
	return sub
}

// tokenRuns returns the maximal runs of base64url characters and dots.
func tokenRuns(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	})
}

// verify is the oracle: three segments; the header's kid names a published
// key and its alg is that key's; the signature verifies over the first two
// segments as sent; iss is fuzzIssuer and exp is not past (with the skew).
func (fe *fuzzEnv) verify(tok string) (sub string, ok bool) {
	seg := strings.Split(tok, ".")
	if len(seg) != 3 {
		return "", false
	}
	member := func(m map[string]json.RawMessage, name string, dst any) bool {
		return json.Unmarshal(m[name], dst) == nil
	}
	var h, c map[string]json.RawMessage
	hb, err1 := base64.RawURLEncoding.DecodeString(seg[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(seg[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(seg[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &h) != nil || json.Unmarshal(pb, &c) != nil {
		return "", false
	}
	var alg, kid, iss string
	var exp float64
	if !member(h, "alg", &alg) || !member(h, "kid", &kid) || !member(c, "iss", &iss) || !member(c, "exp", &exp) {
		return "", false
	}
	if c["sub"] != nil && !member(c, "sub", &sub) {
		return "", false
	}
	k := fe.keys[kid]
	if k == nil || alg != k.Alg || iss != fuzzIssuer || exp < float64(fe.clock.Now().Add(-authz.DefaultClockSkew).Unix()) {
		return "", false
	}
	input := []byte(seg[0] + "." + seg[1])
	switch pub := k.Private.Public().(type) {
	case ed25519.PublicKey:
		ok = ed25519.Verify(pub, input, sig)
	case *ecdsa.PublicKey:
		d := sha256.Sum256(input)
		ok = len(sig) == 64 && ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	}
	return sub, ok
}

// FuzzExtractToken fuzzes where tokens are read from: the authorization
// header, the cookie header, the query, and a header without prefix.
func FuzzExtractToken(f *testing.F) {
	fe := newFuzzEnv(f)
	for _, s := range [][4]string{
		{"Bearer $VALID", "", "/v1/things", ""},
		{"bearer  $ES ", "", "/", ""},
		{"", "a=1; __session=$VALID; b=2", "/", ""},
		{"", `__session="$ES"`, "/", ""},
		{"", "__session=; __session=$VALID", "/", ""},
		{"", "", "/x?a=1&access_token=$VALID&b", ""},
		{"", "", "/x?access_token=" + url.QueryEscape("$ES"), ""},
		{"", "", "/x", "  $VALID  "},
		{"Basic dXNlcg==", "__session=$VALID", "/?access_token=junk", "junk"},
		{"Bearer $VALID,Bearer $ES", "", "/", ""},
		{"Bearer", "__session", "/?access_token", ""},
		{"", "__session=$VALID; __SESSION=$ES", "/?access_token=$VALID&acc%65ss_token=$ES", ""},
		{"", "__session=$VALID,__session=$ES; a=b", "/?access_token=$VALID;access_token=$ES", ""},
		{"", "a=b; __session=$VALID ; %5F_session[]=$ES", "/?access_token=$VALID&access.token=$ES", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	drop := newDropTokenEnv(f, fe)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, authorization, cookie, path, xjwt string) {
		authorization, cookie, path, xjwt = fe.expand(authorization), fe.expand(cookie), fe.expand(path), fe.expand(xjwt)
		req := authz.Request{Method: "GET", Host: "api.example.com", Path: path,
			Headers: authz.MapHeaders{"authorization": authorization, "cookie": cookie, "x-jwt": xjwt}}
		d := fe.eng.Check(ctx, &req)
		checkDecision(t, fe, &d, authorization, cookie, path, xjwt)
		checkForwarded(t, fe, drop, cookie, path)
		// A valid bearer token decides, whatever the other places hold (a
		// path servers would read differently is refused first).
		req.Headers = authz.MapHeaders{"authorization": "Bearer " + fe.valid, "cookie": cookie, "x-jwt": xjwt}
		if d := fe.eng.Check(ctx, &req); !d.Allow && d.Reason != authz.ReasonBadRequest {
			t.Fatalf("valid bearer token refused (%v) with cookie %q, path %q, x-jwt %q", d.Reason, cookie, path, xjwt)
		}
	})
}

// newDropTokenEnv is fe's provider with forward_token: false, under its own
// IdP publishing fe's keys, so that fe.verify is the oracle of both.
func newDropTokenEnv(f *testing.F, fe *fuzzEnv) *env {
	return newEnv(f, []*issuer.Signer{fuzzSigner, fe.es}, withConfig(func(_ *authz.Config, p *authz.ProviderConfig) {
		p.Issuer = fuzzIssuer
		p.TokenSources = []authz.TokenSource{authz.BearerSource, {Cookie: "__session"}, {Query: "access_token"}, {Header: "x-jwt"}}
		p.DropToken = true
	}))
}

// checkForwarded asserts, for a request whose token can only be in the
// cookie header (and then in the query alone), that an allow read the one
// copy of the token there is under any server's reading of names (so an
// upstream reads no other token than the one verified), and that with
// forward_token: false what is forwarded holds no copy at all.
func checkForwarded(t *testing.T, fe *fuzzEnv, drop *env, cookie, path string) {
	t.Helper()
	ctx := context.Background()
	r := authz.Request{Method: "GET", Host: "api.example.com", Path: "/v1/things", Headers: authz.MapHeaders{"cookie": cookie}}
	if d := drop.eng.Check(ctx, &r); d.Allow {
		vals := namedValues(cookie, ";,", "__session")
		if len(vals) != 1 || !fe.verified(vals[0])[d.Subject] {
			t.Fatalf("ALLOWED as %q with cookie %q, whose readings of __session are %q", d.Subject, cookie, vals)
		}
		if !d.CookieSet || len(namedValues(d.Cookie, ";,", "__session")) > 0 {
			t.Fatalf("forward_token: false forwarded cookie %q (set %v) for cookie %q", d.Cookie, d.CookieSet, cookie)
		}
	}
	r = authz.Request{Method: "GET", Host: "api.example.com", Path: path, Headers: authz.MapHeaders{}}
	if d := drop.eng.Check(ctx, &r); d.Allow {
		_, q, _ := strings.Cut(path, "?")
		vals := namedValues(q, "&;", "access_token")
		if len(vals) != 1 || !fe.verified(vals[0])[d.Subject] {
			t.Fatalf("ALLOWED as %q with path %q, whose readings of access_token are %q", d.Subject, path, vals)
		}
		var kept []string // the query once Envoy removed the parameters named
		for p := range strings.SplitSeq(q, "&") {
			if k, _, _ := strings.Cut(p, "="); !slices.Contains(d.RemoveQuery, k) {
				kept = append(kept, p)
			}
		}
		if !slices.Equal(d.RemoveQuery, []string{"access_token"}) || len(namedValues(strings.Join(kept, "&"), "&;", "access_token")) > 0 {
			t.Fatalf("forward_token: false removes %q from path %q", d.RemoveQuery, path)
		}
	}
}

// namedValues returns the values of the pairs in s (separated by any of
// seps) whose names read as name to some server: trimmed of spaces and
// controls, percent-decoded up to three times, without an index, in lower
// case, with "." and " " as "_". It is this test's own reading, a part of
// what jwtauthz counts as the same name.
func namedValues(s, seps, name string) []string {
	var out []string
	for _, pair := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(seps, r) }) {
		k, v, _ := strings.Cut(pair, "=")
		trim := func(s string) string {
			return strings.TrimFunc(s, func(r rune) bool { return r < ' ' || unicode.IsSpace(r) })
		}
		k = trim(k)
		for range 3 {
			if u, err := url.QueryUnescape(k); err == nil {
				k = trim(u)
			}
		}
		if i := strings.IndexByte(k, '['); i >= 0 && strings.HasSuffix(k, "]") {
			k = k[:i]
		}
		k = strings.NewReplacer(".", "_", " ", "_").Replace(strings.ToLower(k))
		if k == name {
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if u, err := url.QueryUnescape(v); err == nil && seps[0] == '&' {
				v = u
			}
			out = append(out, v)
		}
	}
	return out
}

// checkDecision asserts the invariants of a Decision for a request whose
// header values and path are texts.
func checkDecision(t *testing.T, fe *fuzzEnv, d *authz.Decision, texts ...string) {
	t.Helper()
	if d.Reason.String() == "unknown" {
		t.Fatalf("reason %d out of range", d.Reason)
	}
	if !d.Allow {
		if d.Challenge == "" || d.Body == "" || d.Status() == http.StatusOK {
			t.Fatalf("denial %v without challenge, body or error status", d.Reason)
		}
		return
	}
	if subs := fe.verified(texts...); !subs[d.Subject] || d.Reason != authz.ReasonOK {
		t.Fatalf("ALLOWED (%v) as %q without a token of that sub that verifies under a published key (verified: %v): %q", d.Reason, d.Subject, subs, texts)
	}
}

// FuzzCheck fuzzes the whole Check path from the Envoy adapter down:
// the headers of a CheckRequest (as the headers map, or as a header_map
// with raw values) and its path. Lines of headers are "name:value".
func FuzzCheck(f *testing.F) {
	fe := newFuzzEnv(f)
	srv := extauthz.NewServer(fe.eng)
	for _, s := range []struct {
		headers string
		raw     bool
		path    string
	}{
		{"authorization:Bearer $VALID\nx-request-id:r1", false, "/v1/things"},
		{"authorization:Bearer $ES", true, ""},
		{"authorization:Bearer $VALID\nauthorization:Bearer $ES", true, "/"},
		{":path:/x?access_token=$VALID\n:method:GET\n:authority:api", false, ""},
		{"cookie:__session=$VALID\ncookie:other=1", true, "/"},
		{"x-jwt:$ES\nx-auth-subject:admin", false, "/admin"},
		{"authorization:Bearer " + strings.Repeat("A", 9000), false, "/"},
		{"authorization:Bearer e30.e30.e30\nx-request-id:r1", false, "/"},
	} {
		f.Add(s.headers, s.raw, s.path)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, headers string, raw bool, path string) {
		headers, path = fe.expand(headers), fe.expand(path)
		h := &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api.example.com", Path: path}
		texts := []string{path}
		if raw {
			h.HeaderMap = &corev3.HeaderMap{}
		} else {
			h.Headers = map[string]string{}
		}
		for _, line := range strings.Split(headers, "\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "" && v != "" { // a pseudo-header: ":path:/x"
				k, v, _ = strings.Cut(v, ":")
				k = ":" + k
			}
			texts = append(texts, v)
			switch {
			case !raw:
				h.Headers[k] = v
			case utf8.ValidString(v):
				h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: k, Value: v})
			default:
				h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
			}
		}
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}
		resp, err := srv.Check(ctx, req)
		checkResponse(t, fe, resp, err, texts)
	})
}

// checkResponse asserts the invariants of a CheckResponse: a status, always;
// an allow only with a verified token, whose sub is the x-auth-subject set;
// a denial with its HTTP status and challenge.
func checkResponse(t *testing.T, fe *fuzzEnv, resp *authv3.CheckResponse, err error, texts []string) {
	t.Helper()
	if err != nil || resp == nil || resp.Status == nil {
		t.Fatalf("Check: %v, %v (a response without status is an allow to Envoy)", resp, err)
	}
	switch code := codes.Code(resp.Status.Code); code {
	case codes.OK:
		if resp.GetOkResponse() == nil || !verifiedAs(fe.verified(texts...), okHeaders(resp)[authz.HeaderSubject]) {
			t.Fatalf("ALLOWED as %q without a token of that sub that verifies under a published key: %q", okHeaders(resp)[authz.HeaderSubject], texts)
		}
	case codes.Unauthenticated, codes.PermissionDenied, codes.Unavailable, codes.InvalidArgument:
		d := resp.GetDeniedResponse()
		if d == nil || deniedHeader(resp, "www-authenticate") == "" || reasonLabel(resp.Status.Message) < 0 {
			t.Fatalf("malformed denial: %v", resp)
		}
		if st := d.GetStatus().GetCode(); st != 400 && st != 401 && st != 403 && st != 431 && st != 503 {
			t.Fatalf("denial with HTTP status %d", st)
		}
	default:
		t.Fatalf("gRPC code %v", code)
	}
}

// verifiedAs reports whether header, an x-auth-subject set on an allow, is
// what jwtauthz sets for one of the verified subs.
func verifiedAs(subs map[string]bool, header string) bool {
	for sub := range subs {
		if subjectHeader(sub) == header {
			return true
		}
	}
	return false
}

// reasonLabel returns the reason with the given label, or -1.
func reasonLabel(label string) int {
	for _, r := range authz.Reasons() {
		if r.String() == label {
			return int(r)
		}
	}
	return -1
}

// FuzzForwardAuth fuzzes the HTTP adapter: request headers (repeatable;
// X-Forwarded-*, X-Original-*, Authorization, Cookie), method and target.
func FuzzForwardAuth(f *testing.F) {
	fe := newFuzzEnv(f)
	fa := forwardauth.New(fe.eng)
	for _, s := range [][3]string{
		{"Authorization:Bearer $VALID\nX-Forwarded-Uri:/v1/things\nX-Forwarded-Method:GET\nX-Forwarded-Host:api", "GET", "/auth"},
		{"Authorization:Bearer $ES\nAuthorization:Bearer $VALID", "GET", "/auth"},
		{"X-Original-URI:/x?access_token=$VALID\nX-Original-Method:POST", "GET", "/"},
		{"Cookie:a=1\nCookie:__session=$ES", "GET", "/"},
		{"X-Jwt:$VALID\nX-Request-Id:r1", "HEAD", "/auth?x=1"},
		{"Authorization:Bearer x.y.z", "POST", "/auth"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, headers, method, target string) {
		headers, target = fe.expand(headers), fe.expand(target)
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: "/"}
		}
		hr := &http.Request{Method: method, URL: u, Host: "auth.internal", Header: http.Header{}}
		texts := []string{target, u.RequestURI()}
		for _, line := range strings.Split(headers, "\n") {
			k, v, _ := strings.Cut(line, ":")
			hr.Header.Add(k, v)
			texts = append(texts, v)
		}
		rec := httptest.NewRecorder()
		fa.ServeHTTP(rec, hr)
		switch rec.Code {
		case http.StatusOK:
			if got := rec.Header().Get("X-Auth-Subject"); !verifiedAs(fe.verified(texts...), got) {
				t.Fatalf("ALLOWED as %q without a token of that sub that verifies under a published key: %q", got, texts)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestHeaderFieldsTooLarge, http.StatusServiceUnavailable:
			var body map[string]string
			if rec.Header().Get("WWW-Authenticate") == "" || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body["error"] == "" {
				t.Fatalf("malformed denial %d: %v %q", rec.Code, rec.Header(), rec.Body)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}
