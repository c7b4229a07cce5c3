package envoy

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// composeFile is the part of the Compose format docker-compose.yaml uses.
// It is decoded strictly: a key added there must be added here, and a
// misspelt one fails.
type composeFile struct {
	Services map[string]composeService `json:"services"`
}

type composeService struct {
	Image string `json:"image"`
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
	} `json:"build"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	Ports       []string          `json:"ports"`
	Volumes     []string          `json:"volumes"`
	DependsOn   map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Healthcheck *struct {
		Test        []string `json:"test"`
		Interval    string   `json:"interval"`
		Timeout     string   `json:"timeout"`
		Retries     int      `json:"retries"`
		StartPeriod string   `json:"start_period"`
	} `json:"healthcheck"`
	ReadOnly    bool     `json:"read_only"`
	CapDrop     []string `json:"cap_drop"`
	SecurityOpt []string `json:"security_opt"`
	Restart     string   `json:"restart"`
}

// published returns the container ports s publishes on the host.
func (s composeService) published(t *testing.T) []int {
	t.Helper()
	var out []int
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		n, err := strconv.Atoi(parts[len(parts)-1])
		if err != nil || len(parts) != 3 || parts[0] != "127.0.0.1" {
			t.Errorf("port %q: want 127.0.0.1:HOST:CONTAINER (nothing open beyond this machine)", p)
		}
		out = append(out, n)
	}
	return out
}

// decodeStrict decodes YAML into v as Parse reads Envoy's: a duplicate key
// or a field v lacks is an error.
func decodeStrict(y []byte, v any) error {
	j, err := yamlToJSON(y)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var pinned = regexp.MustCompile(`^[a-z0-9./-]+:v?[0-9]+(\.[0-9]+)*$`)

func TestCompose(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := decodeStrict(b, &cf); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	var names []string
	for n, s := range cf.Services {
		names = append(names, n)
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 || s.Healthcheck.Test[0] != "CMD" {
			t.Errorf("service %s: want a CMD health check", n)
		}
		for dep, d := range s.DependsOn {
			if d.Condition != "service_healthy" {
				t.Errorf("%s depends on %s being %q, want service_healthy", n, dep, d.Condition)
			}
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"envoy", "jwtauthz", "upstream"}) {
		t.Fatalf("services %v, want envoy, jwtauthz, upstream", names)
	}
	env, jwt, up := cf.Services["envoy"], cf.Services["jwtauthz"], cf.Services["upstream"]

	t.Run("envoy", func(t *testing.T) { checkComposeEnvoy(t, env, cf) })

	if jwt.Build == nil || jwt.Build.Context != "." || jwt.Build.Dockerfile != "Dockerfile" {
		t.Errorf("jwtauthz: want built from ./Dockerfile, got %+v", jwt.Build)
	}
	if !slices.Equal(jwt.Command, []string{"dev"}) {
		t.Errorf("jwtauthz command %v, want [dev]: no outside IdP", jwt.Command)
	}
	if !slices.Contains(jwt.published(t), adminPort) {
		t.Errorf("jwtauthz publishes %v: want the admin port %d, for /dev/token", jwt.Ports, adminPort)
	}
	if hc := jwt.Healthcheck; hc == nil || !slices.Contains(hc.Test, "healthcheck") {
		t.Error("jwtauthz: want the `jwtauthz healthcheck` health check")
	}
	if !pinned.MatchString(up.Image) {
		t.Errorf("upstream image %q is not pinned to a version", up.Image)
	}
}

// checkComposeEnvoy: the mounted file is envoy/envoy.yaml, Envoy reads it,
// and its clusters reach the other services on the ports they listen on.
func checkComposeEnvoy(t *testing.T, env composeService, cf composeFile) {
	if !pinned.MatchString(env.Image) || !strings.HasPrefix(env.Image, "envoyproxy/envoy:v") {
		t.Errorf("envoy image %q: want envoyproxy/envoy pinned to a version", env.Image)
	}
	const mount = "./envoy/envoy.yaml:/etc/envoy/envoy.yaml:ro"
	if !slices.Contains(env.Volumes, mount) {
		t.Fatalf("envoy volumes %v: want %s", env.Volumes, mount)
	}
	if i := slices.Index(env.Command, "-c"); i < 0 || i+1 >= len(env.Command) || env.Command[i+1] != "/etc/envoy/envoy.yaml" {
		t.Errorf("envoy command %v: want -c /etc/envoy/envoy.yaml", env.Command)
	}
	bs := load(t, "envoy.yaml")
	for _, l := range bs.GetStaticResources().GetListeners() {
		port := int(l.GetAddress().GetSocketAddress().GetPortValue())
		if !slices.Contains(env.published(t), port) {
			t.Errorf("listener %s on %d is not published (%v)", l.GetName(), port, env.Ports)
		}
	}
	admin := Address(bs.GetAdmin().GetAddress())
	_, adminP, _ := net.SplitHostPort(admin)
	if hc := strings.Join(env.Healthcheck.Test, " "); !strings.Contains(hc, "/dev/tcp/127.0.0.1/"+adminP) || !strings.Contains(hc, "/ready") {
		t.Errorf("envoy health check %q does not ask the admin listener %s for /ready", hc, admin)
	} else {
		checkHealthcheckRuns(t, env.Healthcheck.Test, "/dev/tcp/127.0.0.1/"+adminP)
	}
	want := map[string]string{
		"jwtauthz": grpcAddr, // jwtauthz dev, default --grpc-addr
		"upstream": "upstream:" + cf.Services["upstream"].Environment["HTTP_PORT"],
	}
	for cluster, addr := range want {
		c := Cluster(bs, cluster)
		if c == nil {
			t.Fatalf("envoy.yaml has no cluster %s", cluster)
		}
		got := Endpoints(c)
		if !slices.Equal(got, []string{addr}) {
			t.Errorf("cluster %s reaches %v, want [%s]", cluster, got, addr)
		}
		host, _, _ := net.SplitHostPort(got[0])
		if _, ok := env.DependsOn[host]; !ok {
			t.Errorf("envoy does not wait for %s, which cluster %s needs", host, cluster)
		}
	}
}

// checkHealthcheckRuns runs the health check's command (CMD bash -c …)
// against an AdminStub in place of the admin listener at tcp: it must pass
// while /ready says LIVE, which an HTTP/1.0 request (answered 426, as Envoy
// does) does not, and fail while /ready says 503.
func checkHealthcheckRuns(t *testing.T, test []string, tcp string) {
	t.Helper()
	if len(test) != 4 || test[1] != "bash" || test[2] != "-c" {
		t.Errorf("envoy health check %q: want CMD bash -c SCRIPT", test)
		return
	}
	stub := NewAdminStub()
	defer stub.Close()
	out, err := stub.RunScript(test[3], tcp)
	if errors.Is(err, ErrNoBash) {
		t.Log("no bash here: the health check is not run")
		return
	}
	if err != nil || !slices.Equal(stub.Answered(), []string{"GET /ready"}) {
		t.Errorf("envoy health check against a stub admin listener: %v %s; answered %q", err, out, stub.Answered())
	}
	stub.SetReady(false)
	if out, err := stub.RunScript(test[3], tcp); err == nil {
		t.Errorf("envoy health check passes while /ready answers 503: %s", out)
	}
}
