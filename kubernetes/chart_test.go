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
	corev1 "k8s.io/api/core/v1"
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
	// secrets are the Secrets the cluster holds (an existingSecret's),
	// by name: their keys and values.
	secrets map[string]map[string]string
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

		{name: "sharedCache", release: "jwtauthz", values: with("sharedCache", sharedCacheValues("50ms")), secrets: map[string]map[string]string{"redis-shared": sharedCacheSecret()}, wantProcs: "2"},
		{name: "sharedCache without existingSecret", release: "jwtauthz", values: with("sharedCache", map[string]any{"enabled": true}), wantErr: "sharedCache.existingSecret"},
		{name: "sharedCache and config.shared_cache", release: "jwtauthz", values: with("sharedCache", sharedCacheValues(""), "config", map[string]any{
			"providers": minimalConfig()["providers"], "shared_cache": "redis://r:6379"}), wantErr: "config.shared_cache"},
		{name: "sharedCache and --shared-cache-timeout", release: "jwtauthz", values: with("sharedCache", sharedCacheValues(""), "extraArgs", []any{"--shared-cache-timeout=1s"}), wantErr: "extraArgs"},
		{name: "sharedCache and its variable in env", release: "jwtauthz", values: with("sharedCache", sharedCacheValues(""), "env", []any{map[string]any{"name": "JWTAUTHZ_SHARED_CACHE", "value": "redis://r"}}), wantErr: "env JWTAUTHZ_SHARED_CACHE"},
		{name: "sharedCache with a timeout jwtauthz refuses", release: "jwtauthz", values: with("sharedCache", sharedCacheValues("soon")), secrets: map[string]map[string]string{"redis-shared": sharedCacheSecret()}, wantProcs: "2", wantRefused: "JWTAUTHZ_SHARED_CACHE_TIMEOUT: \"soon\" is not a duration"},

		{name: "an introspection provider, its client secret from secretEnv", release: "jwtauthz", values: with("config", introspectionConfig(),
			"secretEnv", map[string]any{"JWTAUTHZ_PROVIDERS_HYDRA_CLIENT_SECRET": "placeholder"}), wantProcs: "2"},
		{name: "an introspection provider without its client secret", release: "jwtauthz", values: with("config", introspectionConfig()),
			wantProcs: "2", wantRefused: "JWTAUTHZ_PROVIDERS_HYDRA_CLIENT_SECRET"},

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
			for name, data := range tc.secrets {
				m.secrets[name] = &corev1.Secret{StringData: data}
			}
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

// sharedCacheValues turns the shared cache on, from the Secret
// redis-shared, with the timeout given ("": jwtauthz's).
func sharedCacheValues(timeout string) map[string]any {
	return map[string]any{"enabled": true, "existingSecret": "redis-shared", "timeout": timeout}
}

// sharedCacheSecret is the data of a shared-cache Secret as the docs
// describe it.
func sharedCacheSecret() map[string]string {
	return map[string]string{
		"url": "redis://:password@redis.auth.svc:6379/0",
		"key": "pSFKqDsJg0Vd1y6mS1nq8hGgkq2xQp8sKp3n6+0hYk4yZ3GkqvLqkR1xq9m2Vt0b\n",
	}
}

// TestChartSharedCache: with sharedCache, jwtauthz gets the Redis URL
// from the Secret and the key file from a Secret volume that only its
// user and group may read (the pod's fsGroup is the container's group),
// at the path it is given; jwtauthz --check-config accepts both. With the
// Secret volume's default mode (0644), it refuses the key file.
func TestChartSharedCache(t *testing.T) {
	m, _, err := render(t, "jwtauthz", with("sharedCache", sharedCacheValues("")))
	if err != nil {
		t.Fatal(err)
	}
	d := m.deployments[0]
	spec := d.Spec.Template.Spec
	c := container(t, d, "jwtauthz")
	sc, csc := spec.SecurityContext, c.SecurityContext
	if sc == nil || sc.FSGroup == nil || csc == nil || csc.RunAsGroup == nil || *sc.FSGroup != *csc.RunAsGroup {
		t.Errorf("pod securityContext %+v, container's %+v: want fsGroup the container's runAsGroup", sc, csc)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if r := env["JWTAUTHZ_SHARED_CACHE"].ValueFrom; r == nil || r.SecretKeyRef == nil || r.SecretKeyRef.Name != "redis-shared" || r.SecretKeyRef.Key != "url" {
		t.Errorf("JWTAUTHZ_SHARED_CACHE from %+v, want the Secret redis-shared's url", r)
	}
	if _, ok := env["JWTAUTHZ_SHARED_CACHE_TIMEOUT"]; ok {
		t.Error("JWTAUTHZ_SHARED_CACHE_TIMEOUT set without sharedCache.timeout")
	}
	m.secrets["redis-shared"] = &corev1.Secret{StringData: sharedCacheSecret()}
	if out := checkConfig(t, m, d); !strings.Contains(out, "config ok") {
		t.Errorf("jwtauthz --check-config refused the shared cache:\n%s", out)
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			v.Secret.DefaultMode = nil
		}
	}
	if out := checkConfig(t, m, d); !strings.Contains(out, "JWTAUTHZ_SHARED_CACHE_KEY_FILE") || !strings.Contains(out, "readable or writable by others") {
		t.Errorf("jwtauthz --check-config accepted a key file others may read:\n%s", out)
	}
}

// introspectionConfig is a configuration with one introspection provider,
// hydra, whose client secret is not in the file.
func introspectionConfig() map[string]any {
	return map[string]any{"providers": []any{map[string]any{"name": "hydra", "issuer": "https://hydra.example.com/", "audiences": []any{"api"},
		"introspection": map[string]any{"url": "https://hydra.example.com/admin/oauth2/introspect", "client_id": "jwtauthz"}}}}
}
