package kubernetes

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1 "istio.io/api/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/jwtauthz/jwtauthz/envoy"
)

// helmDoc is the page that documents the chart.
const helmDoc = "../docs/deployment/helm.md"

// codeBlocks returns the fenced blocks of a Markdown text whose info
// string is lang.
func codeBlocks(text, lang string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?ms)^```"+lang+"\n(.*?)^```").FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestHelmDocs checks every block of docs/deployment/helm.md: the install
// commands name the chart and its namespace; a values block renders and
// passes TestChart's checks; the Istio mesh config and AuthorizationPolicy
// reach the chart's Service; the sidecar's pod and Envoy cluster fit
// together and pass the checks of the kubernetes/ manifests.
func TestHelmDocs(t *testing.T) {
	doc := readFile(t, helmDoc)
	checkInstall(t, codeBlocks(doc, "sh"))
	chart, _, err := render(t, "jwtauthz", with())
	if err != nil {
		t.Fatal(err)
	}
	svc := chart.services[0].DeepCopy()
	svc.Namespace = "jwtauthz" // helm install -n jwtauthz
	var pod *corev1.PodSpec
	var socket string
	var provider string
	seen := map[string]bool{}
	for i, b := range codeBlocks(doc, "yaml") {
		var top map[string]any
		strict(t, helmDoc, b, &top)
		key := slices.Sorted(maps.Keys(top))[0]
		switch {
		case top["kind"] == "AuthorizationPolicy":
			m := newManifests(helmDoc)
			m.add(t, helmDoc, []byte(b))
			ap := m.authzPols[0].spec
			if ap.GetAction() != securityv1.AuthorizationPolicy_CUSTOM || len(ap.GetRules()) == 0 {
				t.Errorf("block %d: AuthorizationPolicy %v: want CUSTOM with a rule", i, ap)
			}
			provider = ap.GetProvider().GetName()
		case key == "meshConfig":
			var mc struct {
				MeshConfig map[string]any `json:"meshConfig"`
			}
			strict(t, helmDoc, b, &mc)
			j, _ := yaml.Marshal(mc.MeshConfig)
			j, _ = yaml.YAMLToJSON(j)
			mesh := &meshv1alpha1.MeshConfig{}
			protoSpec(t, helmDoc, j, mesh)
			for _, p := range mesh.GetExtensionProviders() {
				seen["provider "+p.GetName()] = true
				checkProvider(t, p.GetEnvoyExtAuthzGrpc(), svc)
			}
		case key == "containers":
			pod = &corev1.PodSpec{}
			strict(t, helmDoc, b, pod)
		case key == "static_resources":
			socket = checkSidecarCluster(t, b)
		default: // chart values
			vals := top
			if vals["config"] == nil {
				vals["config"] = minimalConfig()
			}
			m, _, err := render(t, "jwtauthz", vals)
			if err != nil {
				t.Fatalf("block %d: values: %v", i, err)
			}
			checkChart(t, m, coalesce(t, vals), chartCase{wantProcs: "2"})
		}
		seen[key] = true
	}
	if provider == "" || !seen["provider "+provider] {
		t.Errorf("the AuthorizationPolicy names provider %q, which no meshConfig block declares", provider)
	}
	if pod == nil || socket == "" {
		t.Fatal("no sidecar pod or Envoy cluster block")
	}
	checkSidecarPod(t, pod, socket)
}

// checkInstall wants three commands, one a helm install of the chart from
// the checkout into a namespace.
func checkInstall(t *testing.T, blocks []string) {
	for _, b := range blocks {
		lines := strings.Split(strings.TrimSpace(b), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[2], "helm install ") {
			continue
		}
		if !strings.Contains(lines[2], "jwtauthz/charts/jwtauthz") || !strings.Contains(lines[2], "-n jwtauthz --create-namespace") {
			t.Errorf("install command %q: want the chart of the checkout, in namespace jwtauthz", lines[2])
		}
		return
	}
	t.Error("no block of three commands ending in helm install")
}

// checkSidecarCluster loads the Envoy block as envoy/ loads a bootstrap
// and returns the socket path of its jwtauthz cluster.
func checkSidecarCluster(t *testing.T, b string) string {
	bs, err := envoy.Parse([]byte(b))
	if err != nil {
		t.Fatalf("Envoy cluster: %v", err)
	}
	c := envoy.Cluster(bs, "jwtauthz")
	if c == nil || len(envoy.Endpoints(c)) != 1 {
		t.Fatal("no jwtauthz cluster with one endpoint")
	}
	if hc := c.GetHealthChecks(); len(hc) == 0 || hc[0].GetGrpcHealthCheck().GetServiceName() != authService {
		t.Errorf("jwtauthz cluster: want a gRPC health check of %s", authService)
	}
	ep := envoy.Endpoints(c)[0]
	if !strings.HasPrefix(ep, "unix:///") {
		t.Fatalf("jwtauthz cluster endpoint %s: want a Unix socket", ep)
	}
	return ep
}

// checkSidecarPod checks the sidecar block's jwtauthz container as the
// manifests' containers are checked, runs --check-config on it with
// kubernetes/sidecar's ConfigMap, and wants its socket in an emptyDir
// that Envoy mounts at the same path, in a group Envoy has (fsGroup).
func checkSidecarPod(t *testing.T, pod *corev1.PodSpec, socket string) {
	m := load(t, "sidecar")
	i := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == "jwtauthz" })
	if i < 0 {
		t.Fatal("no jwtauthz container")
	}
	c := pod.Containers[i]
	checkContainer(t, c, false)
	m.checkMounts(t, *pod, c)
	if !slices.Contains(c.Args, "--grpc-addr="+socket) {
		t.Errorf("args %v: want --grpc-addr=%s, where Envoy's cluster connects", c.Args, socket)
	}
	if g := c.ReadinessProbe.HTTPGet; g == nil || g.Path != "/readyz" || g.Port.StrVal != "admin" {
		t.Errorf("readiness probe %v: want /readyz on admin (the kubelet cannot probe a socket)", c.ReadinessProbe)
	}
	if sc := pod.SecurityContext; sc == nil || sc.FSGroup == nil || *sc.FSGroup == 0 {
		t.Error("no fsGroup: Envoy cannot connect to the socket (mode 0660)")
	}
	dir := strings.TrimPrefix(socket[:strings.LastIndex(socket, "/")], "unix://")
	for _, name := range []string{"jwtauthz", "envoy"} {
		j := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == name })
		if j < 0 || !slices.ContainsFunc(pod.Containers[j].VolumeMounts, func(vm corev1.VolumeMount) bool {
			v := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
			return vm.MountPath == dir && v >= 0 && pod.Volumes[v].EmptyDir != nil
		}) {
			t.Errorf("container %s: no emptyDir mounted at %s", name, dir)
		}
	}
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: *pod}}}
	if out := checkConfig(t, m, d); !strings.Contains(out, "config ok") {
		t.Errorf("jwtauthz --check-config refused the sidecar's container:\n%s", out)
	}
}
