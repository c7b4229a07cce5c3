package kubernetes

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"
)

// manifests is every object of one directory, decoded strictly, by kind.
type manifests struct {
	dir         string
	kust        kustomization
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	namespaces  []*corev1.Namespace
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	netpols     []*networkingv1.NetworkPolicy
	authzPols   []*authorizationPolicy
	operators   []*istioOperator
	secPols     []*egv1a1.SecurityPolicy
	refGrants   []*gwv1b1.ReferenceGrant
	secrets     map[string]*corev1.Secret
	accounts    []*corev1.ServiceAccount
	monitors    []*monitoringv1.ServiceMonitor
	rules       []*monitoringv1.PrometheusRule
	// external names the Secrets that are not here but that a pod may
	// name (a chart's existingSecret).
	external []string
}

// kustomization is the part of kustomize's Kustomization the manifests use,
// decoded strictly like the rest.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Namespace string   `json:"namespace"`
	Resources []string `json:"resources"`
	// ConfigMapGenerator is read by the kustomize builds
	// (kustomize_test.go), which check what it generates.
	ConfigMapGenerator []json.RawMessage `json:"configMapGenerator"`
	Images             []struct {
		Name   string `json:"name"`
		NewTag string `json:"newTag"`
	} `json:"images"`
}

// load decodes every YAML file of dir, and of the directories its
// kustomization names (a base: kustomize builds it in); extra names the
// files that are not kustomize resources (given to istioctl, say).
func load(t *testing.T, dir string, extra ...string) *manifests {
	t.Helper()
	m := newManifests(dir)
	strict(t, filepath.Join(dir, "kustomization.yaml"), readFile(t, filepath.Join(dir, "kustomization.yaml")), &m.kust)
	if m.kust.APIVersion != "kustomize.config.k8s.io/v1beta1" || m.kust.Kind != "Kustomization" {
		t.Errorf("%s/kustomization.yaml: %s %s", dir, m.kust.APIVersion, m.kust.Kind)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		name := filepath.Base(f)
		if name == "kustomization.yaml" {
			continue
		}
		if !slices.Contains(m.kust.Resources, name) && !slices.Contains(extra, name) {
			t.Errorf("%s is not in %s/kustomization.yaml", name, dir)
		}
		m.addDocs(t, name, readFile(t, f))
	}
	for _, r := range m.kust.Resources {
		fi, err := os.Stat(filepath.Join(dir, r))
		if err != nil {
			t.Errorf("kustomization resource %s: %v", r, err)
		} else if fi.IsDir() {
			m.merge(load(t, filepath.Join(dir, r)))
		}
	}
	return m
}

// newManifests is an empty set of objects, read from where.
func newManifests(where string) *manifests {
	return &manifests{dir: where, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
}

// addDocs decodes every document of one YAML stream, named name.
func (m *manifests) addDocs(t *testing.T, name, stream string) {
	t.Helper()
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(stream, -1) {
		if strings.TrimSpace(doc) != "" {
			m.add(t, name+"#"+strconv.Itoa(i), []byte(doc))
		}
	}
}

// merge adds the objects and images of a base to m.
func (m *manifests) merge(b *manifests) {
	m.kust.Images = append(m.kust.Images, b.kust.Images...)
	m.deployments = append(m.deployments, b.deployments...)
	m.services = append(m.services, b.services...)
	maps.Copy(m.configMaps, b.configMaps)
	m.namespaces = append(m.namespaces, b.namespaces...)
	m.pdbs = append(m.pdbs, b.pdbs...)
	m.hpas = append(m.hpas, b.hpas...)
	m.netpols = append(m.netpols, b.netpols...)
	m.authzPols = append(m.authzPols, b.authzPols...)
	m.operators = append(m.operators, b.operators...)
	m.secPols = append(m.secPols, b.secPols...)
	m.refGrants = append(m.refGrants, b.refGrants...)
	maps.Copy(m.secrets, b.secrets)
	m.accounts = append(m.accounts, b.accounts...)
	m.monitors = append(m.monitors, b.monitors...)
	m.rules = append(m.rules, b.rules...)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// strict decodes YAML into v, refusing unknown and duplicate fields.
func strict(t *testing.T, where, doc string, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

// add decodes one document into the type its apiVersion and kind name.
func (m *manifests) add(t *testing.T, where string, doc []byte) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	into := func(v any) any { strict(t, where, string(doc), v); return v }
	switch tm.APIVersion + "/" + tm.Kind {
	case "apps/v1/Deployment":
		m.deployments = append(m.deployments, into(&appsv1.Deployment{}).(*appsv1.Deployment))
	case "v1/Service":
		m.services = append(m.services, into(&corev1.Service{}).(*corev1.Service))
	case "v1/ConfigMap":
		cm := into(&corev1.ConfigMap{}).(*corev1.ConfigMap)
		m.configMaps[cm.Name] = cm
	case "v1/Secret":
		sec := into(&corev1.Secret{}).(*corev1.Secret)
		m.secrets[sec.Name] = sec
	case "v1/ServiceAccount":
		m.accounts = append(m.accounts, into(&corev1.ServiceAccount{}).(*corev1.ServiceAccount))
	case "monitoring.coreos.com/v1/ServiceMonitor":
		m.monitors = append(m.monitors, into(&monitoringv1.ServiceMonitor{}).(*monitoringv1.ServiceMonitor))
	case "monitoring.coreos.com/v1/PrometheusRule":
		m.rules = append(m.rules, into(&monitoringv1.PrometheusRule{}).(*monitoringv1.PrometheusRule))
	case "v1/Namespace":
		m.namespaces = append(m.namespaces, into(&corev1.Namespace{}).(*corev1.Namespace))
	case "policy/v1/PodDisruptionBudget":
		m.pdbs = append(m.pdbs, into(&policyv1.PodDisruptionBudget{}).(*policyv1.PodDisruptionBudget))
	case "autoscaling/v2/HorizontalPodAutoscaler":
		m.hpas = append(m.hpas, into(&autoscalingv2.HorizontalPodAutoscaler{}).(*autoscalingv2.HorizontalPodAutoscaler))
	case "networking.k8s.io/v1/NetworkPolicy":
		m.netpols = append(m.netpols, into(&networkingv1.NetworkPolicy{}).(*networkingv1.NetworkPolicy))
	case "security.istio.io/v1/AuthorizationPolicy":
		m.authzPols = append(m.authzPols, decodeAuthorizationPolicy(t, where, into(&istioObject{}).(*istioObject)))
	case "install.istio.io/v1alpha1/IstioOperator":
		m.operators = append(m.operators, decodeIstioOperator(t, where, into(&istioObject{}).(*istioObject)))
	case "gateway.envoyproxy.io/v1alpha1/SecurityPolicy":
		m.secPols = append(m.secPols, into(&egv1a1.SecurityPolicy{}).(*egv1a1.SecurityPolicy))
	case "gateway.networking.k8s.io/v1beta1/ReferenceGrant":
		m.refGrants = append(m.refGrants, into(&gwv1b1.ReferenceGrant{}).(*gwv1b1.ReferenceGrant))
	default:
		t.Errorf("%s: %s %s: no type to check it against", where, tm.APIVersion, tm.Kind)
	}
}

// istioObject is an Istio resource: Kubernetes metadata around a spec that
// is a protobuf message of istio.io/api.
type istioObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              json.RawMessage `json:"spec"`
}

var pinnedImage = regexp.MustCompile(`^[a-z0-9.-]+(/[a-z0-9._-]+)+:v?[0-9]+(\.[0-9]+)*$|@sha256:[0-9a-f]{64}$`)

// selects reports whether selector picks pods labelled labels.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// deploymentFor returns the Deployment whose pods selector picks.
func (m *manifests) deploymentFor(t *testing.T, what string, selector map[string]string) *appsv1.Deployment {
	t.Helper()
	for _, d := range m.deployments {
		if selects(selector, d.Spec.Template.Labels) {
			return d
		}
	}
	t.Errorf("%s: selector %v picks no pods of %s", what, selector, m.dir)
	return nil
}

// containerPort finds the port a probe or Service names in c, by name or
// by number.
func containerPort(c corev1.Container, name string, number int32) (corev1.ContainerPort, bool) {
	for _, p := range c.Ports {
		if (name != "" && p.Name == name) || (name == "" && p.ContainerPort == number) {
			return p, true
		}
	}
	return corev1.ContainerPort{}, false
}

// podPort finds a named port among all of a pod's containers.
func podPort(spec corev1.PodSpec, name string) (corev1.ContainerPort, bool) {
	for _, c := range spec.Containers {
		if p, ok := containerPort(c, name, 0); ok {
			return p, true
		}
	}
	return corev1.ContainerPort{}, false
}

// checkCommon runs the checks every directory gets.
func (m *manifests) checkCommon(t *testing.T) {
	for _, img := range m.kust.Images {
		if !pinnedImage.MatchString(img.Name+":"+img.NewTag) || !m.usesImage(img.Name) {
			t.Errorf("kustomization image %s:%s: not pinned, or no container uses it", img.Name, img.NewTag)
		}
	}
	for _, d := range m.deployments {
		t.Run("deployment "+d.Name, func(t *testing.T) { m.checkDeployment(t, d) })
	}
	for _, s := range m.services {
		d := m.deploymentFor(t, "service "+s.Name, s.Spec.Selector)
		for _, p := range s.Spec.Ports {
			if p.Name == "" || p.TargetPort.StrVal == "" {
				t.Errorf("service %s port %d: want a name and a named targetPort", s.Name, p.Port)
				continue
			}
			if d != nil {
				if _, ok := podPort(d.Spec.Template.Spec, p.TargetPort.StrVal); !ok {
					t.Errorf("service %s port %s: targetPort %s is no container port", s.Name, p.Name, p.TargetPort.StrVal)
				}
			}
		}
	}
	for _, p := range m.pdbs {
		d := m.deploymentFor(t, "pdb "+p.Name, p.Spec.Selector.MatchLabels)
		if d != nil && m.minReplicas(d) <= p.Spec.MinAvailable.IntValue() {
			t.Errorf("pdb %s: minAvailable %s of at least %d replicas leaves no pod of %s to evict", p.Name, p.Spec.MinAvailable.String(), m.minReplicas(d), d.Name)
		}
	}
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || !slices.ContainsFunc(m.deployments, func(d *appsv1.Deployment) bool { return d.Name == ref.Name }) {
			t.Errorf("hpa %s scales %s %s, which is not here", h.Name, ref.Kind, ref.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
			t.Errorf("hpa %s: want at least 2 replicas", h.Name)
		}
	}
	for _, sm := range m.monitors {
		t.Run("servicemonitor "+sm.Name, func(t *testing.T) { m.checkServiceMonitor(t, sm) })
	}
	for _, np := range m.netpols {
		d := m.deploymentFor(t, "networkpolicy "+np.Name, np.Spec.PodSelector.MatchLabels)
		if d == nil {
			continue
		}
		for _, in := range np.Spec.Ingress {
			for _, p := range in.Ports {
				if _, ok := podPort(d.Spec.Template.Spec, p.Port.StrVal); !ok {
					t.Errorf("networkpolicy %s: port %s is no container port", np.Name, p.Port.String())
				}
			}
		}
	}
}

// checkNamespace wants one Namespace, and jwtauthz's objects in it.
func (m *manifests) checkNamespace(t *testing.T) {
	t.Helper()
	if len(m.namespaces) != 1 {
		t.Fatalf("%d Namespaces, want jwtauthz's", len(m.namespaces))
	}
	ns := m.namespaces[0].Name
	objs := map[string][]metav1.ObjectMeta{}
	for _, d := range m.deployments {
		objs["Deployment"] = append(objs["Deployment"], d.ObjectMeta)
	}
	for _, s := range m.services {
		objs["Service"] = append(objs["Service"], s.ObjectMeta)
	}
	for _, h := range m.hpas {
		objs["HorizontalPodAutoscaler"] = append(objs["HorizontalPodAutoscaler"], h.ObjectMeta)
	}
	for _, p := range m.pdbs {
		objs["PodDisruptionBudget"] = append(objs["PodDisruptionBudget"], p.ObjectMeta)
	}
	for _, cm := range m.configMaps {
		objs["ConfigMap"] = append(objs["ConfigMap"], cm.ObjectMeta)
	}
	for kind, metas := range objs {
		for _, o := range metas {
			if o.Namespace != ns {
				t.Errorf("%s %s in namespace %q, want %q", kind, o.Name, o.Namespace, ns)
			}
		}
	}
}

// minReplicas is the fewest replicas d runs: its HPA's minReplicas when
// one scales it (the HPA owns the count), else its replicas (1 if unset).
func (m *manifests) minReplicas(d *appsv1.Deployment) int {
	for _, h := range m.hpas {
		if r := h.Spec.ScaleTargetRef; r.Kind == "Deployment" && r.Name == d.Name && h.Spec.MinReplicas != nil {
			return int(*h.Spec.MinReplicas)
		}
	}
	if d.Spec.Replicas == nil {
		return 1
	}
	return int(*d.Spec.Replicas)
}

func (m *manifests) usesImage(name string) bool {
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if strings.HasPrefix(c.Image, name+":") {
				return true
			}
		}
	}
	return false
}
