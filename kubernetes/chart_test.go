package kubernetes

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
)

// chartDir is the Helm chart, read as `helm template` and `helm lint` read
// it (.helmignore applied).
const chartDir = "../charts/jwtauthz"

// chartNamespace is the release namespace of the renders: not jwtauthz,
// so that a name written into a template in place of .Release.Namespace
// shows.
const chartNamespace = "auth"

// render renders the chart as `helm template RELEASE charts/jwtauthz -n
// auth -f values` does: the values checked against values.schema.json,
// templates in strict mode (a reference to a value that is not there is
// an error, not an empty string). It returns the manifests, decoded
// strictly, and NOTES.txt.
func render(t *testing.T, release string, vals map[string]any) (*manifests, string, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load %s: %v", chartDir, err)
	}
	rv, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: release, Namespace: chartNamespace, IsInstall: true}, nil)
	if err != nil {
		return nil, "", err
	}
	out, err := engine.Engine{Strict: true}.RenderWithContext(t.Context(), ch, rv)
	if err != nil {
		return nil, "", err
	}
	m := newManifests("helm template " + release)
	var notes string
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range out {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, "NOTES.txt"):
			notes = out[name]
		case strings.HasPrefix(filepath.Base(name), "_"):
		default:
			m.addDocs(t, name, out[name])
		}
	}
	return m, notes, nil
}

// values reads a values file as `helm -f` does.
func values(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := common.ReadValuesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return v.AsMap()
}

// chartCase is one set of values: a documented example, or a case the
// chart must get right (or refuse).
type chartCase struct {
	name    string
	release string
	values  map[string]any
	// wantErr is in the error that rendering must fail with, naming the
	// value at fault; "" for a render that must succeed.
	wantErr string
	// wantProcs is the GOMAXPROCS the Deployment must set ("" none).
	wantProcs string
	// wantRefused is in --check-config's output when jwtauthz must
	// refuse the rendered configuration.
	wantRefused string
}

// minimalConfig is a configuration that --check-config accepts.
func minimalConfig() map[string]any {
	return map[string]any{
		"providers": []any{map[string]any{"name": "default", "issuer": "https://login.example.com/", "audiences": []any{"api"}}},
		"rules":     []any{map[string]any{"action": "require"}},
	}
}

// with returns minimalConfig's values with the given top-level values set.
func with(kv ...any) map[string]any {
	v := map[string]any{"config": minimalConfig()}
	for i := 0; i+1 < len(kv); i += 2 {
		v[kv[i].(string)] = kv[i+1]
	}
	return v
}

func chartCases(t *testing.T) []chartCase {
	cases := []chartCase{
		{name: "default values: no configuration", release: "jwtauthz", wantErr: "config: set jwtauthz's configuration file"},
		{name: "another release name", release: "edge", values: with(), wantProcs: "2"},
		{name: "secretEnv", release: "jwtauthz", values: with("secretEnv", map[string]any{"CLERK_SECRET_KEY": "sk_test_placeholder"}), wantProcs: "2"},
		{name: "no autoscaling", release: "jwtauthz", values: with("autoscaling", map[string]any{"enabled": false}, "replicaCount", 3), wantProcs: "2"},
		{name: "goMaxProcs set", release: "jwtauthz", values: with("goMaxProcs", 4), wantProcs: "4"},
		{name: "CPU request rounded up", release: "jwtauthz", values: with("resources", map[string]any{"requests": map[string]any{"cpu": "2500m", "memory": "64Mi"}, "limits": map[string]any{"memory": "256Mi"}}), wantProcs: "3"},
		{name: "CPU request in cores", release: "jwtauthz", values: with("resources", map[string]any{"requests": map[string]any{"cpu": 3, "memory": "64Mi"}, "limits": map[string]any{"memory": "256Mi"}}), wantProcs: "3"},

		{name: "numbers in config, as values files give them", release: "jwtauthz", values: with("config", map[string]any{
			"providers":  []any{map[string]any{"name": "a", "issuer": "https://a.example.com/"}},
			"cache_size": float64(1000000), "max_token_size": float64(16384), "jwks_refresh": "2h",
		}), wantProcs: "2"},

		{name: "a misspelt value", release: "jwtauthz", values: with("replicas", 3), wantErr: "replicas"},
		{name: "a misspelt nested value", release: "jwtauthz", values: with("metrics", map[string]any{"serviceMonitor": map[string]any{"enable": true}}), wantErr: "enable"},
		{name: "no memory limit", release: "jwtauthz", values: with("resources", map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "64Mi"}, "limits": map[string]any{"memory": nil}}), wantErr: "memory"},
		{name: "a CPU request that is no quantity", release: "jwtauthz", values: with("resources", map[string]any{"requests": map[string]any{"cpu": "lots", "memory": "64Mi"}, "limits": map[string]any{"memory": "256Mi"}}), wantErr: "resources.requests.cpu"},
		{name: "secretEnv and existingSecret", release: "jwtauthz", values: with("secretEnv", map[string]any{"A": "b"}, "existingSecret", "s"), wantErr: "existingSecret"},
		{name: "a listener address in config", release: "jwtauthz", values: with("config", map[string]any{"grpc_addr": ":1"}), wantErr: "config.grpc_addr"},
		{name: "config that is not YAML", release: "jwtauthz", values: with("config", "providers: [\n"), wantErr: "config: not YAML"},
		{name: "empty config", release: "jwtauthz", values: with("config", map[string]any{}), wantErr: "config: set"},
		{name: "empty config string", release: "jwtauthz", values: with("config", ""), wantErr: "config: set"},
		{name: "a PDB that blocks every eviction", release: "jwtauthz", values: with("podDisruptionBudget", map[string]any{"minAvailable": 2}), wantErr: "podDisruptionBudget.minAvailable"},
		{name: "a listener flag in extraArgs", release: "jwtauthz", values: with("extraArgs", []any{"--grpc-addr=:1"}), wantErr: "extraArgs"},
		{name: "GOMAXPROCS in env", release: "jwtauthz", values: with("env", []any{map[string]any{"name": "GOMAXPROCS", "value": "8"}}), wantErr: "goMaxProcs"},
		{name: "a bad digest", release: "jwtauthz", values: with("image", map[string]any{"digest": "sha256:abc"}), wantErr: "digest"},

		{name: "config jwtauthz refuses", release: "jwtauthz", values: with("config", map[string]any{
			"providers": []any{map[string]any{"name": "a", "issuer": "https://a.example.com/"}},
			"rules":     []any{map[string]any{"action": "require", "require": map[string]any{"providers": []any{"b"}}}},
		}), wantProcs: "2", wantRefused: `no provider named "b"`},
	}
	examples, _ := filepath.Glob(filepath.Join(chartDir, "examples", "*.yaml"))
	if len(examples) == 0 {
		t.Fatal("no values examples")
	}
	for _, f := range examples {
		c := chartCase{name: "examples/" + filepath.Base(f), release: "jwtauthz", values: values(t, f), wantProcs: "2"}
		if filepath.Base(f) == "locked-down.yaml" {
			c.wantProcs = "" // a CPU limit: Go follows it
		}
		cases = append(cases, c)
	}
	return cases
}

// TestChart renders the chart for its default values, each example of
// charts/jwtauthz/examples/ and the cases above, decodes every object
// strictly into its Kubernetes (or prometheus-operator) type, checks them
// as the kubernetes/ manifests are checked, and runs jwtauthz serve
// --check-config on the rendered container's arguments, environment and
// configuration file.
func TestChart(t *testing.T) {
	for _, tc := range chartCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			m, notes, err := render(t, tc.release, tc.values)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("render: %v, want an error naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			checkChart(t, m, coalesce(t, tc.values), tc)
			if want := "rollout status deployment/"; !strings.Contains(notes, want) {
				t.Errorf("NOTES.txt has no %q:\n%s", want, notes)
			}
			out := checkConfig(t, m, m.deployments[0])
			if tc.wantRefused == "" && !strings.Contains(out, "config ok") {
				t.Errorf("jwtauthz --check-config refused the rendered configuration:\n%s", out)
			}
			if tc.wantRefused != "" && !strings.Contains(out, tc.wantRefused) {
				t.Errorf("jwtauthz --check-config: want %q, got:\n%s", tc.wantRefused, out)
			}
		})
	}
}

// coalesce returns the values a render sees: vals over values.yaml.
func coalesce(t *testing.T, vals map[string]any) common.Values {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := util.CoalesceValues(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestChartLint runs `helm lint` (the SDK's lint rules: Chart.yaml, the
// values against values.schema.json, every template rendered and parsed,
// deprecated APIs) with the default values and each example; any warning
// or error fails.
func TestChartLint(t *testing.T) {
	sets := map[string]map[string]any{"default values": nil}
	examples, _ := filepath.Glob(filepath.Join(chartDir, "examples", "*.yaml"))
	for _, f := range examples {
		sets["examples/"+filepath.Base(f)] = values(t, f)
	}
	for name, vals := range sets {
		t.Run(name, func(t *testing.T) {
			res := lint.RunAll(chartDir, vals, chartNamespace)
			for _, msg := range res.Messages {
				if msg.Severity > support.InfoSev {
					t.Error(msg.Error())
				}
			}
		})
	}
}
