package envoy

import (
	"os"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// jwtauthz's default listeners. TestDeployDefaults in cmd/jwtauthz checks
// the shipped files against the defaults themselves.
const (
	grpcAddr  = "jwtauthz:9001"
	httpAddr  = "jwtauthz:9002"
	adminPort = 9003
	udsAddr   = "unix:///run/jwtauthz/grpc.sock"
	authSvc   = "envoy.service.auth.v3.Authorization"
)

func load(t *testing.T, path string) *bootstrapv3.Bootstrap {
	t.Helper()
	bs, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// onlyHCM returns the one HTTP connection manager of bs.
func onlyHCM(t *testing.T, bs *bootstrapv3.Bootstrap) *hcmv3.HttpConnectionManager {
	t.Helper()
	hcms := Find[*hcmv3.HttpConnectionManager](bs)
	if len(hcms) != 1 {
		t.Fatalf("%d http connection managers, want 1", len(hcms))
	}
	return hcms[0]
}

// extAuthz returns the ext_authz filter of hcm, which must come first.
func extAuthz(t *testing.T, hcm *hcmv3.HttpConnectionManager) *extauthzv3.ExtAuthz {
	t.Helper()
	fs := hcm.GetHttpFilters()
	if len(fs) < 2 || fs[0].GetName() != "envoy.filters.http.ext_authz" {
		t.Fatalf("http filters %v: want ext_authz first, then the router", fs)
	}
	az := &extauthzv3.ExtAuthz{}
	if err := fs[0].GetTypedConfig().UnmarshalTo(az); err != nil {
		t.Fatal(err)
	}
	if az.GetTransportApiVersion() != corev3.ApiVersion_V3 || az.GetFailureModeAllow() || az.GetIncludePeerCertificate() {
		t.Errorf("ext_authz: transport_api_version %v failure_mode_allow %v include_peer_certificate %v; want V3, false, false",
			az.GetTransportApiVersion(), az.GetFailureModeAllow(), az.GetIncludePeerCertificate())
	}
	if az.GetStatusOnError().GetCode() != 503 {
		t.Errorf("ext_authz status_on_error %v, want 503", az.GetStatusOnError())
	}
	return az
}

// checkRoutes wants /public/ unchecked and stripped of identity headers,
// and everything else checked, all to the upstream cluster.
func checkRoutes(t *testing.T, hcm *hcmv3.HttpConnectionManager) {
	t.Helper()
	if !hcm.GetNormalizePath().GetValue() || !hcm.GetMergeSlashes() {
		t.Error("normalize_path and merge_slashes must be on: jwtauthz matches rules on the path the upstream sees")
	}
	if hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction() != corev3.HttpProtocolOptions_REJECT_REQUEST {
		t.Error("headers_with_underscores_action: want REJECT_REQUEST")
	}
	var public, checked int
	for _, r := range Find[*routev3.Route](hcm) {
		if r.GetRoute().GetCluster() != "upstream" {
			t.Errorf("route %v goes to %q", r.GetMatch(), r.GetRoute().GetCluster())
		}
		cfg, ok := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]
		if !ok {
			checked++
			continue
		}
		per := &extauthzv3.ExtAuthzPerRoute{}
		if err := cfg.UnmarshalTo(per); err != nil || !per.GetDisabled() {
			t.Fatalf("per-route ext_authz %v %v: want disabled", per, err)
		}
		public++
		if r.GetMatch().GetPrefix() != "/public/" {
			t.Errorf("ext_authz disabled on %v, want prefix /public/", r.GetMatch())
		}
		for _, h := range []string{"x-auth-subject", "x-auth-issuer"} {
			if !slices.Contains(r.GetRequestHeadersToRemove(), h) {
				t.Errorf("public route keeps a client's %s", h)
			}
		}
	}
	if public != 1 || checked == 0 {
		t.Errorf("%d public and %d checked routes, want 1 and some", public, checked)
	}
}

// checkGRPCCluster wants HTTP/2, gRPC health checks of the Authorization
// service, and the one endpoint addr.
func checkGRPCCluster(t *testing.T, bs *bootstrapv3.Bootstrap, name, addr string) {
	t.Helper()
	c := Cluster(bs, name)
	if c == nil {
		t.Fatalf("no cluster %q", name)
	}
	po := &httpv3.HttpProtocolOptions{}
	if err := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(po); err != nil ||
		po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Errorf("cluster %s: want explicit HTTP/2 (gRPC): %v %v", name, po, err)
	}
	var grpcHC bool
	for _, hc := range c.GetHealthChecks() {
		grpcHC = grpcHC || hc.GetGrpcHealthCheck().GetServiceName() == authSvc
	}
	if !grpcHC {
		t.Errorf("cluster %s: want a gRPC health check of %s", name, authSvc)
	}
	if got := Endpoints(c); !slices.Equal(got, []string{addr}) {
		t.Errorf("cluster %s endpoints %v, want [%s]", name, got, addr)
	}
}

func TestGRPCConfigs(t *testing.T) {
	for _, tc := range []struct{ file, addr string }{
		{"envoy.yaml", grpcAddr},
		{"envoy-uds.yaml", udsAddr},
	} {
		t.Run(tc.file, func(t *testing.T) {
			bs := load(t, tc.file)
			hcm := onlyHCM(t, bs)
			az := extAuthz(t, hcm)
			g := az.GetGrpcService()
			if g.GetEnvoyGrpc().GetClusterName() != "jwtauthz" || g.GetTimeout().AsDuration() <= 0 {
				t.Errorf("grpc_service %v: want the jwtauthz cluster and a timeout", g)
			}
			checkRoutes(t, hcm)
			checkGRPCCluster(t, bs, "jwtauthz", tc.addr)
		})
	}
}

func TestHTTPServiceConfig(t *testing.T) {
	bs := load(t, "envoy-http.yaml")
	hcm := onlyHCM(t, bs)
	az := extAuthz(t, hcm)
	checkRoutes(t, hcm)
	hs := az.GetHttpService()
	uri := hs.GetServerUri()
	if uri.GetUri() != "http://"+httpAddr || uri.GetCluster() != "jwtauthz_http" || uri.GetTimeout().AsDuration() <= 0 {
		t.Errorf("server_uri %v: want http://%s on cluster jwtauthz_http, with a timeout", uri, httpAddr)
	}
	if hs.GetPathPrefix() != "" {
		t.Errorf("path_prefix %q: jwtauthz matches its rules on the path it is sent", hs.GetPathPrefix())
	}
	c := Cluster(bs, "jwtauthz_http")
	if got := Endpoints(c); !slices.Equal(got, []string{httpAddr}) {
		t.Errorf("jwtauthz_http endpoints %v, want [%s]", got, httpAddr)
	}
	ep := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint()
	if len(c.GetHealthChecks()) != 1 || c.GetHealthChecks()[0].GetHttpHealthCheck().GetPath() != "/readyz" || ep.GetHealthCheckConfig().GetPortValue() != adminPort {
		t.Errorf("jwtauthz_http health check %v on port %d: want /readyz on %d", c.GetHealthChecks(), ep.GetHealthCheckConfig().GetPortValue(), adminPort)
	}
	resp := hs.GetAuthorizationResponse()
	for _, want := range []struct {
		list  *matcherv3.ListStringMatcher
		what  string
		names []string
	}{
		// x-auth-email stands for a claim header: a managed header Envoy
		// did not carry would keep the client's copy.
		{resp.GetAllowedUpstreamHeaders(), "allowed_upstream_headers", []string{"X-Auth-Subject", "X-Auth-Issuer", "X-Auth-Email", "Cookie"}},
		{resp.GetAllowedClientHeaders(), "allowed_client_headers", []string{"WWW-Authenticate", "Content-Type"}},
		{az.GetAllowedHeaders(), "allowed_headers", []string{"X-Request-Id"}},
	} {
		for _, h := range want.names {
			if !matches(want.list, h) {
				t.Errorf("%s does not let %s through", want.what, h)
			}
		}
	}
	// jwtauthz reads the original request from these before its own: a
	// client's must never reach it.
	for _, h := range []string{"X-Forwarded-Uri", "X-Forwarded-Method", "X-Forwarded-Host", "X-Original-Uri", "X-Original-Method"} {
		if matches(az.GetAllowedHeaders(), h) {
			t.Errorf("allowed_headers sends a client's %s to jwtauthz", h)
		}
	}
}

// matches reports whether a header name passes l (exact and prefix
// matchers, the kinds the shipped files use).
func matches(l *matcherv3.ListStringMatcher, name string) bool {
	for _, p := range l.GetPatterns() {
		n, e, pre := name, p.GetExact(), p.GetPrefix()
		if p.GetIgnoreCase() {
			n, e, pre = strings.ToLower(n), strings.ToLower(e), strings.ToLower(pre)
		}
		if (e != "" && n == e) || (pre != "" && strings.HasPrefix(n, pre)) {
			return true
		}
	}
	return false
}

// TestParseRefuses breaks envoy.yaml in ways Envoy would refuse and wants
// Parse to refuse each.
func TestParseRefuses(t *testing.T) {
	src, err := os.ReadFile("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const authzIndent = "\n              "
	for _, tc := range []struct{ name, old, new, want string }{
		{"max_request_bytes 0 inside an Any", "failure_mode_allow: false",
			"failure_mode_allow: false" + authzIndent + "with_request_body: { max_request_bytes: 0 }", "MaxRequestBytes"},
		{"unknown field in a typed_config", "failure_mode_allow: false", "failure_mode_alow: false", "failure_mode_alow"},
		{"unknown @type", "ext_authz.v3.ExtAuthz\n", "ext_authz.v3.ExtAuthx\n", "ExtAuthx"},
		{"duplicate key", "stat_prefix: ingress", "stat_prefix: ingress\n          stat_prefix: ingress", "stat_prefix"},
		{"undefined cluster", "cluster_name: jwtauthz }", "cluster_name: jwtauth }", `no cluster "jwtauth"`},
		{"per-route config for a filter not in the chain", "                  envoy.filters.http.ext_authz:", "                  envoy.filters.http.ext_authx:", "not in the filter chain"},
		{"no router", "          - name: envoy.filters.http.router\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n", "", "router must be the last"},
		{"negative connect_timeout", "connect_timeout: 1s", "connect_timeout: -1s", "ConnectTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(src), tc.old) {
				t.Fatalf("envoy.yaml has no %q to change", tc.old)
			}
			bad := []byte(strings.Replace(string(src), tc.old, tc.new, 1))
			_, err := Parse(bad)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// TestValidateAllMissesAny shows why Validate unpacks every Any: the
// generated ValidateAll of the bootstrap alone accepts what Envoy refuses.
func TestValidateAllMissesAny(t *testing.T) {
	src, err := os.ReadFile("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), "failure_mode_allow: false", "failure_mode_allow: false\n              with_request_body: { max_request_bytes: 0 }", 1)
	j, err := yamlToJSON([]byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	bs := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(j, bs); err != nil {
		t.Fatal(err)
	}
	if err := bs.ValidateAll(); err != nil {
		t.Fatalf("ValidateAll now enters Any (%v): Validate's walk may be simplified", err)
	}
	if err := Validate(bs); err == nil {
		t.Fatal("Validate accepted max_request_bytes: 0")
	}
}
