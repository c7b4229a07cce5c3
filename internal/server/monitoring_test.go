package server

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/jwtauthz/jwtauthz/introspect/introspecttest"
)

// exported returns every series name jwtauthz exports, histogram
// suffixes included: those of dev after a check, and those of an
// introspection provider and the shared cache.
func exported(t *testing.T) map[string]bool {
	a := startApp(t, true, "dev")
	code, tok, _ := get(t, a.adminURL()+"/dev/token")
	if code != 200 {
		t.Fatal("no dev token")
	}
	get(t, a.httpURL()+"/", "Authorization", "Bearer "+strings.TrimSpace(tok))
	key := filepath.Join(t.TempDir(), "shared-cache-key")
	if err := os.WriteFile(key, []byte(newKey+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	// The shared cache does not connect at start: no Redis is needed.
	shared := introspectionApp(t, introspecttest.New(t, introspecttest.Options{}), newTestClock(), false,
		"--shared-cache", "redis://127.0.0.1:1", "--shared-cache-key-file", key)
	names := map[string]bool{}
	for _, a := range []*testApp{a, shared} {
		gatherNames(t, a, names)
	}
	return names
}

// gatherNames adds the series names a exports to names.
func gatherNames(t *testing.T, a *testApp, names map[string]bool) {
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM || mf.GetType() == dto.MetricType_SUMMARY {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+s] = true
			}
		}
	}
}

var metricName = regexp.MustCompile(`\b(?:jwtauthz|go|process)_[a-zA-Z0-9_]+`)

func TestMonitoringUsesExportedMetrics(t *testing.T) {
	names := exported(t)
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	b, err := os.ReadFile("../../kubernetes/monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs["dashboard: "+p.Title] += tg.Expr + "\n"
		}
	}
	var rule struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []struct {
					Alert       string            `yaml:"alert"`
					Expr        string            `yaml:"expr"`
					For         string            `yaml:"for"`
					Labels      map[string]string `yaml:"labels"`
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		} `yaml:"spec"`
	}
	b, err = os.ReadFile("../../kubernetes/monitoring/prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Strictly: a misspelt key fails here.
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rule); err != nil {
		t.Fatal(err)
	}
	if rule.APIVersion != "monitoring.coreos.com/v1" || rule.Kind != "PrometheusRule" {
		t.Fatalf("%s %s", rule.APIVersion, rule.Kind)
	}
	alerts := map[string]bool{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			exprs["alert: "+r.Alert] = r.Expr
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s needs a severity and a summary", r.Alert)
			}
		}
	}
	for _, want := range []string{"JwtauthzTokenCacheHitRateLow", "JwtauthzJWKSStale", "JwtauthzDenyRateSpike"} {
		if !alerts[want] {
			t.Errorf("alert %s missing", want)
		}
	}
	for where, e := range exprs {
		used := metricName.FindAllString(e, -1)
		if len(used) == 0 {
			t.Errorf("%s: no metric in %q", where, e)
		}
		for _, m := range used {
			if !names[m] {
				t.Errorf("%s uses %s, which jwtauthz does not export", where, m)
			}
		}
	}
}
