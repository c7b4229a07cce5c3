package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// adminRules are the rules of issue 17's report: /admin and /admin/
// (prefix) need the admin scope, /public/ is open, and last comes the
// catch-all, whose action is filled in.
const adminRules = `
rules:
  - match: {path: /admin}
    require: {scopes: [admin]}
  - match: {path_prefix: /admin/}
    require: {scopes: [admin]}
  - match: {path_prefix: /public/}
    action: allow
  - action: %s
`

// pathApp starts jwtauthz with adminRules behind the catch-all action and
// the extra YAML.
func pathApp(t *testing.T, idp *issuer.Server, catchAll, extra string) *testApp {
	t.Helper()
	cfg := "providers:\n  - name: idp\n    issuer: " + idp.URL + "\n" + strings.Replace(adminRules, "%s", catchAll, 1) + extra
	return startApp(t, true, "--config", writeFile(t, cfg))
}

// pathCheck is one original request and the HTTP status jwtauthz must
// answer it with, over gRPC and over forward-auth.
type pathCheck struct {
	name  string
	token string // "" sends none
	path  string
	want  int
}

// checkPaths sends each check over gRPC (Envoy's Check) and over HTTP
// forward-auth, with the URI as Traefik and Caddy send it
// (X-Forwarded-Uri) and as the shipped nginx config does (X-Original-URI).
func checkPaths(t *testing.T, a *testApp, checks []pathCheck) {
	t.Helper()
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := client.Check(ctx, checkReq(c.token, c.path))
			if err != nil {
				t.Fatal(err)
			}
			got := http.StatusOK
			if codes.Code(resp.Status.Code) != codes.OK {
				got = int(resp.GetDeniedResponse().GetStatus().GetCode())
			}
			if got != c.want {
				t.Errorf("gRPC Check of %q: %d (%s), want %d", c.path, got, resp.Status.Message, c.want)
			}
			for _, h := range []string{"X-Forwarded-Uri", "X-Original-URI"} {
				hdr := []string{h, c.path, "X-Forwarded-Method", "GET"}
				if c.token != "" {
					hdr = append(hdr, "Authorization", "Bearer "+c.token)
				}
				if code, body, _ := get(t, a.httpURL()+"/auth", hdr...); code != c.want {
					t.Errorf("forward-auth, %s %q: %d %s, want %d", h, c.path, code, body, c.want)
				}
			}
		})
	}
}

// TestPathCaseFragmentAndDoubleEncoding: behind a proxy in front of an app
// that routes without case (Express's default, ASP.NET, IIS), GET
// /ADMIN/x is the admin handler's; a fragment is cut off by the app; and an
// app that decodes twice reads /public/%252e%252e/admin as /admin. With
// path_case unset, each is refused rather than let through by the
// catch-all: a token without the admin scope reached the admin handler
// (catch-all require), and no token at all was needed (catch-all allow).
func TestPathCaseFragmentAndDoubleEncoding(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	user, err := idp.Token("alice", time.Hour) // no admin scope
	if err != nil {
		t.Fatal(err)
	}
	t.Run("catch-all require", func(t *testing.T) {
		checkPaths(t, pathApp(t, idp, "require", ""), []pathCheck{
			{name: "control: admin path", token: user, path: "/admin/x", want: 403},
			{name: "control: other path", token: user, path: "/v1/things", want: 200},
			{name: "control: upper case past the prefix", token: user, path: "/admin/X", want: 403},
			{name: "prefix in upper case", token: user, path: "/ADMIN/x", want: 400},
			{name: "exact path in mixed case", token: user, path: "/Admin", want: 400},
			{name: "upper-case letter by escape", token: user, path: "/%41dmin/x", want: 400},
			{name: "fragment", token: user, path: "/admin#x", want: 400},
			{name: "fragment after a slash", token: user, path: "/admin/#", want: 400},
			{name: "double-encoded dot segments", token: user, path: "/public/%252e%252e/admin", want: 400},
		})
	})
	t.Run("catch-all allow", func(t *testing.T) {
		checkPaths(t, pathApp(t, idp, "allow", ""), []pathCheck{
			{name: "control: admin path", path: "/admin/x", want: 401},
			{name: "control: other path", path: "/v1/things", want: 200},
			{name: "prefix in upper case", path: "/ADMIN/x", want: 400},
			{name: "exact path in mixed case", path: "/Admin", want: 400},
			{name: "fragment", path: "/admin#x", want: 400},
			{name: "double-encoded dot segments", path: "/public/%252e%252e/admin", want: 400},
		})
	})
}

// TestPathCaseStated: path_case says how the upstream compares paths, and
// rules follow it. (Older builds refuse the key: this test cannot run
// there.)
func TestPathCaseStated(t *testing.T) {
	idp := issuer.NewServer()
	defer idp.Close()
	user, err := idp.Token("alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := idp.Mint(jwt.MapClaims{"sub": "root", "scope": "admin"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("insensitive", func(t *testing.T) {
		checkPaths(t, pathApp(t, idp, "allow", "path_case: insensitive\n"), []pathCheck{
			{name: "prefix in upper case, no token", path: "/ADMIN/x", want: 401},
			{name: "prefix in upper case, no admin scope", token: user, path: "/ADMIN/x", want: 403},
			{name: "prefix in upper case, admin scope", token: admin, path: "/ADMIN/x", want: 200},
			{name: "exact path in mixed case", token: user, path: "/Admin", want: 403},
			{name: "fragment", path: "/admin#x", want: 400},
		})
	})
	t.Run("sensitive", func(t *testing.T) {
		checkPaths(t, pathApp(t, idp, "allow", "path_case: sensitive\n"), []pathCheck{
			{name: "control: admin path", path: "/admin/x", want: 401},
			{name: "prefix in upper case: another path to this upstream", path: "/ADMIN/x", want: 200},
			{name: "fragment", path: "/admin#x", want: 400},
		})
	})
}
