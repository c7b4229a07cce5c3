package envoy

import (
	"slices"
	"strings"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
)

// The namespace Envoy files ext_authz's dynamic metadata under.
const extAuthzNS = "envoy.filters.http.ext_authz"

// envoy-metadata.yaml is envoy.yaml (the same checks) with the three uses
// of jwtauthz's dynamic metadata the docs show: an access log of the
// subject, RBAC on a claim, and a rate limit per subject.
func TestMetadataConfig(t *testing.T) {
	bs := load(t, "envoy-metadata.yaml")
	hcm := onlyHCM(t, bs)
	az := extAuthz(t, hcm)
	if az.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "jwtauthz" {
		t.Errorf("ext_authz grpc_service %v", az.GetGrpcService())
	}
	checkRoutes(t, hcm)
	checkGRPCCluster(t, bs, "jwtauthz", grpcAddr)

	var names []string
	for _, f := range hcm.GetHttpFilters() {
		names = append(names, f.GetName())
	}
	if want := []string{"envoy.filters.http.ext_authz", "envoy.filters.http.rbac", "envoy.filters.http.ratelimit", "envoy.filters.http.router"}; !slices.Equal(names, want) {
		t.Fatalf("http filters %q, want %q: the metadata's readers after ext_authz", names, want)
	}

	t.Run("access log", func(t *testing.T) {
		logs := Find[*accesslogv3.AccessLog](hcm)
		if len(logs) != 1 {
			t.Fatalf("%d access logs", len(logs))
		}
		sl := &streamv3.StdoutAccessLog{}
		if err := logs[0].GetTypedConfig().UnmarshalTo(sl); err != nil {
			t.Fatal(err)
		}
		f := sl.GetLogFormat().GetTextFormatSource().GetInlineString()
		for _, key := range []string{"sub", "provider", "reason"} {
			if op := "%DYNAMIC_METADATA(" + extAuthzNS + ":" + key + ")%"; !strings.Contains(f, op) {
				t.Errorf("access log format %q lacks %s", f, op)
			}
		}
	})

	t.Run("rate limit per subject", func(t *testing.T) {
		var checked *routev3.Route
		for _, r := range Find[*routev3.Route](hcm) {
			if r.GetMatch().GetPrefix() == "/" {
				checked = r
			}
		}
		rls := checked.GetRoute().GetRateLimits()
		if len(rls) != 1 || len(rls[0].GetActions()) != 1 {
			t.Fatalf("rate limits %v: want one action", rls)
		}
		md := rls[0].GetActions()[0].GetMetadata()
		if md.GetDescriptorKey() != "subject" || md.GetSource() != routev3.RateLimit_Action_MetaData_DYNAMIC || !metadataKeyIs(md.GetMetadataKey(), "sub") {
			t.Errorf("rate limit action %v: want subject from %s:sub", md, extAuthzNS)
		}
		var rl *ratelimitv3.RateLimit
		for _, f := range hcm.GetHttpFilters() {
			if f.GetName() == "envoy.filters.http.ratelimit" {
				rl = &ratelimitv3.RateLimit{}
				if err := f.GetTypedConfig().UnmarshalTo(rl); err != nil {
					t.Fatal(err)
				}
			}
		}
		if c := rl.GetRateLimitService().GetGrpcService().GetEnvoyGrpc().GetClusterName(); c != "ratelimit" || Cluster(bs, c) == nil {
			t.Errorf("rate limit service cluster %q", c)
		}
	})

	t.Run("RBAC on a claim", func(t *testing.T) {
		var r *rbacv3.RBAC
		for _, f := range hcm.GetHttpFilters() {
			if f.GetName() == "envoy.filters.http.rbac" {
				r = &rbacv3.RBAC{}
				if err := f.GetTypedConfig().UnmarshalTo(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		if r.GetRules().GetAction() != rbacconfigv3.RBAC_DENY {
			t.Fatalf("rbac action %v, want DENY", r.GetRules().GetAction())
		}
		p := r.GetRules().GetPolicies()["admin-needs-role"]
		if len(p.GetPrincipals()) != 1 || p.GetPermissions()[0].GetUrlPath().GetPath().GetPrefix() != "/admin/" {
			t.Fatalf("policy %v", p)
		}
		m := p.GetPrincipals()[0].GetNotId().GetMetadata()
		if m.GetFilter() != extAuthzNS || len(m.GetPath()) != 1 || m.GetPath()[0].GetKey() != "role" || m.GetValue().GetStringMatch().GetExact() != "admin" {
			t.Errorf("principal metadata matcher %v: want %s role == admin", m, extAuthzNS)
		}
	})
}

// metadataKeyIs reports whether k names ext_authz's key.
func metadataKeyIs(k *metadatav3.MetadataKey, key string) bool {
	p := k.GetPath()
	return k.GetKey() == extAuthzNS && len(p) == 1 && p[0].GetKey() == key
}
