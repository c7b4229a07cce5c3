package kubernetes

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomize builds the kustomization in dir as `kubectl apply -k` would
// (kustomize's own library, its default load restrictions) and decodes
// every object of the output strictly.
func kustomize(t *testing.T, dir string) *manifests {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	m := newManifests("kustomize build " + dir)
	m.addDocs(t, dir, string(out))
	return m
}

// TestKustomizeBuild builds each shipped kustomization and checks its
// output as the files are checked: the images set by `images:`, the
// labels added, the generated ConfigMap.
func TestKustomizeBuild(t *testing.T) {
	for _, tc := range []struct {
		dir       string
		namespace bool // has the jwtauthz Namespace and everything in it
	}{
		{dir: "sidecar"},
		{dir: "jwtauthz"},
		{dir: "istio", namespace: true},
		{dir: "envoy-gateway", namespace: true},
		{dir: "monitoring"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			m := kustomize(t, tc.dir)
			m.checkCommon(t)
			if tc.namespace {
				m.checkNamespace(t)
			}
		})
	}
}

// TestKustomizeMonitoring builds monitoring/ alone and the central
// service, whose base includes it, with the ServiceMonitor component as an
// overlay of the reader's would: the PrometheusRule and the dashboard ConfigMap in
// the jwtauthz namespace, the ServiceMonitor scraping the Service's admin
// port, where the Deployment serves /metrics.
func TestKustomizeMonitoring(t *testing.T) {
	m := kustomize(t, "monitoring")
	if len(m.rules) != 1 || len(m.configMaps) != 1 || len(m.monitors) != 0 {
		t.Fatalf("monitoring/: %d PrometheusRules, %d ConfigMaps, %d ServiceMonitors: want 1, 1, 0", len(m.rules), len(m.configMaps), len(m.monitors))
	}
	m.checkRules(t)
	m.checkDashboard(t, "jwtauthz-grafana-dashboard")
	for _, ns := range []string{m.rules[0].Namespace, m.configMaps["jwtauthz-grafana-dashboard"].Namespace} {
		if ns != "jwtauthz" {
			t.Errorf("namespace %q, want jwtauthz", ns)
		}
	}

	all := kustomize(t, overlay(t, "jwtauthz", "servicemonitor"))
	if len(all.monitors) != 1 || len(all.rules) != 1 || len(all.deployments) != 1 {
		t.Fatalf("%d ServiceMonitors, %d PrometheusRules, %d Deployments: want one each", len(all.monitors), len(all.rules), len(all.deployments))
	}
	all.checkCommon(t) // the ServiceMonitor's checks among them
	all.checkRules(t)
	all.checkDashboard(t, "jwtauthz-grafana-dashboard")

	base := kustomize(t, "jwtauthz")
	if len(base.rules) != 1 || len(base.monitors) != 0 || base.configMaps["jwtauthz-grafana-dashboard"] == nil {
		t.Errorf("jwtauthz/: %d PrometheusRules, %d ServiceMonitors, dashboard %v: want the rule and the dashboard, no ServiceMonitor",
			len(base.rules), len(base.monitors), base.configMaps["jwtauthz-grafana-dashboard"] != nil)
	}
}

// overlay writes an overlay in a directory of its own, naming the shipped
// base and component by relative path as a reader's overlay would, and
// returns its directory.
func overlay(t *testing.T, base, component string) string {
	t.Helper()
	dir := t.TempDir()
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, here)
	if err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
		"resources:\n- " + filepath.Join(rel, base) + "\n" +
		"components:\n- " + filepath.Join(rel, "components", component) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestKustomizeSharedCache builds the sidecar and the central service
// with the shared-cache component: the jwtauthz container keeps what the
// base gives it and gains the URL and the key file from the Secret
// jwtauthz-shared-cache, with the pod's fsGroup its group; jwtauthz
// --check-config accepts the result, the Secret's files written as the
// kubelet would.
func TestKustomizeSharedCache(t *testing.T) {
	for _, base := range []string{"sidecar", "jwtauthz"} {
		t.Run(base, func(t *testing.T) {
			before := kustomize(t, base)
			m := kustomize(t, overlay(t, base, "shared-cache"))
			m.external = append(m.external, "jwtauthz-shared-cache")
			m.checkCommon(t)
			if len(m.deployments) != 1 {
				t.Fatalf("%d Deployments, want 1", len(m.deployments))
			}
			d := m.deployments[0]
			c, was := container(t, d, "jwtauthz"), container(t, before.deployments[0], "jwtauthz")
			if len(c.Env) != len(was.Env)+2 || len(c.VolumeMounts) != len(was.VolumeMounts)+1 || !slices.Equal(c.Args, was.Args) {
				t.Errorf("jwtauthz container: env %d, mounts %d, args %q; want the base's (%d, %d, %q) and the shared cache's", len(c.Env), len(c.VolumeMounts), c.Args, len(was.Env), len(was.VolumeMounts), was.Args)
			}
			sc, csc := d.Spec.Template.Spec.SecurityContext, c.SecurityContext
			if sc == nil || sc.FSGroup == nil || csc == nil || csc.RunAsGroup == nil || *sc.FSGroup != *csc.RunAsGroup || sc.RunAsNonRoot == nil {
				t.Errorf("pod securityContext %+v: want the base's, and fsGroup the jwtauthz container's group", sc)
			}
			m.secrets["jwtauthz-shared-cache"] = &corev1.Secret{StringData: sharedCacheSecret()}
			if out := checkConfig(t, m, d); !strings.Contains(out, "config ok") || !strings.Contains(out, "redis.auth.svc") {
				t.Errorf("jwtauthz --check-config:\n%s", out)
			}
		})
	}
}

// container returns d's container name.
func container(t *testing.T, d *appsv1.Deployment, name string) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("Deployment %s: no container %s", d.Name, name)
	return corev1.Container{}
}
