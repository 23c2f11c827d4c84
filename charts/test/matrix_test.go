package charttest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// TestRenderMatrix renders every ci values file and checks every object:
// strict typed decoding, the standard labels, its namespace; and the
// workload: restricted Pod Security, probes, the instance id, selectors.
func TestRenderMatrix(t *testing.T) {
	for _, file := range ciFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := render(t, readValues(t, file))
			for _, o := range r.Objects {
				v, err := decodeStrict(o)
				if err != nil {
					t.Error(err)
					continue
				}
				meta := objectMeta(v)
				checkLabels(t, o, meta.GetLabels())
				if meta.GetNamespace() == "" {
					t.Errorf("%s %q: no namespace", o.Kind, o.Name)
				}
			}
			sts := mustDecode[appsv1.StatefulSet](t, r.find(t, "StatefulSet", fullname))
			checkWorkload(t, r, sts)
			checkRestricted(t, "StatefulSet "+sts.Name, &sts.Spec.Template.ObjectMeta, &sts.Spec.Template.Spec)
			for _, o := range r.ofKind("Job") {
				job := mustDecode[batchv1.Job](t, o)
				if !o.Hook {
					t.Errorf("Job %q is not a hook", job.Name)
				}
				checkRestricted(t, "Job "+job.Name, &job.Spec.Template.ObjectMeta, &job.Spec.Template.Spec)
			}
			for _, o := range r.ofKind("Pod") {
				pod := mustDecode[corev1.Pod](t, o)
				if !o.Hook || pod.Annotations["helm.sh/hook"] != "test" {
					t.Errorf("Pod %q is not a helm test hook", pod.Name)
				}
				checkRestricted(t, "test Pod "+pod.Name, &pod.ObjectMeta, &pod.Spec)
			}
		})
	}
}

func objectMeta(v any) metav1.Object {
	o, ok := v.(metav1.Object)
	if !ok {
		panic("not an object")
	}
	return o
}

// checkLabels: every object carries the app.kubernetes.io labels
// dashboards, kubectl and policy engines select on.
func checkLabels(t *testing.T, o object, l map[string]string) {
	t.Helper()
	want := map[string]string{
		"app.kubernetes.io/name":       "weft",
		"app.kubernetes.io/instance":   releaseName,
		"app.kubernetes.io/managed-by": "Helm",
		"app.kubernetes.io/part-of":    "weft",
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s %q: label %s=%q, want %q", o.Kind, o.Name, k, l[k], v)
		}
	}
	if l["app.kubernetes.io/version"] == "" || !strings.HasPrefix(l["helm.sh/chart"], "weft-") {
		t.Errorf("%s %q: no version or chart label: %v", o.Kind, o.Name, l)
	}
}

// checkRestricted evaluates a pod with the Pod Security admission's own
// checks at the restricted level, as a namespace labelled
// pod-security.kubernetes.io/enforce=restricted would.
func checkRestricted(t *testing.T, what string, meta *metav1.ObjectMeta, spec *corev1.PodSpec) {
	t.Helper()
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res := policy.AggregateCheckResults(ev.EvaluatePod(psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}, meta, spec))
	if !res.Allowed {
		t.Errorf("%s violates restricted Pod Security: %s: %s", what, res.ForbiddenReason(), res.ForbiddenDetail())
	}
}

// checkWorkload: the weft container's hardening, probes, identity and
// config, and the selectors of the Service and the budget.
func checkWorkload(t *testing.T, r rendered, sts *appsv1.StatefulSet) {
	t.Helper()
	spec := sts.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("containers: %d", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no container securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot,
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem,
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation,
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0,
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("container securityContext not hardened: %+v", sc)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token; weft calls no Kubernetes API")
	}
	// Writable places: every one an emptyDir or a claim, never the image.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	for _, p := range []string{"/tmp", "/var/lib/weft", "/etc/weft/config"} {
		if mounts[p] == "" {
			t.Errorf("nothing mounted at %s", p)
		}
	}
	// The tap's instance id is the pod's name (docs/delivery.md).
	if e := envVar(c, "POD_NAME"); e == nil || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("POD_NAME is not the pod's name from the downward API: %+v", e)
	}
	if !slices.Equal(c.Args[:3], []string{"run", "--config", "/etc/weft/config/weft.yaml"}) {
		t.Errorf("args %v", c.Args)
	}
	// Probes: /healthz and /readyz on the port weft listens on.
	cfg := renderedConfig(t, r)
	listen, _ := dig(cfg, "http", "listen").(string)
	port := listen[strings.LastIndex(listen, ":")+1:]
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || itoa(c.Ports[0].ContainerPort) != port {
		t.Errorf("container ports %+v, want http on %s (http.listen %q)", c.Ports, port, listen)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe: %+v, want GET %s on port http", p.name, p.probe, p.path)
		}
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("no memory request or limit: %+v", c.Resources)
	}
	// Selectors select the pods, and only by the stable selector labels.
	podLabels := labels.Set(sts.Spec.Template.Labels)
	if sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("StatefulSet selector %v does not match its pods %v", sts.Spec.Selector, podLabels)
	}
	if len(sts.Spec.Selector.MatchLabels) != 2 {
		t.Errorf("selector %v: want only name and instance (a selector is immutable; version labels change)", sts.Spec.Selector.MatchLabels)
	}
	if sts.Spec.ServiceName != fullname+"-headless" {
		t.Errorf("serviceName %q", sts.Spec.ServiceName)
	}
	for _, name := range []string{fullname, fullname + "-headless"} {
		svc := mustDecode[corev1.Service](t, r.find(t, "Service", name))
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service %s selector %v does not match the pods", name, svc.Spec.Selector)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" {
			t.Errorf("Service %s ports %+v", name, svc.Spec.Ports)
		}
	}
	pdb := mustDecode[policyv1.PodDisruptionBudget](t, r.find(t, "PodDisruptionBudget", fullname))
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not match the pods", pdb.Spec.Selector)
	}
}

func envVar(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// renderedConfig is the weft.yaml of the chart's ConfigMap, parsed.
func renderedConfig(t *testing.T, r rendered) map[string]any {
	t.Helper()
	cm := mustDecode[corev1.ConfigMap](t, r.find(t, "ConfigMap", fullname))
	raw, ok := cm.Data["weft.yaml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no weft.yaml: %v", cm.Name, cm.Data)
	}
	var cfg map[string]any
	if err := yaml.UnmarshalStrict([]byte(raw), &cfg); err != nil {
		t.Fatalf("weft.yaml: %v", err)
	}
	return cfg
}

// dig returns the value at a path of nested maps, or nil.
func dig(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}
