package kubernetes

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// checkChart checks one render: the checks of the kubernetes/ manifests
// (pod, probes, securityContext, resources, selectors, ports), the
// objects each value turns on or off, labels, names and namespaces, and
// GOMAXPROCS.
func checkChart(t *testing.T, m *manifests, vals common.Values, tc chartCase) {
	t.Helper()
	on := func(path string) bool { v, _ := vals.PathValue(path); b, _ := v.(bool); return b }
	for _, path := range []string{"existingSecret", "sharedCache.existingSecret"} {
		if s, _ := vals.PathValue(path); s != "" {
			m.external = append(m.external, s.(string))
		}
	}
	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.accounts) != 1 {
		t.Fatalf("%d Deployments, %d Services, %d ServiceAccounts: want one each", len(m.deployments), len(m.services), len(m.accounts))
	}
	m.checkCommon(t)
	for what, n := range map[string]struct {
		got  int
		want bool
	}{
		"HorizontalPodAutoscaler": {len(m.hpas), on("autoscaling.enabled")},
		"PodDisruptionBudget":     {len(m.pdbs), on("podDisruptionBudget.enabled")},
		"NetworkPolicy":           {len(m.netpols), on("networkPolicy.enabled")},
		"ServiceMonitor":          {len(m.monitors), on("metrics.serviceMonitor.enabled")},
		"PrometheusRule":          {len(m.rules), on("metrics.prometheusRule.enabled")},
		"Secret":                  {len(m.secrets), len(vals["secretEnv"].(map[string]any)) > 0},
	} {
		if (n.got == 1) != n.want || n.got > 1 {
			t.Errorf("%d %s, want one: %v", n.got, what, n.want)
		}
	}
	d := m.deployments[0]
	if (d.Spec.Replicas == nil) != on("autoscaling.enabled") {
		t.Errorf("replicas %v: want none exactly when the HPA owns them", d.Spec.Replicas)
	}
	m.checkRules(t)
	if on("metrics.grafanaDashboard.enabled") {
		m.checkDashboard(t, d.Name+"-grafana-dashboard")
	}
	checkPodDefaults(t, d)
	checkLabels(t, m, d)
	checkProcs(t, d, tc.wantProcs)
	if ann := d.Spec.Template.Annotations; (ann["prometheus.io/scrape"] == "true") != on("metrics.podAnnotations") {
		t.Errorf("pod annotations %v: prometheus.io/scrape exactly when metrics.podAnnotations", ann)
	}
}

// checkPodDefaults wants what checkContainer does not look at: seccomp,
// no service account token, and every volume used.
func checkPodDefaults(t *testing.T, d *appsv1.Deployment) {
	spec := d.Spec.Template.Spec
	if sc := spec.SecurityContext; sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod securityContext: want seccompProfile RuntimeDefault")
	}
	if a := spec.AutomountServiceAccountToken; a == nil || *a {
		t.Error("automountServiceAccountToken: want false (jwtauthz does not call the API)")
	}
	for _, v := range spec.Volumes {
		if !slices.ContainsFunc(spec.Containers[0].VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.Name == v.Name }) {
			t.Errorf("volume %s: mounted nowhere", v.Name)
		}
	}
}

// checkLabels wants every object in the release's namespace with the
// chart's labels, and the selectors made of the pod's labels.
func checkLabels(t *testing.T, m *manifests, d *appsv1.Deployment) {
	metas := []metav1.ObjectMeta{d.ObjectMeta, m.services[0].ObjectMeta, m.accounts[0].ObjectMeta}
	for _, o := range m.configMaps {
		metas = append(metas, o.ObjectMeta)
	}
	for _, o := range m.secrets {
		metas = append(metas, o.ObjectMeta)
	}
	for _, o := range m.hpas {
		metas = append(metas, o.ObjectMeta)
	}
	for _, o := range m.pdbs {
		metas = append(metas, o.ObjectMeta)
	}
	for _, o := range m.netpols {
		metas = append(metas, o.ObjectMeta)
	}
	for _, o := range m.monitors {
		metas = append(metas, o.ObjectMeta)
	}
	for _, o := range m.rules {
		metas = append(metas, o.ObjectMeta)
	}
	for _, o := range metas {
		if o.Namespace != chartNamespace {
			t.Errorf("%s: namespace %q, want the release's %q", o.Name, o.Namespace, chartNamespace)
		}
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if o.Labels[k] == "" {
				t.Errorf("%s: no label %s", o.Name, k)
			}
		}
	}
	sel := d.Spec.Selector.MatchLabels
	if sel["app.kubernetes.io/instance"] == "" || sel["app.kubernetes.io/version"] != "" {
		t.Errorf("selector %v: want the release's instance label and no version (a selector cannot change on upgrade)", sel)
	}
}

// checkProcs wants GOMAXPROCS to be want, or unset if want is "".
func checkProcs(t *testing.T, d *appsv1.Deployment, want string) {
	c := d.Spec.Template.Spec.Containers[0]
	got := ""
	for _, e := range c.Env {
		if e.Name == "GOMAXPROCS" {
			got = e.Value
		}
	}
	if got != want {
		t.Errorf("GOMAXPROCS %q, want %q (resources %v)", got, want, c.Resources)
	}
}

// jwtauthz is the binary the tests run: built once from ../cmd/jwtauthz,
// in the main module.
var jwtauthz = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "jwtauthz-chart-test")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "jwtauthz")
	cmd := exec.Command("go", "build", "-C", "..", "-o", bin, "./cmd/jwtauthz")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/jwtauthz: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := jwtauthz(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// checkConfig runs `jwtauthz <args> --check-config` with the jwtauthz
// container's arguments, its environment (values, and the keys of a
// Secret of m it takes with envFrom) and nothing else, and the ConfigMap
// files mounted where it reads them, and returns what it printed.
func checkConfig(t *testing.T, m *manifests, d *appsv1.Deployment) string {
	t.Helper()
	bin, err := jwtauthz()
	if err != nil {
		t.Fatal(err)
	}
	spec := d.Spec.Template.Spec
	i := slices.IndexFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == "jwtauthz" })
	if i < 0 {
		t.Fatal("no jwtauthz container")
	}
	c := spec.Containers[i]
	dir := t.TempDir()
	moved := map[string]string{}
	write := func(vm corev1.VolumeMount, path, data string, mode os.FileMode) {
		to := filepath.Join(dir, vm.MountPath, path)
		os.MkdirAll(filepath.Dir(to), 0o700)
		if err := os.WriteFile(to, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(to, mode); err != nil {
			t.Fatal(err)
		}
		moved[filepath.Join(vm.MountPath, path)] = to
	}
	for _, vm := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			switch {
			case v.Name != vm.Name:
			case v.ConfigMap != nil && m.configMaps[v.ConfigMap.Name] != nil:
				for _, it := range v.ConfigMap.Items {
					write(vm, it.Path, m.configMaps[v.ConfigMap.Name].Data[it.Key], 0o600)
				}
			case v.Secret != nil && m.secrets[v.Secret.SecretName] != nil:
				for _, it := range v.Secret.Items {
					write(vm, it.Path, m.secrets[v.Secret.SecretName].StringData[it.Key], secretFileMode(spec, v.Secret, it))
				}
			}
		}
	}
	args := slices.Clone(c.Args)
	for i, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && moved[v] != "" {
			args[i] = k + "=" + moved[v]
		}
	}
	var env []string
	for _, e := range c.Env {
		v := e.Value
		if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
			if s := m.secrets[r.SecretKeyRef.Name]; s != nil {
				v = s.StringData[r.SecretKeyRef.Key]
			}
		}
		if moved[v] != "" {
			v = moved[v]
		}
		env = append(env, e.Name+"="+v)
	}
	for _, ef := range c.EnvFrom {
		if s := m.secrets[ef.SecretRef.Name]; ef.SecretRef != nil && s != nil {
			for k, v := range s.StringData {
				env = append(env, k+"="+v)
			}
		}
	}
	cmd := exec.Command(bin, append(args, "--check-config")...)
	cmd.Env = env
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// secretFileMode is the mode the kubelet gives the file of item it of a
// Secret volume src in a pod of spec: the item's mode or the volume's
// default (0644), plus group read under an fsGroup (the group is then
// fsGroup's).
func secretFileMode(spec corev1.PodSpec, src *corev1.SecretVolumeSource, it corev1.KeyToPath) os.FileMode {
	mode := os.FileMode(0o644)
	switch {
	case it.Mode != nil:
		mode = os.FileMode(*it.Mode)
	case src.DefaultMode != nil:
		mode = os.FileMode(*src.DefaultMode)
	}
	if sc := spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		mode |= 0o440
	}
	return mode
}
