package kubetest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// workload is a stored object that makes pods (a Deployment, StatefulSet,
// DaemonSet, Job or CronJob) and the pod its controller would create.
type workload struct {
	kind, name string
	template   corev1.PodTemplateSpec
	// claims are a StatefulSet's volumeClaimTemplates, which its controller
	// turns into PersistentVolumeClaim volumes of each pod.
	claims []corev1.PersistentVolumeClaim
}

// storedWorkloads reads every pod-making object of the release from the API
// server.
func storedWorkloads(ctx context.Context, c *cluster, ns string) ([]workload, error) {
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + releaseName}
	var out []workload
	deps, err := c.client.AppsV1().Deployments(ns).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, d := range deps.Items {
		out = append(out, workload{kind: "Deployment", name: d.Name, template: d.Spec.Template})
	}
	sts, err := c.client.AppsV1().StatefulSets(ns).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, s := range sts.Items {
		out = append(out, workload{kind: "StatefulSet", name: s.Name, template: s.Spec.Template, claims: s.Spec.VolumeClaimTemplates})
	}
	dss, err := c.client.AppsV1().DaemonSets(ns).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, d := range dss.Items {
		out = append(out, workload{kind: "DaemonSet", name: d.Name, template: d.Spec.Template})
	}
	jobs, err := c.client.BatchV1().Jobs(ns).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, j := range jobs.Items {
		out = append(out, workload{kind: "Job", name: j.Name, template: j.Spec.Template})
	}
	crons, err := c.client.BatchV1().CronJobs(ns).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, cj := range crons.Items {
		out = append(out, workload{kind: "CronJob", name: cj.Name, template: cj.Spec.JobTemplate.Spec.Template})
	}
	return out, nil
}

// templateOf returns the pod template of a pod-making object given as
// unstructured (a hook's manifest), and whether it has one.
func templateOf(u *unstructured.Unstructured) (workload, bool, error) {
	w := workload{kind: u.GetKind(), name: u.GetName()}
	var path []string
	switch u.GetKind() {
	case "Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet":
		path = []string{"spec", "template"}
	case "CronJob":
		path = []string{"spec", "jobTemplate", "spec", "template"}
	default:
		return w, false, nil
	}
	m, ok, err := unstructured.NestedMap(u.Object, path...)
	if err != nil || !ok {
		return w, false, err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &w.template); err != nil {
		return w, false, fmt.Errorf("%s %s pod template: %w", u.GetKind(), u.GetName(), err)
	}
	if u.GetKind() == "StatefulSet" {
		var s appsv1.StatefulSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
			return w, false, err
		}
		w.claims = s.Spec.VolumeClaimTemplates
	}
	return w, true, nil
}

// pod is the Pod the workload's controller would create from its template
// (for a StatefulSet: ordinal 0, with its claim volumes).
func (w workload) pod(ns string) *corev1.Pod {
	t := w.template.DeepCopy()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        dnsLabel(w.name + "-" + strings.ToLower(w.kind) + "-0"),
			Namespace:   ns,
			Labels:      t.Labels,
			Annotations: t.Annotations,
		},
		Spec: t.Spec,
	}
	for _, claim := range w.claims {
		if slices.ContainsFunc(p.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == claim.Name }) {
			continue
		}
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{
			Name: claim.Name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: claim.Name + "-" + w.name + "-0",
			}},
		})
	}
	return p
}
