package kubetest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// chartDir is the chart the tier installs, relative to this module.
const chartDir = "../weft"

// configChange is the upgrade's change to weft's configuration: it must
// reach the ConfigMap and so the pod template's checksum/config annotation,
// which is what rolls the pods.
var configChange = map[string]any{"config": map[string]any{"log": map[string]any{"level": "debug"}}}

// chartUnderTest returns the chart directory and its CI values files.
func chartUnderTest(t *testing.T) (string, []string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(chartDir, "Chart.yaml")); err != nil {
		t.Fatalf("the chart: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in %s/ci", chartDir)
	}
	return chartDir, files
}

// TestInstallUpgradeRestricted installs the chart with each CI values file
// into its own restricted namespace, then upgrades it with a configuration
// change, and checks what the API server stored and that it admits every
// pod the chart would run.
func TestInstallUpgradeRestricted(t *testing.T) {
	c := apiServer(t)
	dir, files := chartUnderTest(t)
	ch := loadChart(t, dir)
	var testHooks, withJob, withoutJob int
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			ns := restrictedNamespace(t, c, "ci-"+name)
			cfg := helmConfig(t, c, ns)
			a := newAPIs(t, c)
			vals := loadValues(t, file)
			otherNamespaces(t, c, ch, vals, ns)

			rel := asRelease(t)(newInstall(cfg, ns).RunWithContext(ctx, ch, vals))
			checkRelease(t, rel, 1)
			noPodSecurityWarnings(t, c)
			checkStored(t, ctx, a, rel, ns)
			admitPods(t, ctx, c, a, rel, ns)
			before := configChecksums(t, ctx, c, ns)

			up := asRelease(t)(newUpgrade(cfg, ns).RunWithContext(ctx, releaseName, ch, merge(vals, configChange)))
			checkRelease(t, up, 2)
			noPodSecurityWarnings(t, c)
			checkStored(t, ctx, a, up, ns)
			admitPods(t, ctx, c, a, up, ns)
			after := configChecksums(t, ctx, c, ns)
			for w, sum := range before {
				if after[w] == sum {
					t.Errorf("%s: checksum/config %s unchanged by a configuration change", w, sum)
				} else {
					t.Logf("%s: checksum/config %.12s… → %.12s…", w, sum, after[w])
				}
			}
			checkReleaseSecrets(t, ctx, c, ns, map[string]string{"1": "superseded", "2": "deployed"})
			testHooks += countTestHooks(up)
			if checkMigrateMode(t, ctx, c, up, ns) {
				withJob++
			} else {
				withoutJob++
			}
		})
	}
	if testHooks == 0 {
		t.Error("no values file renders a helm test hook")
	}
	if withJob == 0 || withoutJob == 0 {
		t.Errorf("values files with the migration Job: %d, without: %d; want both", withJob, withoutJob)
	}
}

func countTestHooks(rel *release.Release) int {
	n := 0
	for _, h := range rel.Hooks {
		if slices.Contains(h.Events, release.HookTest) {
			n++
		}
	}
	return n
}

func checkRelease(t *testing.T, rel *release.Release, version int) {
	t.Helper()
	if rel.Version != version || rel.Info.Status != rcommon.StatusDeployed {
		t.Fatalf("release %s revision %d status %s, want revision %d deployed", rel.Name, rel.Version, rel.Info.Status, version)
	}
	if rel.ApplyMethod != string(release.ApplyMethodServerSideApply) {
		t.Errorf("release applied with %q, want server-side apply", rel.ApplyMethod)
	}
}

// noPodSecurityWarnings fails on a "would violate PodSecurity" warning: in
// warn mode the API server checks every workload's pod template when it is
// written (TestPodSecurityRefusesWeakenedPod shows it does).
func noPodSecurityWarnings(t *testing.T, c *cluster) {
	t.Helper()
	for _, w := range c.warnings.take() {
		if strings.Contains(w, "PodSecurity") {
			t.Errorf("API server warning: %s", w)
		}
	}
}

// checkStored reads back every object of the release's manifest: stored,
// labelled and annotated as Helm's, written by Helm's server-side apply, and
// every pod template hardened.
func checkStored(t *testing.T, ctx context.Context, a *apis, rel *release.Release, ns string) {
	t.Helper()
	objs := manifestObjects(t, rel.Manifest)
	if len(objs) == 0 {
		t.Fatal("empty release manifest")
	}
	kinds := map[string]int{}
	for _, want := range objs {
		kinds[want.GetKind()]++
		id := want.GetKind() + " " + want.GetName()
		got, err := a.get(ctx, want, ns)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		if v := got.GetLabels()["app.kubernetes.io/managed-by"]; v != "Helm" {
			t.Errorf("%s: label app.kubernetes.io/managed-by=%q, want Helm", id, v)
		}
		if v := got.GetAnnotations()["meta.helm.sh/release-name"]; v != rel.Name {
			t.Errorf("%s: annotation meta.helm.sh/release-name=%q, want %q", id, v, rel.Name)
		}
		if !slices.ContainsFunc(got.GetManagedFields(), func(f metav1.ManagedFieldsEntry) bool {
			return f.Manager == fieldManager && f.Operation == metav1.ManagedFieldsOperationApply
		}) {
			t.Errorf("%s: no server-side apply by %q in managedFields", id, fieldManager)
		}
		if w, ok, err := templateOf(got); err != nil {
			t.Error(err)
		} else if ok {
			checkHardened(t, id, &w.template.Spec)
		}
	}
	t.Logf("revision %d: %d objects stored, applied server-side by %s: %v", rel.Version, len(objs), fieldManager, kinds)
}

// checkHardened asserts the hardened security context issue 17 asks of the chart:
// non-root, RuntimeDefault seccomp, and per container a read-only root
// filesystem, no privilege escalation and every capability dropped.
func checkHardened(t *testing.T, id string, spec *corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	containers := append(slices.Clone(spec.InitContainers), spec.Containers...)
	for _, ctr := range containers {
		sc := ctr.SecurityContext
		if sc == nil {
			t.Errorf("%s container %s: no securityContext", id, ctr.Name)
			continue
		}
		if !isTrue(sc.RunAsNonRoot) && !isTrue(psc.RunAsNonRoot) {
			t.Errorf("%s container %s: runAsNonRoot not set", id, ctr.Name)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s container %s: seccomp profile %v, want RuntimeDefault", id, ctr.Name, seccomp)
		}
		if !isTrue(sc.ReadOnlyRootFilesystem) {
			t.Errorf("%s container %s: root filesystem not read-only", id, ctr.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s container %s: privilege escalation not disabled", id, ctr.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s container %s: capabilities not all dropped", id, ctr.Name)
		}
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

// admitPods has the API server judge every pod the release would run: each
// stored workload's pod, and each hook (the helm test pod among them) with
// the pods it would make, all with dryRun=All, so that PodSecurity enforces
// on them as it would when a kubelet-backed cluster creates them.
func admitPods(t *testing.T, ctx context.Context, c *cluster, a *apis, rel *release.Release, ns string) {
	t.Helper()
	ws, err := storedWorkloads(ctx, c, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) == 0 {
		t.Fatal("the release stored no workload")
	}
	for _, w := range ws {
		if err := dryRunPod(ctx, c, w.pod(ns)); err != nil {
			t.Errorf("%s %s: its pod is refused: %v", w.kind, w.name, err)
		} else {
			t.Logf("%s %s: its pod is admitted (dryRun=All)", w.kind, w.name)
		}
	}
	for _, h := range rel.Hooks {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(yamlToJSON(t, h.Manifest)); err != nil {
			t.Fatalf("hook %s: %v", h.Path, err)
		}
		if err := a.dryRunApply(ctx, u, ns, metav1.FieldValidationStrict); err != nil {
			t.Errorf("hook %s %s (%s): refused: %v", h.Kind, h.Name, h.Path, err)
		}
		if w, ok, err := templateOf(u); err != nil {
			t.Error(err)
		} else if ok {
			checkHardened(t, "hook "+h.Kind+" "+h.Name, &w.template.Spec)
			if err := dryRunPod(ctx, c, w.pod(ns)); err != nil {
				t.Errorf("hook %s %s: its pod is refused: %v", h.Kind, h.Name, err)
			}
		}
		t.Logf("hook %s %s (%v): applied with dryRun=All, admitted", h.Kind, h.Name, h.Events)
		if h.Kind == "Pod" {
			var p corev1.Pod
			if err := strictUnmarshal(h.Manifest, &p); err != nil {
				t.Errorf("hook %s: %v", h.Path, err)
				continue
			}
			checkHardened(t, "hook Pod "+h.Name, &p.Spec)
		}
	}
}

// configChecksums maps each stored workload to its pod template's
// checksum/config annotation; at least one must have it.
func configChecksums(t *testing.T, ctx context.Context, c *cluster, ns string) map[string]string {
	t.Helper()
	ws, err := storedWorkloads(ctx, c, ns)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, w := range ws {
		if s := w.template.Annotations["checksum/config"]; s != "" {
			sums[w.kind+" "+w.name] = s
		}
	}
	if len(sums) == 0 {
		t.Fatal("no workload's pod template has a checksum/config annotation")
	}
	return sums
}

// checkReleaseSecrets checks the release history Helm stored as Secrets:
// revision → status.
func checkReleaseSecrets(t *testing.T, ctx context.Context, c *cluster, ns string, want map[string]string) {
	t.Helper()
	list, err := c.client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + releaseName})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range list.Items {
		if s.Type != "helm.sh/release.v1" {
			t.Errorf("secret %s has type %s", s.Name, s.Type)
		}
		got[s.Labels["version"]] = s.Labels["status"]
	}
	for v, st := range want {
		if got[v] != st {
			t.Errorf("release secret revision %s: status %q, want %q (all: %v)", v, got[v], st, got)
		}
	}
}

// TestPodSecurityRefusesWeakenedPod shows the admission the tier relies on
// is live: the chart's own pod is admitted, the same pod with any one
// protection removed is refused, and a Deployment with the weakened
// template draws a warn-mode warning.
func TestPodSecurityRefusesWeakenedPod(t *testing.T) {
	c := apiServer(t)
	dir, _ := chartUnderTest(t)
	ctx := t.Context()
	ns := restrictedNamespace(t, c, "weakened")
	cfg := helmConfig(t, c, ns)
	asRelease(t)(newInstall(cfg, ns).RunWithContext(ctx, loadChart(t, dir), nil))
	ws, err := storedWorkloads(ctx, c, ns)
	if err != nil || len(ws) == 0 {
		t.Fatalf("stored workloads: %v (%d)", err, len(ws))
	}
	base := ws[0].pod(ns)
	if err := dryRunPod(ctx, c, base); err != nil {
		t.Fatalf("the chart's own pod is refused: %v", err)
	}

	yes, root := true, int64(0)
	eachContainer := func(p *corev1.Pod, f func(*corev1.SecurityContext)) {
		for i := range p.Spec.Containers {
			if p.Spec.Containers[i].SecurityContext == nil {
				p.Spec.Containers[i].SecurityContext = &corev1.SecurityContext{}
			}
			f(p.Spec.Containers[i].SecurityContext)
		}
	}
	podSC := func(p *corev1.Pod) *corev1.PodSecurityContext {
		if p.Spec.SecurityContext == nil {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{}
		}
		return p.Spec.SecurityContext
	}
	cases := []struct {
		name   string
		weaken func(*corev1.Pod)
		reason string // in PodSecurity's refusal
	}{
		{"runAsNonRoot removed", func(p *corev1.Pod) {
			podSC(p).RunAsNonRoot = nil
			eachContainer(p, func(sc *corev1.SecurityContext) { sc.RunAsNonRoot = nil })
		}, "runAsNonRoot != true"},
		{"runs as root", func(p *corev1.Pod) {
			eachContainer(p, func(sc *corev1.SecurityContext) { sc.RunAsUser = &root })
		}, "runAsUser=0"},
		{"privilege escalation allowed", func(p *corev1.Pod) {
			eachContainer(p, func(sc *corev1.SecurityContext) { sc.AllowPrivilegeEscalation = &yes })
		}, "allowPrivilegeEscalation != false"},
		{"capabilities kept", func(p *corev1.Pod) {
			eachContainer(p, func(sc *corev1.SecurityContext) { sc.Capabilities = nil })
		}, "unrestricted capabilities"},
		{"seccomp unset", func(p *corev1.Pod) {
			podSC(p).SeccompProfile = nil
			eachContainer(p, func(sc *corev1.SecurityContext) { sc.SeccompProfile = nil })
		}, "seccompProfile"},
		{"privileged", func(p *corev1.Pod) {
			eachContainer(p, func(sc *corev1.SecurityContext) { sc.Privileged = &yes; sc.AllowPrivilegeEscalation = nil })
		}, "privileged"},
		{"host network", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, "host namespaces"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base.DeepCopy()
			tc.weaken(p)
			err := dryRunPod(ctx, c, p)
			if !apierrors.IsForbidden(err) {
				t.Fatalf("weakened pod: got %v, want PodSecurity's refusal", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, `violates PodSecurity "restricted:latest"`) || !strings.Contains(msg, tc.reason) {
				t.Errorf("refusal %q does not name %q", msg, tc.reason)
			}
			t.Log(msg)
		})
	}

	t.Run("warn mode on workloads", func(t *testing.T) {
		p := base.DeepCopy()
		cases[0].weaken(p)
		dep := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1",
			"kind":       "Deployment",
			"metadata":   map[string]any{"name": "weakened"},
			"spec": map[string]any{
				"selector": map[string]any{"matchLabels": toAny(p.Labels)},
				"template": map[string]any{
					"metadata": map[string]any{"labels": toAny(p.Labels)},
					"spec":     toUnstructured(t, &p.Spec),
				},
			},
		}}
		c.warnings.take()
		if err := newAPIs(t, c).dryRunApply(ctx, dep, ns, metav1.FieldValidationStrict); err != nil {
			t.Fatalf("a Deployment is admitted whatever its template (warn mode only): %v", err)
		}
		warned := slices.ContainsFunc(c.warnings.take(), func(w string) bool {
			return strings.Contains(w, `would violate PodSecurity "restricted:latest"`) && strings.Contains(w, "runAsNonRoot != true")
		})
		if !warned {
			t.Error("no PodSecurity warning for a Deployment with a weakened pod template")
		}
	})
}

// TestStrictFieldValidation shows that the API server refuses an unknown
// field: on create under fieldValidation=Strict (and not under Ignore), on
// server-side apply always, and through Helm's install, whose own
// client-side check is turned off so that the refusal is the server's.
func TestStrictFieldValidation(t *testing.T) {
	c := apiServer(t)
	ctx := t.Context()
	ns := restrictedNamespace(t, c, "strict")
	a := newAPIs(t, c)

	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion":  "v1",
		"kind":        "ConfigMap",
		"metadata":    map[string]any{"name": "typo"},
		"data":        map[string]any{"weft.yaml": "log_level: info\n"},
		"binaryDatta": map[string]any{"key": "AAAA"},
	}}
	err := a.dryRunCreate(ctx, cm, ns, metav1.FieldValidationStrict)
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "binaryDatta"`) {
		t.Errorf("create with an unknown field under Strict: got %v, want a BadRequest naming it", err)
	}
	if err := a.dryRunCreate(ctx, cm, ns, metav1.FieldValidationIgnore); err != nil {
		t.Errorf("the same create under Ignore: %v (the refusal above must be the strict check's)", err)
	}
	// Server-side apply, which Helm v4 uses, has no lenient mode: the
	// object must match the schema.
	if err := a.dryRunApply(ctx, cm, ns, metav1.FieldValidationStrict); err == nil || !strings.Contains(err.Error(), "binaryDatta") {
		t.Errorf("apply with an unknown field: got %v, want a refusal naming it", err)
	}

	in := newInstall(helmConfig(t, c, ns), ns)
	in.DisableOpenAPIValidation = true
	_, err = in.RunWithContext(ctx, loadChart(t, "testdata/badfield"), nil)
	if err == nil || !strings.Contains(err.Error(), "binaryDatta") {
		t.Errorf("helm install of a manifest with an unknown field: got %v, want the API server's refusal naming it", err)
	}
	_, err = c.client.CoreV1().ConfigMaps(ns).Get(ctx, releaseName+"-config", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the refused ConfigMap: got %v, want NotFound", err)
	}
}
