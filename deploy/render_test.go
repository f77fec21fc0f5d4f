package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/garner-metrics/garner/config"
)

// requireTool returns the path of an external program, skipping the test
// when it is missing, except under CI=true, where a missing tool fails.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI=true: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// rendered is every object of one kustomize build, decoded into the real
// Kubernetes API types.
type rendered struct {
	kinds        map[string]int
	namespaces   []*corev1.Namespace
	configMaps   map[string]*corev1.ConfigMap // by name
	services     map[string]*corev1.Service   // by name
	statefulSets []*appsv1.StatefulSet
	daemonSets   []*appsv1.DaemonSet
	pdbs         []*policyv1.PodDisruptionBudget
}

// render runs `kubectl kustomize dir` and decodes every object strictly:
// unknown or duplicated fields and unexpected kinds fail the test.
func render(t *testing.T, kubectl, dir string) *rendered {
	t.Helper()
	cmd := exec.Command(kubectl, "kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	r := &rendered{
		kinds:      map[string]int{},
		configMaps: map[string]*corev1.ConfigMap{},
		services:   map[string]*corev1.Service{},
	}
	for i, doc := range splitYAML(out) {
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			t.Fatalf("%s: object %d is not valid YAML: %v", dir, i, err)
		}
		var tm metav1.TypeMeta
		if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
			t.Fatalf("%s: object %d: %v", dir, i, err)
		}
		var obj any
		register := func() {}
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			o := &corev1.Namespace{}
			r.namespaces, obj = append(r.namespaces, o), o
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			obj, register = o, func() { r.configMaps[o.Name] = o }
		case "v1 Service":
			o := &corev1.Service{}
			obj, register = o, func() { r.services[o.Name] = o }
		case "apps/v1 StatefulSet":
			o := &appsv1.StatefulSet{}
			r.statefulSets, obj = append(r.statefulSets, o), o
		case "apps/v1 DaemonSet":
			o := &appsv1.DaemonSet{}
			r.daemonSets, obj = append(r.daemonSets, o), o
		case "policy/v1 PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			r.pdbs, obj = append(r.pdbs, o), o
		default:
			t.Fatalf("%s: object %d has an unexpected kind %q %q (add it to render)", dir, i, tm.APIVersion, tm.Kind)
		}
		strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
		if err != nil {
			t.Fatalf("%s: %s %d does not decode: %v", dir, tm.Kind, i, err)
		}
		if len(strict) > 0 {
			t.Fatalf("%s: %s %d is not strictly valid: %v", dir, tm.Kind, i, strict)
		}
		register()
		r.kinds[tm.Kind]++
	}
	return r
}

// splitYAML splits a multi-document YAML stream on "---" lines.
func splitYAML(b []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	flush := func() {
		if len(bytes.TrimSpace(cur.Bytes())) > 0 {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
		}
		cur.Reset()
	}
	for sc.Scan() {
		if strings.TrimRight(sc.Text(), " ") == "---" {
			flush()
			continue
		}
		cur.Write(sc.Bytes())
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

// imageEnv is the environment the garner image sets (ENV lines of the
// repository's Dockerfile), which a pod's env overrides.
func imageEnv(t *testing.T) [][2]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var env [][2]string
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ENV ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("Dockerfile: cannot read %q (want ENV K=V)", line)
			}
			env = append(env, [2]string{k, v})
		}
	}
	return env
}

// fakePod supplies the downward API values of the pod a container runs in.
var fakePod = map[string]string{
	"metadata.name":           "garner-pod-0",
	"spec.nodeName":           "node-a",
	"status.podIP":            "10.1.2.3",
	"spec.serviceAccountName": "default",
}

var envRef = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// containerEnv resolves a container's environment as the kubelet does:
// the image's, then the container's in order, downward API fields filled
// from fakePod, $(VAR) expanded from variables defined before it.
func containerEnv(t *testing.T, ns string, c *corev1.Container, image [][2]string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, kv := range image {
		env[kv[0]] = kv[1]
	}
	defined := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
			v = envRef.ReplaceAllStringFunc(v, func(m string) string {
				if m == "$$" {
					return "$"
				}
				name := m[2 : len(m)-1]
				if x, ok := defined[name]; ok {
					return x
				}
				return m
			})
		case e.ValueFrom.FieldRef != nil:
			p := e.ValueFrom.FieldRef.FieldPath
			if p == "metadata.namespace" {
				v = ns
			} else if x, ok := fakePod[p]; ok {
				v = x
			} else {
				t.Fatalf("container %s: env %s: fieldRef %q unknown to this test", c.Name, e.Name, p)
			}
		default:
			t.Fatalf("container %s: env %s: only value and fieldRef are understood by this test", c.Name, e.Name)
		}
		defined[e.Name] = v
		env[e.Name] = v
	}
	return env
}

// loadContainerConfig loads garner's configuration the way container c of
// pod spec ps starts it: its args (the image's entrypoint is garner), the
// image's and the container's environment, and its ConfigMap volumes
// written under a temporary directory in place of their mount paths.
func loadContainerConfig(t *testing.T, r *rendered, ns string, ps *corev1.PodSpec, c *corev1.Container) (*config.Config, error) {
	t.Helper()
	if len(c.Command) != 0 {
		t.Fatalf("container %s: command %q replaces the image's garner entrypoint", c.Name, c.Command)
	}
	root := t.TempDir()
	args := append([]string(nil), c.Args...)
	for _, m := range c.VolumeMounts {
		cm := configMapOf(ps, m.Name)
		if cm == "" {
			continue
		}
		obj, ok := r.configMaps[cm]
		if !ok {
			t.Fatalf("container %s mounts ConfigMap %q, which is not rendered", c.Name, cm)
		}
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range obj.Data {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, m.MountPath+"/", dir+"/")
		}
	}
	restore := setGarnerEnv(t, containerEnv(t, ns, c, imageEnv(t)))
	defer restore()
	return config.Load(args)
}

// configMapOf names the ConfigMap behind volume name, or "".
func configMapOf(ps *corev1.PodSpec, name string) string {
	for _, v := range ps.Volumes {
		if v.Name == name && v.ConfigMap != nil {
			return v.ConfigMap.Name
		}
	}
	return ""
}

// setGarnerEnv replaces every GARNER_* variable of the test process with
// those of env and returns what puts the old ones back. config.Load reads
// the process environment; tests of this package do not run in parallel.
func setGarnerEnv(t *testing.T, env map[string]string) (restore func()) {
	t.Helper()
	old := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GARNER_") {
			old[k] = v
			_ = os.Unsetenv(k)
		}
	}
	var set []string
	for k, v := range env {
		if err := os.Setenv(k, v); err != nil {
			t.Fatal(err)
		}
		set = append(set, k)
	}
	return func() {
		for _, k := range set {
			_ = os.Unsetenv(k)
		}
		for k, v := range old {
			_ = os.Setenv(k, v)
		}
	}
}

func describe(kind, name, container string) string {
	return fmt.Sprintf("%s/%s container %s", kind, name, container)
}
