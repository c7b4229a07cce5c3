package kubernetes

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

func TestEnvoyGateway(t *testing.T) {
	m := load(t, "envoy-gateway")
	m.checkCommon(t)
	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.hpas) != 1 || len(m.pdbs) != 1 || len(m.secPols) != 1 || len(m.refGrants) != 1 {
		t.Fatal("want one Deployment, Service, HPA, PodDisruptionBudget, SecurityPolicy and ReferenceGrant")
	}
	m.checkNamespace(t)
	svc, sp, rg := m.services[0], m.secPols[0], m.refGrants[0]

	// The policy: on a Gateway or route, jwtauthz's gRPC ext_authz at the
	// Service's grpc port, failing closed, within a timeout, every header
	// sent (the token's, the cookie, x-request-id).
	if len(sp.Spec.TargetRefs) == 0 || sp.Spec.TargetRef != nil || len(sp.Spec.TargetSelectors) > 0 {
		t.Error("SecurityPolicy: want targetRefs (targetRef is deprecated)")
	}
	for _, r := range sp.Spec.TargetRefs {
		if r.Group != "gateway.networking.k8s.io" || (r.Kind != "Gateway" && r.Kind != "HTTPRoute") {
			t.Errorf("SecurityPolicy targets %s %s, want a Gateway or an HTTPRoute", r.Group, r.Kind)
		}
	}
	ea := sp.Spec.ExtAuth
	if ea == nil || ea.GRPC == nil || ea.HTTP != nil {
		t.Fatal("SecurityPolicy: want extAuth.grpc")
	}
	if ea.FailOpen == nil || *ea.FailOpen {
		t.Error("SecurityPolicy: want failOpen: false, written out")
	}
	if ea.Timeout == nil {
		t.Error("SecurityPolicy: no timeout (Envoy Gateway's default is 10 s)")
	} else if d, err := time.ParseDuration(string(*ea.Timeout)); err != nil || d <= 0 || d > time.Second {
		t.Errorf("SecurityPolicy timeout %q: want at most 1s", *ea.Timeout)
	}
	if len(ea.HeadersToExtAuth) > 0 {
		t.Errorf("SecurityPolicy headersToExtAuth %v: leave it out, so that every header is sent", ea.HeadersToExtAuth)
	}
	grpc := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "grpc" })
	if grpc < 0 || svc.Spec.Ports[grpc].AppProtocol == nil || *svc.Spec.Ports[grpc].AppProtocol != "grpc" {
		t.Fatal("service: want a grpc port with appProtocol grpc")
	}
	if ea.GRPC.BackendRef != nil || len(ea.GRPC.BackendRefs) != 1 {
		t.Fatal("SecurityPolicy: want one extAuth.grpc.backendRefs (backendRef is deprecated)")
	}
	ref := ea.GRPC.BackendRefs[0].BackendObjectReference
	if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Service") || string(ref.Name) != svc.Name ||
		ref.Namespace == nil || string(*ref.Namespace) != svc.Namespace || ref.Port == nil || int32(*ref.Port) != svc.Spec.Ports[grpc].Port {
		j, _ := json.Marshal(ref)
		t.Errorf("SecurityPolicy backend %s: want Service %s/%s port %d", j, svc.Namespace, svc.Name, svc.Spec.Ports[grpc].Port)
	}

	// The grant: where the Service is, from SecurityPolicies where the
	// policy is, to the Service.
	if rg.Namespace != svc.Namespace {
		t.Errorf("ReferenceGrant in %q, want the Service's namespace %q", rg.Namespace, svc.Namespace)
	}
	if !slices.Contains(rg.Spec.From, gwv1b1.ReferenceGrantFrom{Group: "gateway.envoyproxy.io", Kind: "SecurityPolicy", Namespace: gwv1b1.Namespace(sp.Namespace)}) {
		t.Errorf("ReferenceGrant from %v: want SecurityPolicy in %s", rg.Spec.From, sp.Namespace)
	}
	if !slices.ContainsFunc(rg.Spec.To, func(to gwv1b1.ReferenceGrantTo) bool {
		return to.Group == "" && to.Kind == "Service" && (to.Name == nil || string(*to.Name) == svc.Name)
	}) {
		t.Errorf("ReferenceGrant to %v: want Service %s", rg.Spec.To, svc.Name)
	}
}
