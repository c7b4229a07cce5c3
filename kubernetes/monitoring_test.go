package kubernetes

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// promDuration is the pattern prometheus-operator's CRDs give a Duration
// (interval, scrapeTimeout, for): its Go type is a plain string.
var promDuration = regexp.MustCompile(`^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`)

// checkServiceMonitor wants sm to select a Service of m in its namespace,
// each endpoint on a port the Service names and that leads to the
// container port jwtauthz serves /metrics on (--admin-addr), and valid
// durations.
func (m *manifests) checkServiceMonitor(t *testing.T, sm *monitoringv1.ServiceMonitor) {
	ns := sm.Spec.NamespaceSelector
	if !ns.Any && !slices.Contains(ns.MatchNames, sm.Namespace) {
		t.Errorf("namespaceSelector %v: want the ServiceMonitor's own namespace %q", ns.MatchNames, sm.Namespace)
	}
	if len(sm.Spec.Selector.MatchExpressions) > 0 {
		t.Errorf("selector: matchExpressions are not checked here")
	}
	var svc *corev1.Service
	for _, s := range m.services {
		if selects(sm.Spec.Selector.MatchLabels, s.Labels) && (ns.Any || slices.Contains(ns.MatchNames, s.Namespace)) {
			if svc != nil {
				t.Errorf("selects Services %s and %s", svc.Name, s.Name)
			}
			svc = s
		}
	}
	if svc == nil {
		t.Fatalf("selector %v picks no Service", sm.Spec.Selector.MatchLabels)
	}
	if len(sm.Spec.Endpoints) == 0 {
		t.Error("no endpoints")
	}
	d := m.deploymentFor(t, "service "+svc.Name, svc.Spec.Selector)
	for _, ep := range sm.Spec.Endpoints {
		i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port })
		if ep.Port == "" || i < 0 {
			t.Errorf("endpoint port %q: no port of Service %s has that name", ep.Port, svc.Name)
			continue
		}
		if ep.Path != "/metrics" {
			t.Errorf("endpoint path %q, want /metrics", ep.Path)
		}
		for what, dur := range map[string]monitoringv1.Duration{"interval": ep.Interval, "scrapeTimeout": ep.ScrapeTimeout} {
			if !promDuration.MatchString(string(dur)) {
				t.Errorf("endpoint %s %q: not a Prometheus duration", what, dur)
			}
		}
		if d != nil {
			checkMetricsPort(t, d.Spec.Template.Spec, svc.Spec.Ports[i].TargetPort.StrVal)
		}
	}
}

// checkMetricsPort wants the named container port to be the one jwtauthz's
// --admin-addr listens on, where /metrics is.
func checkMetricsPort(t *testing.T, spec corev1.PodSpec, name string) {
	for _, c := range spec.Containers {
		if c.Name != "jwtauthz" {
			continue
		}
		p, ok := containerPort(c, name, 0)
		admin := ""
		if i := slices.IndexFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--admin-addr=") }); i >= 0 {
			admin = strings.TrimPrefix(c.Args[i], "--admin-addr=")
		}
		if !ok || !strings.HasSuffix(admin, ":"+strconv.Itoa(int(p.ContainerPort))) {
			t.Errorf("metrics on container port %q (%d), but --admin-addr is %q", name, p.ContainerPort, admin)
		}
		return
	}
	t.Error("no jwtauthz container behind the scraped Service")
}

// checkRules wants every PrometheusRule of m to carry the rules of
// kubernetes/monitoring/prometheusrule.yaml, with valid durations.
func (m *manifests) checkRules(t *testing.T) {
	want := &monitoringv1.PrometheusRule{}
	strict(t, "monitoring/prometheusrule.yaml", readFile(t, "monitoring/prometheusrule.yaml"), want)
	for _, r := range m.rules {
		if !reflect.DeepEqual(r.Spec, want.Spec) {
			t.Errorf("PrometheusRule %s: its groups are not those of monitoring/prometheusrule.yaml", r.Name)
		}
		for _, g := range r.Spec.Groups {
			for _, rule := range g.Rules {
				if rule.For != nil && !promDuration.MatchString(string(*rule.For)) {
					t.Errorf("alert %s: for %q is not a Prometheus duration", rule.Alert, *rule.For)
				}
				if rule.Expr.String() == "" || rule.Alert == "" {
					t.Errorf("group %s: a rule without an alert name or expression", g.Name)
				}
			}
		}
	}
}

// checkDashboard wants the ConfigMap called name to hold the dashboard of
// kubernetes/monitoring/grafana-dashboard.json, byte for byte, labelled
// for the Grafana sidecar, and the dashboard to name its data source by a
// variable the sidecar-loaded copy can resolve (no import step fills
// __inputs).
func (m *manifests) checkDashboard(t *testing.T, name string) {
	cm := m.configMaps[name]
	if cm == nil {
		t.Fatalf("no ConfigMap %s", name)
	}
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("ConfigMap %s labels %v: want grafana_dashboard: \"1\" for the Grafana sidecar", name, cm.Labels)
	}
	want := readFile(t, "monitoring/grafana-dashboard.json")
	got := cm.Data["grafana-dashboard.json"]
	if strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("ConfigMap %s: grafana-dashboard.json is not monitoring/grafana-dashboard.json", name)
	}
	var dash struct {
		Templating struct {
			List []struct{ Name, Type, Query string }
		}
	}
	if err := json.Unmarshal([]byte(got), &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if !slices.ContainsFunc(dash.Templating.List, func(v struct{ Name, Type, Query string }) bool {
		return v.Name == "DS_PROMETHEUS" && v.Type == "datasource" && v.Query == "prometheus"
	}) && strings.Contains(got, "${DS_PROMETHEUS}") {
		t.Error("the panels name ${DS_PROMETHEUS}, which no datasource variable defines")
	}
}

// TestPrometheusRuleWithPromtool runs Prometheus's own `promtool check
// rules` on the groups of monitoring/prometheusrule.yaml (every expression
// parsed, every template checked), and `promtool test rules` on
// testdata/alerts_test.yaml, which feeds series to some alerts and says
// when they fire. It skips when promtool is not installed (Debian:
// apt-get install prometheus).
func TestPrometheusRuleWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian/Ubuntu: apt-get install prometheus)")
	}
	rule := &monitoringv1.PrometheusRule{}
	strict(t, "monitoring/prometheusrule.yaml", readFile(t, "monitoring/prometheusrule.yaml"), rule)
	b, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rules := filepath.Join(dir, "jwtauthz.rules.yaml")
	if err := os.WriteFile(rules, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	// Beside the rules, which the tests name relative to themselves.
	tests := filepath.Join(dir, "alerts_test.yaml")
	if err := os.WriteFile(tests, []byte(readFile(t, "testdata/alerts_test.yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", tests).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
