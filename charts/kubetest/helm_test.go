package kubetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// releaseName is the release every test installs (one per namespace).
const releaseName = "weft"

// restrictedLabels make a namespace enforce, audit and warn on the
// restricted Pod Security Standard, as a hardened production namespace does.
var restrictedLabels = map[string]string{
	"pod-security.kubernetes.io/enforce":         "restricted",
	"pod-security.kubernetes.io/enforce-version": "latest",
	"pod-security.kubernetes.io/audit":           "restricted",
	"pod-security.kubernetes.io/audit-version":   "latest",
	"pod-security.kubernetes.io/warn":            "restricted",
	"pod-security.kubernetes.io/warn-version":    "latest",
}

var nsSeq atomic.Int64

// restrictedNamespace creates a fresh namespace labelled to enforce the
// restricted Pod Security Standard, with the "default" ServiceAccount that
// kube-controller-manager would have made (there is none here).
func restrictedNamespace(t *testing.T, c *cluster, hint string) string {
	t.Helper()
	name := dnsLabel(fmt.Sprintf("%s-%d", hint, nsSeq.Add(1)))
	ensureNamespace(t, c, name)
	return name
}

// ensureNamespace creates namespace name, restricted, unless it exists.
func ensureNamespace(t *testing.T, c *cluster, name string) {
	t.Helper()
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: restrictedLabels}}
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		return
	} else if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := c.client.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create default service account in %s: %v", name, err)
	}
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

func dnsLabel(s string) string {
	s = strings.Trim(notDNS.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 63 {
		s = strings.Trim(s[len(s)-63:], "-")
	}
	return s
}

// helmConfig is Helm's action configuration for namespace ns, talking to
// the cluster as the admin through a kubeconfig, releases stored as Secrets
// (Helm's default driver).
// otherNamespaces renders the chart (client-side, as `helm template` does,
// with a configuration of its own so that the server's capabilities are not
// replaced by the render's) and creates every namespace other than ns that
// its objects name, as a cluster would already have them (the dashboards'
// namespace, for one).
func otherNamespaces(t *testing.T, c *cluster, ch *chartv2.Chart, vals map[string]any, ns string) {
	t.Helper()
	in := newInstall(helmConfig(t, c, ns), ns)
	in.DryRunStrategy = action.DryRunClient
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	in.KubeVersion = kv
	rel := asRelease(t)(in.RunWithContext(t.Context(), ch, vals))
	for _, o := range manifestObjects(t, rel.Manifest) {
		if other := o.GetNamespace(); other != "" && other != ns {
			ensureNamespace(t, c, other)
		}
	}
}

func helmConfig(t *testing.T, c *cluster, ns string) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &c.kubeconfig
	flags.Namespace = &ns
	cache := filepath.Join(c.dir, "kubecache")
	flags.CacheDir = &cache
	flags.WrapConfigFn = func(cfg *rest.Config) *rest.Config {
		cfg.WarningHandler = c.warnings
		return cfg
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(
		slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		t.Fatalf("helm configuration: %v", err)
	}
	return cfg
}

func loadChart(t *testing.T, dir string) *chartv2.Chart {
	t.Helper()
	ch, err := loader.Load(dir)
	if err != nil {
		t.Fatalf("load chart %s: %v", dir, err)
	}
	return ch
}

func loadValues(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal(b, &vals); err != nil {
		t.Fatalf("values %s: %v", file, err)
	}
	return vals
}

// merge returns base with over laid on top, maps merged key by key.
func merge(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range over {
		if om, ok := v.(map[string]any); ok {
			if bm, ok := out[k].(map[string]any); ok {
				out[k] = merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// newInstall is `helm install` as the tier runs it: server-side apply
// (Helm v4's default, named here because the tier is about it), whose
// requests carry fieldValidation=Strict (Helm v4's default for both create
// and update), and no hooks: hooks are Jobs and Pods that need a kubelet to
// finish, so Helm would wait on them forever; the tests dry-run each hook
// object instead (dryRunApply).
func newInstall(cfg *action.Configuration, ns string) *action.Install {
	in := action.NewInstall(cfg)
	in.ReleaseName = releaseName
	in.Namespace = ns
	in.ServerSideApply = true
	in.DisableHooks = true
	in.WaitStrategy = kube.HookOnlyStrategy
	in.Timeout = time.Minute
	return in
}

func newUpgrade(cfg *action.Configuration, ns string) *action.Upgrade {
	up := action.NewUpgrade(cfg)
	up.Namespace = ns
	up.ServerSideApply = "true"
	up.DisableHooks = true
	up.WaitStrategy = kube.HookOnlyStrategy
	up.Timeout = time.Minute
	return up
}

// asRelease checks a Helm action's result: asRelease(t)(in.Run(...)).
func asRelease(t *testing.T) func(any, error) *release.Release {
	return func(r any, err error) *release.Release {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		rel, ok := r.(*release.Release)
		if !ok {
			t.Fatalf("helm returned a %T, not a v1 release", r)
		}
		return rel
	}
}

// manifestObjects parses a release's manifest into its objects.
func manifestObjects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for name, doc := range releaseutil.SplitManifests(manifest) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("manifest %s: %v", name, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

// apis maps kinds to resources and reads or dry-runs any object.
type apis struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newAPIs(t *testing.T, c *cluster) *apis {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(c.config)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.config)
	if err != nil {
		t.Fatal(err)
	}
	return &apis{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

func (a *apis) resource(u *unstructured.Unstructured, ns string) (dynamic.ResourceInterface, error) {
	if u.GetNamespace() != "" {
		ns = u.GetNamespace()
	}
	gvk := u.GroupVersionKind()
	m, err := a.mapper.RESTMapping(schema.GroupKind{Group: gvk.Group, Kind: gvk.Kind}, gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gvk, err)
	}
	if m.Scope.Name() == "namespace" {
		return a.dyn.Resource(m.Resource).Namespace(ns), nil
	}
	return a.dyn.Resource(m.Resource), nil
}

// get reads back the stored copy of u.
func (a *apis) get(ctx context.Context, u *unstructured.Unstructured, ns string) (*unstructured.Unstructured, error) {
	r, err := a.resource(u, ns)
	if err != nil {
		return nil, err
	}
	return r.Get(ctx, u.GetName(), metav1.GetOptions{})
}

// dryRunApply server-side applies u with dryRun=All and the given field
// validation: the API server decodes, validates and admits it (PodSecurity
// included) and stores nothing.
func (a *apis) dryRunApply(ctx context.Context, u *unstructured.Unstructured, ns, fieldValidation string) error {
	r, err := a.resource(u, ns)
	if err != nil {
		return err
	}
	body, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	_, err = r.Patch(ctx, u.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{
		DryRun:          []string{metav1.DryRunAll},
		Force:           &force,
		FieldManager:    "weft-kubetest",
		FieldValidation: fieldValidation,
	})
	return err
}

// dryRunCreate creates u with dryRun=All and the given field validation
// (a plain create: server-side apply refuses unknown fields whatever the
// directive says).
func (a *apis) dryRunCreate(ctx context.Context, u *unstructured.Unstructured, ns, fieldValidation string) error {
	r, err := a.resource(u, ns)
	if err != nil {
		return err
	}
	_, err = r.Create(ctx, u, metav1.CreateOptions{
		DryRun:          []string{metav1.DryRunAll},
		FieldManager:    "weft-kubetest",
		FieldValidation: fieldValidation,
	})
	return err
}

// dryRunPod creates pod with dryRun=All and strict field validation, which
// is how the tier makes the API server judge a pod no kubelet will run.
func dryRunPod(ctx context.Context, c *cluster, pod *corev1.Pod) error {
	_, err := c.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{
		DryRun:          []string{metav1.DryRunAll},
		FieldValidation: metav1.FieldValidationStrict,
	})
	return err
}

func yamlToJSON(t *testing.T, doc string) []byte {
	t.Helper()
	b, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// strictUnmarshal decodes a manifest into a typed object, refusing unknown
// and duplicate fields (case typos included).
func strictUnmarshal(doc string, into any) error {
	j, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return err
	}
	if errs, err := sigsjson.UnmarshalStrict(j, into); err != nil {
		return err
	} else if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func toUnstructured(t *testing.T, obj any) map[string]any {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
