package charttest

import (
	"errors"
	"fmt"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
)

// kinds are the API types the chart may render, by kind, with their
// apiVersion.
var kinds = map[string]struct {
	apiVersion string
	new        func() any
}{
	"ConfigMap":           {"v1", func() any { return &corev1.ConfigMap{} }},
	"Secret":              {"v1", func() any { return &corev1.Secret{} }},
	"Service":             {"v1", func() any { return &corev1.Service{} }},
	"ServiceAccount":      {"v1", func() any { return &corev1.ServiceAccount{} }},
	"Pod":                 {"v1", func() any { return &corev1.Pod{} }},
	"StatefulSet":         {"apps/v1", func() any { return &appsv1.StatefulSet{} }},
	"Job":                 {"batch/v1", func() any { return &batchv1.Job{} }},
	"PodDisruptionBudget": {"policy/v1", func() any { return &policyv1.PodDisruptionBudget{} }},
	"NetworkPolicy":       {"networking.k8s.io/v1", func() any { return &networkingv1.NetworkPolicy{} }},
	"ServiceMonitor":      {"monitoring.coreos.com/v1", func() any { return &monitoringv1.ServiceMonitor{} }},
}

// decodeStrict decodes o into its API type: unknown fields, duplicate
// fields and fields whose case differs from the API's are errors (what
// plain encoding/json, and sigs.k8s.io/yaml's UnmarshalStrict, let through).
func decodeStrict(o object) (any, error) {
	k, ok := kinds[o.Kind]
	if !ok {
		return nil, fmt.Errorf("%s %q: kind not known to the test (add it to kinds)", o.Kind, o.Name)
	}
	v := k.new()
	strict, err := kjson.UnmarshalStrict(o.JSON, v)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", o.Kind, o.Name, err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("%s %q: %w", o.Kind, o.Name, errors.Join(strict...))
	}
	var tm struct {
		APIVersion string `json:"apiVersion"`
	}
	_, _ = kjson.UnmarshalStrict(o.JSON, &tm, kjson.DisallowDuplicateFields)
	if tm.APIVersion != k.apiVersion {
		return nil, fmt.Errorf("%s %q: apiVersion %q, want %q", o.Kind, o.Name, tm.APIVersion, k.apiVersion)
	}
	return v, nil
}

func mustDecode[T any](t *testing.T, o object) *T {
	t.Helper()
	v, err := decodeStrict(o)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := v.(*T)
	if !ok {
		t.Fatalf("%s %q decodes to %T", o.Kind, o.Name, v)
	}
	return p
}

// TestStrictDecodingCatchesTypos proves decodeStrict refuses what a chart
// typo renders: an unknown field, a field in the wrong case, a duplicate.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"unknown field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndatta: {}\n"},
		{"wrong case", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIp: None}\n"},
		{"duplicate", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {}\ndata: {}\n"},
		{"wrong apiVersion", "apiVersion: apps/v1beta1\nkind: StatefulSet\nmetadata: {name: a}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := toObject(tc.doc)
			if err == nil {
				_, err = decodeStrict(o)
			}
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.doc)
			}
		})
	}
}
