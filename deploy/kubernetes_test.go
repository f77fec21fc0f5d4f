package deploy

import (
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/garner-metrics/garner/config"
	"github.com/garner-metrics/garner/pkg/garnertest"
)

// httpCloseAllowance is how long garner's HTTP servers give requests in
// flight after the final flush (pkg/web: ShutdownTimeout 5s).
const httpCloseAllowance = 5 * time.Second

type renderCase struct {
	dir   string         // under kubernetes/
	kinds map[string]int // objects rendered, by kind
	tier  bool           // agents forward to the aggregator StatefulSet
}

var renderCases = []renderCase{
	{".", map[string]int{"Namespace": 1, "ConfigMap": 2, "Service": 1, "StatefulSet": 1, "PodDisruptionBudget": 1, "DaemonSet": 1}, true},
	{"overlays/agents-and-tier", map[string]int{"Namespace": 1, "ConfigMap": 2, "Service": 1, "StatefulSet": 1, "PodDisruptionBudget": 1, "DaemonSet": 1}, true},
	{"overlays/agents-to-backend", map[string]int{"Namespace": 1, "ConfigMap": 1, "DaemonSet": 1}, false},
}

func TestKustomizeRenders(t *testing.T) {
	kubectl := requireTool(t, "kubectl")
	entries, err := os.ReadDir(filepath.Join("kubernetes", "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		i := slices.IndexFunc(renderCases, func(c renderCase) bool { return c.dir == "overlays/"+e.Name() })
		if e.IsDir() && i < 0 {
			t.Errorf("overlay %s has no case in renderCases", e.Name())
		}
	}
	for _, tc := range renderCases {
		t.Run(tc.dir, func(t *testing.T) {
			r := render(t, kubectl, filepath.Join("kubernetes", tc.dir))
			if !maps.Equal(r.kinds, tc.kinds) {
				t.Errorf("kinds %v, want %v", r.kinds, tc.kinds)
			}
			s := checkWorkloads(t, r)
			if tc.tier && s.tierEndpoints == 0 {
				t.Error("no agent forwards to the aggregator tier's headless Service")
			}
			if !tc.tier && (s.tierEndpoints != 0 || s.loopbackEndpoints == 0) {
				t.Errorf("agents only: want forwarding within the pod only, got %d to the tier and %d over loopback", s.tierEndpoints, s.loopbackEndpoints)
			}
			checkConfigMapsLoad(t, r)
		})
	}
}

type workload struct {
	kind, name, ns string
	labels         map[string]string
	spec           *corev1.PodSpec
	annotations    map[string]string
}

func (r *rendered) workloads() []workload {
	var ws []workload
	for _, d := range r.daemonSets {
		ws = append(ws, workload{"DaemonSet", d.Name, d.Namespace, d.Spec.Template.Labels, &d.Spec.Template.Spec, d.Spec.Template.Annotations})
	}
	for _, s := range r.statefulSets {
		ws = append(ws, workload{"StatefulSet", s.Name, s.Namespace, s.Spec.Template.Labels, &s.Spec.Template.Spec, s.Spec.Template.Annotations})
	}
	return ws
}

type workloadStats struct{ tierEndpoints, loopbackEndpoints int }

// checkWorkloads checks every pod template and every garner container in
// it, with the configuration the container really starts with.
func checkWorkloads(t *testing.T, r *rendered) workloadStats {
	var st workloadStats
	for _, w := range r.workloads() {
		checkPodSecurity(t, w)
		cfgs := map[string]*config.Config{}
		for i := range w.spec.Containers {
			c := &w.spec.Containers[i]
			what := describe(w.kind, w.name, c.Name)
			if !isGarner(c.Image) {
				t.Errorf("%s: image %q is not garner", what, c.Image)
				continue
			}
			cfg, err := loadContainerConfig(t, r, w.ns, w.spec, c)
			if err != nil {
				t.Errorf("%s: garner refuses its configuration: %v", what, err)
				continue
			}
			cfgs[c.Name] = cfg
			if w.kind == "DaemonSet" {
				checkAgentIdentity(t, what, w.ns, cfg)
			}
			checkContainerSecurity(t, what, c, false)
			checkResources(t, what, c, cfg)
			checkProbesAndPorts(t, what, w, c, cfg)
			checkShutdownBudget(t, what, w.spec, c, cfg)
		}
		if len(cfgs) == 0 {
			t.Errorf("%s/%s runs no garner container", w.kind, w.name)
		}
		checkPrometheusAnnotations(t, w, cfgs)
		for name, cfg := range cfgs {
			if cfg.Forward.ServerMode != config.ModeForwarder {
				continue
			}
			tier, loop := checkForwarding(t, r, w, name, cfg, cfgs)
			st.tierEndpoints += tier
			st.loopbackEndpoints += loop
		}
	}
	for _, s := range r.statefulSets {
		if svc, ok := r.services[s.Spec.ServiceName]; !ok || svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("StatefulSet/%s: serviceName %q is not a rendered headless Service", s.Name, s.Spec.ServiceName)
		}
		covered := false
		for _, p := range r.pdbs {
			if p.Namespace == s.Namespace && p.Spec.Selector != nil && len(p.Spec.Selector.MatchLabels) > 0 &&
				subset(p.Spec.Selector.MatchLabels, s.Spec.Template.Labels) && (p.Spec.MaxUnavailable != nil || p.Spec.MinAvailable != nil) {
				covered = true
			}
		}
		if !covered {
			t.Errorf("StatefulSet/%s: no PodDisruptionBudget selects its pods", s.Name)
		}
	}
	return st
}

// checkAgentIdentity: an agent names its node as its hostname and tags
// every metric with the node and the namespace (downward API).
func checkAgentIdentity(t *testing.T, what, ns string, cfg *config.Config) {
	t.Helper()
	node := fakePod["spec.nodeName"]
	if cfg.Hostname != node {
		t.Errorf("%s: hostname %q, want the node's name %q", what, cfg.Hostname, node)
	}
	for _, tag := range []string{"node:" + node, "namespace:" + ns} {
		if !slices.Contains(cfg.DefaultTags, tag) {
			t.Errorf("%s: default-tags %q lack %q", what, cfg.DefaultTags, tag)
		}
	}
}

func isGarner(image string) bool {
	name, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return path.Base(name) == "garner"
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func checkPodSecurity(t *testing.T, w workload) {
	t.Helper()
	what := w.kind + "/" + w.name
	ps := w.spec
	sc := ps.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("%s: no pod securityContext", what)
		return
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Errorf("%s: pod runAsNonRoot is not true", what)
	case sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Errorf("%s: pod runAsUser is not a non-zero uid", what)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("%s: seccompProfile is not RuntimeDefault", what)
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken is not false (garner needs no API access)", what)
	}
	// Service links put <SERVICE>_* variables in the environment; garner
	// refuses unknown GARNER_* variables, which a Service named garner-...
	// would create.
	if ps.EnableServiceLinks == nil || *ps.EnableServiceLinks {
		t.Errorf("%s: enableServiceLinks is not false", what)
	}
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		t.Errorf("%s: shares a host namespace", what)
	}
	for i := range ps.InitContainers {
		c := &ps.InitContainers[i]
		checkContainerSecurity(t, describe(w.kind, w.name, c.Name), c, true)
		for _, m := range c.VolumeMounts {
			if v := volume(ps, m.Name); v == nil || v.HostPath == nil {
				t.Errorf("%s init container %s mounts %q, not a hostPath directory", what, c.Name, m.Name)
			}
		}
	}
}

// checkContainerSecurity: no privilege escalation, read-only root, every
// capability dropped, non-root. An init container may run as root to
// chown a hostPath directory, with CHOWN as its only capability.
func checkContainerSecurity(t *testing.T, what string, c *corev1.Container, init bool) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("%s: no securityContext", what)
		return
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", what)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem is not true", what)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", what)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities do not drop ALL", what)
	}
	root := sc.RunAsUser != nil && *sc.RunAsUser == 0 || sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot
	var added []corev1.Capability
	if sc.Capabilities != nil {
		added = sc.Capabilities.Add
	}
	switch {
	case !init && (root || len(added) > 0):
		t.Errorf("%s: runs as root or adds capabilities %v", what, added)
	case init && root && !slices.Equal(added, []corev1.Capability{"CHOWN"}):
		t.Errorf("%s: a root init container may add CHOWN only, adds %v", what, added)
	case init && !root && len(added) > 0:
		t.Errorf("%s: adds capabilities %v", what, added)
	}
}

func checkResources(t *testing.T, what string, c *corev1.Container, cfg *config.Config) {
	t.Helper()
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okR := c.Resources.Requests[name]
		lim, okL := c.Resources.Limits[name]
		if !okR || !okL || req.IsZero() || lim.IsZero() {
			t.Errorf("%s: %s request and limit must both be set", what, name)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s above limit %s", what, name, req.String(), lim.String())
		}
	}
	if lim, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && cfg.MemoryLimit > 0 {
		// GOMEMLIMIT must leave room under the container limit for what is
		// not Go heap (stacks, buffers), or the kernel kills first.
		if q := resource.NewQuantity(int64(cfg.MemoryLimit)*10/9, resource.BinarySI); q.Cmp(lim) > 0 {
			t.Errorf("%s: memory-limit %d bytes leaves less than 10%% of the container limit %s", what, cfg.MemoryLimit, lim.String())
		}
	} else if ok {
		t.Errorf("%s: memory-limit (GOMEMLIMIT) is not set under the container limit %s", what, lim.String())
	}
}

// adminPort is the port of admin-addr, which must listen on every
// interface for the kubelet's probes and the other pods.
func adminPort(t *testing.T, what string, cfg *config.Config) int {
	t.Helper()
	host, port, err := net.SplitHostPort(cfg.Admin.Addr)
	if err != nil {
		t.Fatalf("%s: admin-addr %q: %v", what, cfg.Admin.Addr, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("%s: admin-addr %q does not listen on every interface: probes cannot reach it", what, cfg.Admin.Addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("%s: admin-addr port %q: %v", what, port, err)
	}
	return p
}

func containerPort(c *corev1.Container, port int, proto corev1.Protocol) *corev1.ContainerPort {
	for i, p := range c.Ports {
		if int(p.ContainerPort) == port && (p.Protocol == proto || p.Protocol == "" && proto == corev1.ProtocolTCP) {
			return &c.Ports[i]
		}
	}
	return nil
}

// resolvePort turns a probe's or Service's port (number or port name) into
// a number, looking names up in the container's ports.
func resolvePort(c *corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return -1
}

func checkProbesAndPorts(t *testing.T, what string, w workload, c *corev1.Container, cfg *config.Config) {
	t.Helper()
	admin := adminPort(t, what, cfg)
	if containerPort(c, admin, corev1.ProtocolTCP) == nil {
		t.Errorf("%s: no TCP containerPort for admin-addr port %d", what, admin)
	}
	for _, p := range []struct {
		name, suffix string
		probe        *corev1.Probe
	}{
		{"startupProbe", "/startup", c.StartupProbe},
		{"livenessProbe", "/live", c.LivenessProbe},
		{"readinessProbe", "/ready", c.ReadinessProbe},
	} {
		switch {
		case p.probe == nil || p.probe.HTTPGet == nil:
			t.Errorf("%s: no HTTP %s", what, p.name)
		case p.probe.HTTPGet.Path != cfg.Admin.HealthBasePath+p.suffix:
			t.Errorf("%s: %s path %q, want %q", what, p.name, p.probe.HTTPGet.Path, cfg.Admin.HealthBasePath+p.suffix)
		case resolvePort(c, p.probe.HTTPGet.Port) != admin:
			t.Errorf("%s: %s port %s is not admin-addr's %d", what, p.name, p.probe.HTTPGet.Port.String(), admin)
		case p.probe.HTTPGet.Scheme != "" && p.probe.HTTPGet.Scheme != corev1.URISchemeHTTP:
			t.Errorf("%s: %s scheme %s: garner's admin server here is plain HTTP", what, p.name, p.probe.HTTPGet.Scheme)
		}
	}
	addr := cfg.MetricsAddr
	switch {
	case addr == "":
	case strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "unix:"):
		sock := strings.TrimPrefix(addr, "unix:")
		ok := false
		for _, m := range c.VolumeMounts {
			if v := volume(w.spec, m.Name); m.MountPath == filepath.Dir(sock) && !m.ReadOnly && v != nil && v.HostPath != nil {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s: unix socket %q is not in a writable hostPath mount, so other pods cannot reach it", what, sock)
		}
	default:
		_, port, err := net.SplitHostPort(addr)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			t.Fatalf("%s: metrics-addr %q is not host:port", what, addr)
		}
		cp := containerPort(c, n, corev1.ProtocolUDP)
		switch {
		case cp == nil:
			t.Errorf("%s: no UDP containerPort for metrics-addr %q", what, addr)
		case w.kind == "DaemonSet" && int(cp.HostPort) != n:
			t.Errorf("%s: agents take statsd on the node: want hostPort %d, got %d", what, n, cp.HostPort)
		}
	}
}

func volume(ps *corev1.PodSpec, name string) *corev1.Volume {
	for i := range ps.Volumes {
		if ps.Volumes[i].Name == name {
			return &ps.Volumes[i]
		}
	}
	return nil
}

// checkShutdownBudget: the kubelet must not SIGKILL garner before its
// shutdown is done: preStop, shutdown-grace, a periodic flush still being
// sent (bounded by backend-timeout), the final flush (bounded by
// shutdown-timeout; a forwarder then sends what it holds for up to
// shutdown-timeout again) and the HTTP servers' close.
func checkShutdownBudget(t *testing.T, what string, ps *corev1.PodSpec, c *corev1.Container, cfg *config.Config) {
	t.Helper()
	need := cfg.Admin.ShutdownGrace + cfg.ShutdownTimeout + httpCloseAllowance
	sending := cfg.BackendTimeout
	if cfg.Forward.ServerMode == config.ModeForwarder {
		need += cfg.ShutdownTimeout
		sending = 0 // the forwarder takes a flush at once; its drain is the second shutdown-timeout
	}
	need += sending
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		h := c.Lifecycle.PreStop
		if h.Sleep == nil || h.Exec != nil || h.HTTPGet != nil {
			t.Errorf("%s: preStop must be a sleep action: the image has no shell", what)
		} else {
			need += time.Duration(h.Sleep.Seconds) * time.Second
		}
	}
	grace := 30 * time.Second // Kubernetes' default
	if ps.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*ps.TerminationGracePeriodSeconds) * time.Second
	}
	if grace < need {
		t.Errorf("%s: terminationGracePeriodSeconds %s < %s (preStop + shutdown-grace %s + backend-timeout %s + shutdown-timeout %s%s + %s HTTP close)",
			what, grace, need, cfg.Admin.ShutdownGrace, sending, cfg.ShutdownTimeout, map[bool]string{true: " x 2 (forwarder drain)"}[cfg.Forward.ServerMode == config.ModeForwarder], httpCloseAllowance)
	}
}

func checkPrometheusAnnotations(t *testing.T, w workload, cfgs map[string]*config.Config) {
	t.Helper()
	if w.annotations["prometheus.io/scrape"] != "true" {
		t.Errorf("%s/%s: no prometheus.io/scrape annotation", w.kind, w.name)
		return
	}
	if p := w.annotations["prometheus.io/path"]; p != "/metrics" {
		t.Errorf("%s/%s: prometheus.io/path %q, want /metrics", w.kind, w.name, p)
	}
	for name, cfg := range cfgs {
		if strconv.Itoa(adminPort(t, name, cfg)) == w.annotations["prometheus.io/port"] {
			return
		}
	}
	t.Errorf("%s/%s: prometheus.io/port %q is no garner container's admin port", w.kind, w.name, w.annotations["prometheus.io/port"])
}

// checkForwarding checks that every api-endpoint of a forwarder reaches
// garner ingestion: the aggregator tier's headless Service (with DNS
// refresh, so the agents follow its members), or a sibling container of
// the same pod over loopback. It returns how many of each it found.
func checkForwarding(t *testing.T, r *rendered, w workload, name string, cfg *config.Config, siblings map[string]*config.Config) (tier, loopback int) {
	t.Helper()
	what := describe(w.kind, w.name, name)
	for _, ep := range cfg.Forward.HTTPTransport.APIEndpoints {
		u, err := url.Parse(ep)
		if err != nil {
			t.Errorf("%s: api-endpoint %q: %v", what, ep, err)
			continue
		}
		port, _ := strconv.Atoi(u.Port())
		if u.Port() == "" {
			port = map[string]int{"http": 80, "https": 443}[u.Scheme]
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
			if !ip.IsLoopback() {
				t.Errorf("%s: api-endpoint %q is a fixed address", what, ep)
				continue
			}
			found := false
			for other, oc := range siblings {
				if other != name && oc.Admin.EnableIngestion && oc.Forward.ServerMode == config.ModeStandalone && adminPort(t, other, oc) == port {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: api-endpoint %q: no container of the pod takes ingestion on port %d", what, ep, port)
			}
			loopback++
			continue
		}
		svc := serviceNamed(w.ns, u.Hostname(), r)
		if svc == nil {
			t.Errorf("%s: api-endpoint %q names no rendered Service in namespace %q", what, ep, w.ns)
			continue
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone || svc.Spec.PublishNotReadyAddresses {
			t.Errorf("%s: Service %s is not headless with only ready members (clusterIP %q, publishNotReadyAddresses %v)", what, svc.Name, svc.Spec.ClusterIP, svc.Spec.PublishNotReadyAddresses)
		}
		if cfg.Forward.HTTPTransport.DNSRefresh <= 0 {
			t.Errorf("%s: api-endpoint %q is a headless Service but dns-refresh is off: the agents would not follow its members", what, ep)
		}
		members := 0
		for _, s := range r.statefulSets {
			if s.Spec.ServiceName != svc.Name || s.Namespace != svc.Namespace || !subset(svc.Spec.Selector, s.Spec.Template.Labels) {
				continue
			}
			members++
			for i := range s.Spec.Template.Spec.Containers {
				c := &s.Spec.Template.Spec.Containers[i]
				ac, err := loadContainerConfig(t, r, s.Namespace, &s.Spec.Template.Spec, c)
				if err != nil {
					continue // reported by checkWorkloads
				}
				if !ac.Admin.EnableIngestion || adminPort(t, c.Name, ac) != port {
					t.Errorf("%s: api-endpoint port %d is not aggregator %s's ingestion (enable-ingestion %v on admin-addr %q)", what, port, c.Name, ac.Admin.EnableIngestion, ac.Admin.Addr)
				}
				if !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool {
					return int(sp.Port) == port && resolvePort(c, sp.TargetPort) == port
				}) {
					t.Errorf("%s: Service %s has no port %d to the aggregators' admin port", what, svc.Name, port)
				}
			}
		}
		if members == 0 {
			t.Errorf("%s: Service %s selects no StatefulSet that names it as its serviceName", what, svc.Name)
		}
		tier++
	}
	return tier, loopback
}

// serviceNamed finds the Service a pod in namespace ns reaches as host:
// name, name.ns, name.ns.svc or name.ns.svc.cluster.local.
func serviceNamed(ns, host string, r *rendered) *corev1.Service {
	host = strings.TrimSuffix(host, ".")
	for _, suffix := range []string{"." + ns + ".svc.cluster.local", "." + ns + ".svc", "." + ns, ""} {
		if name, ok := strings.CutSuffix(host, suffix); ok && !strings.Contains(name, ".") {
			if s, ok := r.services[name]; ok && s.Namespace == ns {
				return s
			}
		}
	}
	return nil
}

// checkConfigMapsLoad runs the built binary's `garner --check-config
// --config-path <file>` on every garner config of every ConfigMap alone,
// with no GARNER_* variable set: each must print "ok" and exit 0.
func checkConfigMapsLoad(t *testing.T, r *rendered) {
	t.Helper()
	bin := garnertest.Binary(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GARNER_") {
			env = append(env, kv)
		}
	}
	n := 0
	for _, cm := range r.configMaps {
		for name, data := range cm.Data {
			ext := filepath.Ext(name)
			if ext != ".toml" && ext != ".yaml" && ext != ".json" {
				t.Errorf("ConfigMap %s: %s is not a garner config (toml, yaml, json)", cm.Name, name)
				continue
			}
			f := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "--check-config", "--config-path", f)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.HasSuffix(string(out), "ok\n") {
				t.Errorf("ConfigMap %s, %s: garner --check-config: %v\n%s", cm.Name, name, err, out)
			}
			n++
		}
	}
	if n == 0 {
		t.Error("no garner config in any ConfigMap")
	}
}

// TestPrometheusScrapeExample: Prometheus accepts the example scrape
// config, and it keeps the admin ports the manifests name. Debian's
// Prometheus is built without Kubernetes service discovery, so promtool
// checks a copy whose kubernetes_sd_configs is a static target: everything
// else (relabelling, paths) is checked as written.
func TestPrometheusScrapeExample(t *testing.T) {
	promtool := requireTool(t, "promtool")
	b, err := os.ReadFile(filepath.Join("kubernetes", "prometheus-scrape.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const sd = "    kubernetes_sd_configs:\n      - role: pod\n"
	if !strings.Contains(string(b), sd) {
		t.Fatalf("the scrape example does not discover pods with %q", sd)
	}
	if !strings.Contains(string(b), "regex: admin|admin-uds") {
		t.Error("the scrape example does not keep the admin and admin-uds ports of agent-daemonset.yaml")
	}
	f := filepath.Join(t.TempDir(), "prometheus.yaml")
	static := strings.Replace(string(b), sd, "    static_configs:\n      - targets: [\"127.0.0.1:8126\"]\n", 1)
	if err := os.WriteFile(f, []byte(static), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "config", "--syntax-only", f).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}
