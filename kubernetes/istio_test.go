package kubernetes

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1 "istio.io/api/security/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// authorizationPolicy is a decoded security.istio.io/v1 AuthorizationPolicy.
type authorizationPolicy struct {
	*istioObject
	spec *securityv1.AuthorizationPolicy
}

// istioOperator is a decoded IstioOperator: only its meshConfig is used.
type istioOperator struct {
	*istioObject
	mesh *meshv1alpha1.MeshConfig
}

// protoSpec decodes an Istio spec with protojson, which refuses unknown
// fields as Istio's admission does.
func protoSpec(t *testing.T, where string, raw []byte, into proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: spec: %v", where, err)
	}
}

func decodeAuthorizationPolicy(t *testing.T, where string, o *istioObject) *authorizationPolicy {
	t.Helper()
	ap := &authorizationPolicy{istioObject: o, spec: &securityv1.AuthorizationPolicy{}}
	protoSpec(t, where, o.Spec, ap.spec)
	return ap
}

func decodeIstioOperator(t *testing.T, where string, o *istioObject) *istioOperator {
	t.Helper()
	var spec struct {
		MeshConfig map[string]any `json:"meshConfig"`
	}
	strict(t, where, string(o.Spec), &spec)
	raw, err := yaml.Marshal(spec.MeshConfig)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	op := &istioOperator{istioObject: o, mesh: &meshv1alpha1.MeshConfig{}}
	protoSpec(t, where, j, op.mesh)
	return op
}

func TestIstio(t *testing.T) {
	m := load(t, "istio", "mesh-config.yaml")
	m.checkCommon(t)
	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.hpas) != 1 || len(m.pdbs) != 1 || len(m.authzPols) != 1 || len(m.operators) != 1 {
		t.Fatal("want one Deployment, Service, HPA, PodDisruptionBudget, AuthorizationPolicy and IstioOperator")
	}
	svc := m.services[0]
	m.checkNamespace(t)
	if m.namespaces[0].Labels["istio-injection"] != "enabled" {
		t.Error("want the jwtauthz namespace with istio-injection enabled")
	}
	for _, want := range []string{"grpc", "http", "admin"} {
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == want }) {
			t.Errorf("service: no port named %s (Istio reads the protocol from the name)", want)
		}
	}

	ap := m.authzPols[0]
	if ap.spec.GetAction() != securityv1.AuthorizationPolicy_CUSTOM {
		t.Errorf("AuthorizationPolicy action %v, want CUSTOM", ap.spec.GetAction())
	}
	if len(ap.spec.GetRules()) == 0 {
		t.Error("AuthorizationPolicy has no rules: CUSTOM applies only to requests a rule matches")
	}
	name := ap.spec.GetProvider().GetName()
	var provider *meshv1alpha1.MeshConfig_ExtensionProvider
	for _, p := range m.operators[0].mesh.GetExtensionProviders() {
		if p.GetName() == name {
			provider = p
		}
	}
	if provider == nil {
		t.Fatalf("AuthorizationPolicy names provider %q, which meshConfig.extensionProviders lacks", name)
	}
	checkProvider(t, provider.GetEnvoyExtAuthzGrpc(), svc)
}

// checkProvider wants the gRPC ext_authz provider aimed at the Service's
// grpc port, failing closed, with a timeout.
func checkProvider(t *testing.T, g *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider, svc *corev1.Service) {
	if g == nil {
		t.Fatal("the extension provider is not envoyExtAuthzGrpc")
	}
	if want := svc.Name + "." + svc.Namespace + ".svc.cluster.local"; g.GetService() != want {
		t.Errorf("provider service %q, want %q", g.GetService(), want)
	}
	i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "grpc" })
	if i < 0 || g.GetPort() != uint32(svc.Spec.Ports[i].Port) {
		t.Errorf("provider port %d is not the Service's grpc port", g.GetPort())
	}
	if g.GetFailOpen() {
		t.Error("failOpen: true lets every request through while jwtauthz is down")
	}
	if g.GetTimeout().AsDuration() <= 0 {
		t.Error("provider: no timeout")
	}
	if code, err := strconv.Atoi(g.GetStatusOnError()); err != nil || code != 503 {
		t.Errorf("statusOnError %q, want 503", g.GetStatusOnError())
	}
	if strings.Contains(g.GetService(), "/") {
		t.Errorf("provider service %q: a host name, not a URL", g.GetService())
	}
}
