package charttest

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// migrateName is the migration Job and its hook ConfigMap, Secret and
// NetworkPolicy.
const migrateName = fullname + "-migrate"

// hookOf checks that o is a pre-install/pre-upgrade hook, deleted before
// it is made again and once it succeeded, and returns its weight.
func hookOf(t *testing.T, o object, meta metav1.Object) int {
	t.Helper()
	a := meta.GetAnnotations()
	if !o.Hook || a["helm.sh/hook"] != "pre-install,pre-upgrade" {
		t.Errorf("%s %s: not a pre-install,pre-upgrade hook: %v", o.Kind, o.Name, a)
	}
	if a["helm.sh/hook-delete-policy"] != "before-hook-creation,hook-succeeded" {
		t.Errorf("%s %s: hook-delete-policy %q", o.Kind, o.Name, a["helm.sh/hook-delete-policy"])
	}
	w, err := strconv.Atoi(a["helm.sh/hook-weight"])
	if err != nil {
		t.Errorf("%s %s: hook-weight %q: %v", o.Kind, o.Name, a["helm.sh/hook-weight"], err)
	}
	return w
}

// TestMigrationJob: by default a hook Job runs `weft migrate` once before
// the pods start, with weft's image and hardening, from a hook ConfigMap
// made before it that holds the pods' clickhouse block (and nothing that
// needs other secrets); the pods' config says migrate: external, and the
// Job's pod is selected by none of the pods' Service, budget or policy.
func TestMigrationJob(t *testing.T) {
	r := render(t, nil)
	sts := mustDecode[appsv1.StatefulSet](t, r.find(t, "StatefulSet", fullname))
	jo := r.find(t, "Job", migrateName)
	job := mustDecode[batchv1.Job](t, jo)
	co := r.find(t, "ConfigMap", migrateName)
	cm := mustDecode[corev1.ConfigMap](t, co)
	jw, cw := hookOf(t, jo, job), hookOf(t, co, cm)
	if cw >= jw {
		t.Errorf("ConfigMap weight %d, Job %d: the config must exist before the Job", cw, jw)
	}

	if got := dig(renderedConfig(t, r), "clickhouse", "migrate"); got != "external" {
		t.Errorf("pods' clickhouse.migrate = %v, want external with the Job", got)
	}
	var jobCfg map[string]any
	if err := yaml.UnmarshalStrict([]byte(cm.Data["weft.yaml"]), &jobCfg); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(jobCfg["clickhouse"], renderedConfig(t, r)["clickhouse"]) {
		t.Errorf("the Job's clickhouse block %v differs from the pods' %v", jobCfg["clickhouse"], renderedConfig(t, r)["clickhouse"])
	}
	for k := range jobCfg {
		if k != "log" && k != "clickhouse" {
			t.Errorf("the Job's config has %s: only log and clickhouse (migrate reads nothing else)", k)
		}
	}

	spec := job.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("Job containers: %d", len(spec.Containers))
	}
	c, w := spec.Containers[0], sts.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"migrate", "--config", "/etc/weft/config/weft.yaml"}) || c.Image != w.Image {
		t.Errorf("Job runs %s %v, want weft's image %s with migrate --config", c.Image, c.Args, w.Image)
	}
	if !equality.Semantic.DeepEqual(c.SecurityContext, w.SecurityContext) || !equality.Semantic.DeepEqual(spec.SecurityContext, sts.Spec.Template.Spec.SecurityContext) {
		t.Errorf("Job security context %+v / %+v, want the StatefulSet's", spec.SecurityContext, c.SecurityContext)
	}
	checkRestricted(t, "Job "+job.Name, &job.Spec.Template.ObjectMeta, &spec)
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken || spec.ServiceAccountName != "default" {
		t.Errorf("Job pod: service account %q, token mounted %v; want the namespace's default (the chart's does not exist at pre-install), no token",
			spec.ServiceAccountName, spec.AutomountServiceAccountToken)
	}
	if spec.RestartPolicy != corev1.RestartPolicyNever || job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 4 ||
		job.Spec.ActiveDeadlineSeconds == nil || *job.Spec.ActiveDeadlineSeconds != 300 {
		t.Errorf("Job restartPolicy %s backoffLimit %v activeDeadlineSeconds %v", spec.RestartPolicy, job.Spec.BackoffLimit, job.Spec.ActiveDeadlineSeconds)
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Errorf("Job: no memory limit: %+v", c.Resources)
	}
	vol := func(name string) *corev1.Volume {
		for i := range spec.Volumes {
			if spec.Volumes[i].Name == name {
				return &spec.Volumes[i]
			}
		}
		return nil
	}
	if v := vol("config"); v == nil || v.ConfigMap == nil || v.ConfigMap.Name != migrateName {
		t.Errorf("Job config volume %+v, want ConfigMap %s (the release's does not exist at pre-install)", v, migrateName)
	}

	pod := labels.Set(job.Spec.Template.Labels)
	svc := mustDecode[corev1.Service](t, r.find(t, "Service", fullname))
	pdb := mustDecode[policyv1.PodDisruptionBudget](t, r.find(t, "PodDisruptionBudget", fullname))
	if labels.SelectorFromSet(svc.Spec.Selector).Matches(pod) || labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(pod) {
		t.Errorf("the Job's pod %v is selected by weft's Service or PodDisruptionBudget", pod)
	}
	if pod["app.kubernetes.io/instance"] != releaseName || pod["app.kubernetes.io/component"] != "migrate" {
		t.Errorf("Job pod labels %v", pod)
	}
}

// TestMigrationJobSecrets: the Job reads ClickHouse's password and no
// other: from the user's Secret, or, for a password given as a value, from
// a hook Secret of its own made before it (the release's does not exist
// at pre-install). A NetworkPolicy of its own lets it reach DNS and
// ClickHouse only.
func TestMigrationJobSecrets(t *testing.T) {
	env := func(r rendered) []corev1.EnvVar {
		return mustDecode[batchv1.Job](t, r.find(t, "Job", migrateName)).Spec.Template.Spec.Containers[0].Env
	}
	names := func(es []corev1.EnvVar) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}

	q := render(t, readValues(t, filepath.Join(chartDir, "ci", "quickstart-values.yaml")))
	so := q.find(t, "Secret", migrateName)
	sec := mustDecode[corev1.Secret](t, so)
	if sw, jw := hookOf(t, so, sec), hookOf(t, q.find(t, "Job", migrateName), mustDecode[batchv1.Job](t, q.find(t, "Job", migrateName))); sw >= jw {
		t.Errorf("Secret weight %d, Job %d: the secret must exist before the Job", sw, jw)
	}
	if len(sec.Data) != 1 || string(sec.Data["clickhouse-password"]) != "quickstart-clickhouse-password" {
		t.Errorf("hook Secret data %v, want only clickhouse-password", sec.Data)
	}
	es := env(q)
	if len(es) != 1 || es[0].Name != "WEFT_CLICKHOUSE_PASSWORD" || es[0].ValueFrom.SecretKeyRef.Name != migrateName || es[0].ValueFrom.SecretKeyRef.Key != "clickhouse-password" {
		t.Errorf("Job env %+v, want WEFT_CLICKHOUSE_PASSWORD from %s/clickhouse-password", es, migrateName)
	}

	p := render(t, readValues(t, filepath.Join(chartDir, "ci", "production-values.yaml")))
	if _, ok := p.lookup("Secret", migrateName); ok {
		t.Error("a hook Secret with every secret an existing one")
	}
	es = env(p)
	ch := slices.IndexFunc(es, func(e corev1.EnvVar) bool { return e.Name == "WEFT_CLICKHOUSE_PASSWORD" })
	if ch < 0 || es[ch].ValueFrom.SecretKeyRef.Name != "weft-clickhouse" || slices.Contains(names(es), "WEFT_KAFKA_SASL_PASSWORD") {
		t.Errorf("Job env %v: want WEFT_CLICKHOUSE_PASSWORD from weft-clickhouse, no Kafka password", names(es))
	}
	job := mustDecode[batchv1.Job](t, p.find(t, "Job", migrateName))
	if !slices.ContainsFunc(job.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "kafka-ca" }) {
		t.Error("extraVolumes not mounted in the Job (a ClickHouse CA may live there)")
	}
	no := p.find(t, "NetworkPolicy", migrateName)
	np := mustDecode[networkingv1.NetworkPolicy](t, no)
	if w, jw := hookOf(t, no, np), hookOf(t, p.find(t, "Job", migrateName), job); w >= jw {
		t.Errorf("NetworkPolicy weight %d: want it before the Job", w)
	}
	if !labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels).Matches(labels.Set(job.Spec.Template.Labels)) {
		t.Errorf("the Job's NetworkPolicy does not select its pod")
	}
	var ports []string
	for _, e := range np.Spec.Egress {
		for _, p := range e.Ports {
			ports = append(ports, p.Port.String())
		}
	}
	if !slices.Contains(ports, "53") || !slices.Contains(ports, "9440") || slices.Contains(ports, "9093") || len(np.Spec.Ingress) != 0 {
		t.Errorf("the Job's NetworkPolicy: egress ports %v, ingress %v; want DNS and ClickHouse only, no ingress", ports, np.Spec.Ingress)
	}
}

// TestMigrationJobDisabled: without the Job no hook but the test pod, and
// each pod migrates at start (startup), unless config says external.
func TestMigrationJobDisabled(t *testing.T) {
	r := render(t, valuesYAML(t, "migrations: {job: {enabled: false}}"))
	for _, o := range r.Objects {
		if o.Hook && o.Kind != "Pod" {
			t.Errorf("hook %s %s rendered with the Job disabled", o.Kind, o.Name)
		}
	}
	if got := dig(renderedConfig(t, r), "clickhouse", "migrate"); got != "startup" {
		t.Errorf("clickhouse.migrate = %v, want startup without the Job", got)
	}
	r = render(t, valuesYAML(t, "migrations: {job: {enabled: false}}\nconfig: {clickhouse: {migrate: external}}"))
	if got := dig(renderedConfig(t, r), "clickhouse", "migrate"); got != "external" {
		t.Errorf("clickhouse.migrate = %v, want the config's external (weft migrate run by hand)", got)
	}
	r = render(t, valuesYAML(t, "config: {clickhouse: {migrate: startup}}"))
	if got := dig(renderedConfig(t, r), "clickhouse", "migrate"); got != "external" {
		t.Errorf("clickhouse.migrate = %v with the Job, want external whatever config says", got)
	}
}

// TestChecksumIsTheConfigMaps: checksum/config is the sha256 of the
// ConfigMap's weft.yaml (so it rolls the pods exactly when that changes),
// and turning the Job off or on changes it (migrate startup/external).
func TestChecksumIsTheConfigMaps(t *testing.T) {
	for _, doc := range []string{"{}", "migrations: {job: {enabled: false}}"} {
		r := render(t, valuesYAML(t, doc))
		cm := mustDecode[corev1.ConfigMap](t, r.find(t, "ConfigMap", fullname))
		sum := sha256.Sum256([]byte(strings.TrimSuffix(cm.Data["weft.yaml"], "\n")))
		sts := mustDecode[appsv1.StatefulSet](t, r.find(t, "StatefulSet", fullname))
		if got := sts.Spec.Template.Annotations["checksum/config"]; got != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: checksum/config %s is not the sha256 of the ConfigMap's weft.yaml (%x)", doc, got, sum)
		}
	}
	on := mustDecode[appsv1.StatefulSet](t, render(t, nil).find(t, "StatefulSet", fullname))
	off := mustDecode[appsv1.StatefulSet](t, render(t, valuesYAML(t, "migrations: {job: {enabled: false}}")).find(t, "StatefulSet", fullname))
	if on.Spec.Template.Annotations["checksum/config"] == off.Spec.Template.Annotations["checksum/config"] {
		t.Error("checksum/config unchanged when migrations.job.enabled flips clickhouse.migrate")
	}
}
