package server

// Issue 22's token checks through the whole server, over gRPC and
// forward-auth: required_typ, max_lifetime, subjects, and an Entra-like
// multi-tenant issuer template whose keys are discovered at the "common"
// tenant.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// tenantIdP is an IdP of many tenants, as Entra ID's: its common
// discovery document names the issuer template {URL}/{tenantid}/v2.0, and
// one key set signs every tenant's tokens.
type tenantIdP struct {
	*httptest.Server
	signer    *issuer.Signer
	discovery atomic.Int32
}

func newTenantIdP(t *testing.T) *tenantIdP {
	p := &tenantIdP{signer: issuer.MustSigner("RS256")}
	mux := http.NewServeMux()
	mux.HandleFunc("/common/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discovery.Add(1)
		json.NewEncoder(w).Encode(map[string]string{"issuer": p.URL + "/{tenantid}/v2.0", "jwks_uri": p.URL + "/common/discovery/v2.0/keys"})
	})
	mux.HandleFunc("/common/discovery/v2.0/keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{p.signer.JWK()}})
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func (p *tenantIdP) iss(tenant string) string { return p.URL + "/" + tenant + "/v2.0" }

// mintWith signs claims (iat now and exp in an hour unless given; nil
// removes one) with hdr in the JWS header (nil removes one).
func mintWith(t *testing.T, s *issuer.Signer, hdr map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": "user_1", "aud": "api", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	str, err := s.SignHeader(c, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return str
}

// tokenCheckE2E is one token through both listeners.
type tokenCheckE2E struct {
	name       string
	tok        string
	wantReason string // "": allowed
	wantDesc   string // in the forward-auth challenge's error_description
	wantIss    string // the x-auth-issuer of an allow
}

func runTokenChecksE2E(t *testing.T, a *testApp, tests []tokenCheckE2E) {
	t.Helper()
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 2 { // verified, then from the token cache (or the negative cache)
				resp, err := client.Check(context.Background(), checkReq(tt.tok, "/x"))
				if err != nil {
					t.Fatal(err)
				}
				status, _, hdr := get(t, a.httpURL()+"/auth", "Authorization", "Bearer "+tt.tok, "X-Original-URI", "/x", "X-Original-Method", "GET")
				if tt.wantReason == "" {
					h := map[string]string{}
					for _, o := range resp.GetOkResponse().GetHeaders() {
						h[o.Header.Key] = o.Header.Value
					}
					if codes.Code(resp.Status.Code) != codes.OK || h["x-auth-issuer"] != tt.wantIss || h["x-auth-subject"] != "user_1" {
						t.Fatalf("check %d, gRPC: %v %q headers %v; want OK, x-auth-issuer %s", i, codes.Code(resp.Status.Code), resp.Status.Message, h, tt.wantIss)
					}
					if status != http.StatusOK || hdr.Get("X-Auth-Issuer") != tt.wantIss {
						t.Fatalf("check %d, forward-auth: %d x-auth-issuer %q; want 200 %s", i, status, hdr.Get("X-Auth-Issuer"), tt.wantIss)
					}
					continue
				}
				if codes.Code(resp.Status.Code) != codes.Unauthenticated || resp.Status.Message != tt.wantReason || resp.GetOkResponse() != nil {
					t.Fatalf("check %d, gRPC: %v %q; want Unauthenticated %s", i, codes.Code(resp.Status.Code), resp.Status.Message, tt.wantReason)
				}
				want := `error="invalid_token", error_description="` + tt.wantDesc
				if ch := hdr.Get("WWW-Authenticate"); status != http.StatusUnauthorized || !strings.Contains(ch, want) || hdr.Get("X-Auth-Issuer") != "" {
					t.Fatalf("check %d, forward-auth: %d %q; want 401 with %s", i, status, ch, want)
				}
			}
		})
	}
}

func TestTokenChecksEndToEnd(t *testing.T) {
	idp := issuer.NewServer(issuer.MustSigner("ES256"))
	defer idp.Close()
	a := startApp(t, true, "--config", writeFile(t, "providers:\n  - name: strict\n    issuer: "+idp.URL+"\n    audiences: [api]\n"+
		"    required_typ: at+jwt\n    max_lifetime: 2h\n    subjects:\n      exact: [admin]\n      prefix: [user_]\n      regex: 'svc-[a-z]+'\n"))
	s := idp.Signing()
	at := map[string]any{"typ": "at+jwt"}
	tok := func(hdr map[string]any, claims jwt.MapClaims) string {
		c := jwt.MapClaims{"iss": idp.URL}
		for k, v := range claims {
			c[k] = v
		}
		return mintWith(t, s, hdr, c)
	}
	now := time.Now()
	runTokenChecksE2E(t, a, []tokenCheckE2E{
		{name: "all checks pass", tok: tok(at, nil), wantIss: idp.URL},
		{name: "typ application/AT+JWT", tok: tok(map[string]any{"typ": "application/AT+JWT"}, nil), wantIss: idp.URL},
		{name: "typ JWT", tok: tok(nil, nil), wantReason: "wrong_typ", wantDesc: `header \"typ\" must be \"at+jwt\"`},
		{name: "typ missing", tok: tok(map[string]any{"typ": nil}, nil), wantReason: "wrong_typ", wantDesc: `header \"typ\" must be \"at+jwt\"`},
		{name: "lifetime at the maximum", tok: tok(at, jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(2 * time.Hour).Unix()}), wantIss: idp.URL},
		{name: "lifetime beyond", tok: tok(at, jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(2*time.Hour + time.Second).Unix()}),
			wantReason: "lifetime_too_long", wantDesc: "token lifetime exceeds 2h0m0s"},
		{name: "no iat, exp far", tok: tok(at, jwt.MapClaims{"iat": nil, "exp": now.Add(3 * time.Hour).Unix()}),
			wantReason: "lifetime_too_long", wantDesc: "token lifetime exceeds 2h0m0s"},
		{name: "subject by prefix", tok: tok(at, jwt.MapClaims{"sub": "user_1"}), wantIss: idp.URL},
		{name: "subject not accepted", tok: tok(at, jwt.MapClaims{"sub": "mallory"}), wantReason: "wrong_subject", wantDesc: `claim \"sub\" is not among the provider's subjects`},
		{name: "subject regex matches a part only", tok: tok(at, jwt.MapClaims{"sub": "svc-a1"}), wantReason: "wrong_subject", wantDesc: `claim \"sub\"`},
	})
	// Each denial counts under the provider's label.
	for _, r := range []string{"wrong_typ", "lifetime_too_long", "wrong_subject"} {
		if got := testutil.ToFloat64(a.metrics.checks.WithLabelValues("deny", r, "strict")); got == 0 {
			t.Errorf("jwtauthz_check_total{deny,%s,strict} = 0", r)
		}
	}
}

func TestTenantsEndToEnd(t *testing.T) {
	const tenantA, tenantB = "11111111-2222-3333-4444-555555555555", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	idp := newTenantIdP(t)
	tok := func(tenant string, tid any) string {
		return mintWith(t, idp.signer, nil, jwt.MapClaims{"iss": idp.iss(tenant), "tid": tid})
	}
	t.Run("listed", func(t *testing.T) {
		a := startApp(t, true, "--config", writeFile(t, "providers:\n  - name: entra\n    issuer: "+idp.URL+"/{tenantid}/v2.0\n    tenants: ["+tenantA+"]\n    audiences: [api]\n"))
		runTokenChecksE2E(t, a, []tokenCheckE2E{
			{name: "listed tenant", tok: tok(tenantA, tenantA), wantIss: idp.iss(tenantA)},
			{name: "tenant not listed", tok: tok(tenantB, tenantB), wantReason: "wrong_issuer", wantDesc: "issuer not accepted"},
			{name: "tid of another tenant", tok: tok(tenantA, tenantB), wantReason: "invalid_claims", wantDesc: `claim \"tid\" must be the tenant \"iss\" names`},
			{name: "tid missing", tok: tok(tenantA, nil), wantReason: "invalid_claims", wantDesc: `missing claim \"tid\"`},
			{name: "the template as iss", tok: tok("{tenantid}", "{tenantid}"), wantReason: "wrong_issuer", wantDesc: "issuer not accepted"},
		})
		if got := testutil.ToFloat64(a.metrics.checks.WithLabelValues("allow", "ok", "entra")); got == 0 {
			t.Error("the listed tenant's allows do not count under provider entra")
		}
		if got := testutil.ToFloat64(a.metrics.checks.WithLabelValues("deny", "invalid_claims", "entra")); got == 0 {
			t.Error("the tid denials do not count under provider entra")
		}
	})
	t.Run("any tenant", func(t *testing.T) {
		a := startApp(t, true, "--config", writeFile(t, "providers:\n  - name: entra\n    issuer: "+idp.URL+"/{tenantid}/v2.0\n    tenants: \"*\"\n    audiences: [api]\n"))
		runTokenChecksE2E(t, a, []tokenCheckE2E{
			{name: "a tenant", tok: tok(tenantA, tenantA), wantIss: idp.iss(tenantA)},
			{name: "another tenant", tok: tok(tenantB, tenantB), wantIss: idp.iss(tenantB)},
			{name: "tid of another tenant", tok: tok(tenantA, tenantB), wantReason: "invalid_claims", wantDesc: `claim \"tid\" must be the tenant \"iss\" names`},
			{name: "two segments", tok: tok(tenantA+"/x", tenantA), wantReason: "wrong_issuer", wantDesc: "issuer not accepted"},
		})
	})
	if idp.discovery.Load() == 0 {
		t.Error("the keys were not discovered at the common tenant")
	}
}
