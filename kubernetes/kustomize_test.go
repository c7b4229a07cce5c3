package kubernetes

import (
	"os"
	"path/filepath"
	"testing"

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

	// An overlay in a directory of its own, naming the shipped ones by
	// relative path as a reader's overlay would.
	overlay := t.TempDir()
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(overlay, here)
	if err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
		"resources:\n- " + filepath.Join(rel, "jwtauthz") + "\n" +
		"components:\n- " + filepath.Join(rel, "components", "servicemonitor") + "\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	all := kustomize(t, overlay)
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
