package kubernetes

import (
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/jwtauthz/jwtauthz/envoy"
)

// authService is the gRPC health service jwtauthz reports SERVING once it
// has keys.
const authService = "envoy.service.auth.v3.Authorization"

func TestSidecar(t *testing.T) {
	m := load(t, "sidecar")
	m.checkCommon(t)
	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.pdbs) != 1 || len(m.netpols) != 1 {
		t.Fatalf("want one Deployment, Service, PodDisruptionBudget and NetworkPolicy")
	}
	spec := m.deployments[0].Spec.Template.Spec
	var names []string
	for _, c := range spec.Containers {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"app", "envoy", "jwtauthz"}) {
		t.Errorf("containers %v: want app, envoy, jwtauthz", names)
	}
	for _, want := range []string{"http", "admin"} {
		if !slices.ContainsFunc(m.services[0].Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == want }) {
			t.Errorf("service: no port named %s", want)
		}
	}
}

// checkDeployment checks one Deployment's pod.
func (m *manifests) checkDeployment(t *testing.T, d *appsv1.Deployment) {
	if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("selector %v does not pick the pod's labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	spec := d.Spec.Template.Spec
	podNonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
	seen := map[string]bool{}
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if seen[p.Name] || len(validation.IsValidPortName(p.Name)) > 0 {
				t.Errorf("container %s: port name %q repeated in the pod, or invalid", c.Name, p.Name)
			}
			seen[p.Name] = true
		}
		t.Run(c.Name, func(t *testing.T) {
			checkContainer(t, c, podNonRoot)
			m.checkMounts(t, spec, c)
			if c.Name == "jwtauthz" {
				checkJWTAuthz(t, c)
			}
		})
	}
}

func checkContainer(t *testing.T, c corev1.Container, podNonRoot bool) {
	if !pinnedImage.MatchString(c.Image) {
		t.Errorf("image %q is not pinned to a version", c.Image)
	}
	r := c.Resources
	if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
		t.Errorf("resources %v: want cpu and memory requests and a memory limit", r)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no securityContext")
	case !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot):
		t.Error("not runAsNonRoot")
	case sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Error("no numeric non-zero runAsUser: the kubelet cannot check a named user is not root")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem not read-only")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation allowed")
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
		t.Error("capabilities: want drop ALL")
	}
	if c.ReadinessProbe == nil {
		t.Error("no readiness probe")
	}
	for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p != nil {
			checkProbe(t, c, kind, p)
		}
	}
}

// checkProbe wants the probe aimed at a port the container declares.
func checkProbe(t *testing.T, c corev1.Container, kind string, p *corev1.Probe) {
	var name string
	var number int32
	switch h := p.ProbeHandler; {
	case h.HTTPGet != nil:
		name, number = h.HTTPGet.Port.StrVal, h.HTTPGet.Port.IntVal
	case h.TCPSocket != nil:
		name, number = h.TCPSocket.Port.StrVal, h.TCPSocket.Port.IntVal
	case h.GRPC != nil:
		number = h.GRPC.Port
	default:
		t.Errorf("%s probe: no httpGet, tcpSocket or grpc", kind)
		return
	}
	if _, ok := containerPort(c, name, number); !ok {
		t.Errorf("%s probe on port %q/%d, which the container does not declare", kind, name, number)
	}
}

// checkMounts wants every mount's volume in the pod, every ConfigMap
// volume's ConfigMap and keys here, every Secret a volume or a variable
// reads here or external, and the files the container is told to
// read (-c, --config) where a ConfigMap key is mounted. Envoy's is loaded
// and validated as envoy/ does, its clusters aimed at ports of the pod.
func (m *manifests) checkMounts(t *testing.T, spec corev1.PodSpec, c corev1.Container) {
	files := map[string]string{} // mounted path → content
	for _, vm := range c.VolumeMounts {
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 {
			t.Errorf("mount %s: no such volume", vm.Name)
			continue
		}
		if s := spec.Volumes[i].Secret; s != nil && m.secrets[s.SecretName] == nil && !slices.Contains(m.external, s.SecretName) {
			t.Errorf("volume %s: no Secret %s", vm.Name, s.SecretName)
		}
		src := spec.Volumes[i].ConfigMap
		if src == nil {
			continue
		}
		cm := m.configMaps[src.Name]
		if cm == nil {
			t.Errorf("volume %s: no ConfigMap %s", vm.Name, src.Name)
			continue
		}
		for _, it := range src.Items {
			data, ok := cm.Data[it.Key]
			if !ok {
				t.Errorf("volume %s: ConfigMap %s has no key %s", vm.Name, src.Name, it.Key)
			}
			files[path.Join(vm.MountPath, it.Path)] = data
		}
	}
	for _, e := range c.Env {
		if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && m.secrets[r.SecretKeyRef.Name] == nil && !slices.Contains(m.external, r.SecretKeyRef.Name) {
			t.Errorf("env %s: no Secret %s", e.Name, r.SecretKeyRef.Name)
		}
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil && m.configMaps[ef.ConfigMapRef.Name] == nil {
			t.Errorf("envFrom: no ConfigMap %s", ef.ConfigMapRef.Name)
		}
		if r := ef.SecretRef; r != nil && m.secrets[r.Name] == nil && !slices.Contains(m.external, r.Name) {
			t.Errorf("envFrom: no Secret %s", r.Name)
		}
	}
	for i, a := range c.Args {
		var file string
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			file = v
		} else if a == "-c" && i+1 < len(c.Args) {
			file = c.Args[i+1]
		} else {
			continue
		}
		data, ok := files[file]
		if !ok {
			t.Errorf("reads %s, where no ConfigMap key is mounted (%v)", file, keys(files))
		}
		if a == "-c" && ok {
			checkEnvoyInPod(t, spec, c, data)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkEnvoyInPod validates Envoy's configuration and wants its listeners
// on ports the Envoy container declares and its clusters on ports another
// container of the pod declares, over localhost.
func checkEnvoyInPod(t *testing.T, spec corev1.PodSpec, c corev1.Container, data string) {
	bs, err := envoy.Parse([]byte(data))
	if err != nil {
		t.Fatalf("Envoy configuration: %v", err)
	}
	for _, l := range bs.GetStaticResources().GetListeners() {
		port := int32(l.GetAddress().GetSocketAddress().GetPortValue())
		if _, ok := containerPort(c, "", port); !ok {
			t.Errorf("Envoy listener %s on %d: not a port of the envoy container", l.GetName(), port)
		}
	}
	for _, cl := range bs.GetStaticResources().GetClusters() {
		for _, addr := range envoy.Endpoints(cl) {
			host, p, _ := net.SplitHostPort(addr)
			n, _ := strconv.Atoi(p)
			found := slices.ContainsFunc(spec.Containers, func(o corev1.Container) bool {
				_, ok := containerPort(o, "", int32(n))
				return o.Name != c.Name && ok
			})
			if host != "127.0.0.1" || !found {
				t.Errorf("Envoy cluster %s reaches %s: want 127.0.0.1 and a port another container declares", cl.GetName(), addr)
			}
		}
	}
	for _, want := range []string{"jwtauthz", "app"} {
		if envoy.Cluster(bs, want) == nil {
			t.Errorf("Envoy configuration has no cluster %s", want)
		}
	}
	host, port, _ := net.SplitHostPort(envoy.Address(bs.GetAdmin().GetAddress()))
	checkEnvoyPreStop(t, c, "/dev/tcp/"+host+"/"+port)
}

// checkEnvoyPreStop runs Envoy's preStop hook (bash -c …), its sleep only
// printed, against an AdminStub in place of the admin listener at tcp: it
// must fail the health check and drain the listeners, which a request the
// admin listener refuses (HTTP/1.0: 426) does not, and then wait out the
// drain (--drain-time-s) before SIGTERM comes.
func checkEnvoyPreStop(t *testing.T, c corev1.Container, tcp string) {
	t.Helper()
	var cmd []string
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Exec != nil {
		cmd = c.Lifecycle.PreStop.Exec.Command
	}
	if len(cmd) != 3 || cmd[0] != "bash" || cmd[1] != "-c" || !strings.Contains(cmd[2], tcp) {
		t.Errorf("Envoy preStop %q: want bash -c SCRIPT, the script talking to the admin listener at %s", cmd, tcp)
		return
	}
	stub := envoy.NewAdminStub()
	defer stub.Close()
	out, err := stub.RunScript(cmd[2], tcp)
	if errors.Is(err, envoy.ErrNoBash) {
		t.Log("no bash here: the preStop hook is not run")
		return
	}
	want := []string{"POST /healthcheck/fail", "POST /drain_listeners?graceful"}
	if err != nil || !slices.Equal(stub.Answered(), want) {
		t.Errorf("Envoy preStop against a stub admin listener: %v %s; answered %q, want %q", err, out, stub.Answered(), want)
	}
	drain := 0
	if i := slices.Index(c.Args, "--drain-time-s"); i >= 0 && i+1 < len(c.Args) {
		drain, _ = strconv.Atoi(c.Args[i+1])
	}
	slept := 0
	if i := strings.LastIndex(out, "sleep "); i >= 0 {
		fmt.Sscanf(out[i:], "sleep %d", &slept)
	}
	if drain == 0 || slept <= drain {
		t.Errorf("Envoy preStop sleeps %d s (%s), want longer than --drain-time-s (%d)", slept, strings.TrimSpace(out), drain)
	}
}

// checkJWTAuthz wants jwtauthz's listeners on the ports named for them,
// its gRPC readiness probe asking for the Authorization service, no
// GOMEMLIMIT to override the soft memory limit jwtauthz sets from the
// container's memory limit (which checkContainer wants every container to
// have), and, with no CPU limit, a GOMAXPROCS.
func checkJWTAuthz(t *testing.T, c corev1.Container) {
	if slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" }) {
		t.Errorf("env %v: GOMEMLIMIT would replace the 90 %% of the container's limit jwtauthz sets", c.Env)
	}
	if _, limited := c.Resources.Limits[corev1.ResourceCPU]; !limited {
		procs := ""
		if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMAXPROCS" }); i >= 0 {
			procs = c.Env[i].Value
		}
		if n, err := strconv.Atoi(procs); err != nil || n < 1 {
			t.Errorf("env %v: no CPU limit and no positive GOMAXPROCS: Go would run on every CPU of the node (docs/operations.md, \"CPU\")", c.Env)
		}
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Errorf("args %v: want serve", c.Args)
	}
	for flag, name := range map[string]string{"--grpc-addr=": "grpc", "--http-addr=": "http", "--admin-addr=": "admin"} {
		i := slices.IndexFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, flag) })
		if i < 0 {
			t.Errorf("args %v: no %s (explicit, so that the ports below are its ports)", c.Args, flag)
			continue
		}
		addr := strings.TrimPrefix(c.Args[i], flag)
		p, declared := containerPort(c, name, 0)
		if addr == "" {
			if declared {
				t.Errorf("%s is off, but port %s is declared", flag, name)
			}
			continue
		}
		if _, port, _ := net.SplitHostPort(addr); !declared || port != strconv.Itoa(int(p.ContainerPort)) {
			t.Errorf("%s%s: want it on the container port named %s (%d)", flag, addr, name, p.ContainerPort)
		}
	}
	g := c.ReadinessProbe.GRPC
	grpc, _ := containerPort(c, "grpc", 0)
	if g == nil || g.Service == nil || *g.Service != authService || g.Port != grpc.ContainerPort {
		t.Errorf("readiness probe %v: want gRPC health of %s on the grpc port", c.ReadinessProbe, authService)
	}
}
