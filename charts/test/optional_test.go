package charttest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestOptionalObjects: ServiceMonitor, NetworkPolicy and persistence appear
// only when enabled, and when they do they point at the right things.
func TestOptionalObjects(t *testing.T) {
	def := render(t, nil)
	for _, kind := range []string{"ServiceMonitor", "NetworkPolicy", "Secret"} {
		if n := len(def.ofKind(kind)); n != 0 {
			t.Errorf("defaults render %d %s", n, kind)
		}
	}
	if sts := mustDecode[appsv1.StatefulSet](t, def.find(t, "StatefulSet", fullname)); len(sts.Spec.VolumeClaimTemplates) != 0 {
		t.Error("defaults claim a volume")
	}

	r := render(t, readValues(t, filepath.Join(chartDir, "ci", "production-values.yaml")))
	sts := mustDecode[appsv1.StatefulSet](t, r.find(t, "StatefulSet", fullname))
	if *sts.Spec.Replicas != 3 || !strings.Contains(sts.Spec.Template.Spec.Containers[0].Image, "@sha256:") {
		t.Errorf("replicas %d image %s", *sts.Spec.Replicas, sts.Spec.Template.Spec.Containers[0].Image)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Name != "data" {
		t.Errorf("persistence: claims %+v", sts.Spec.VolumeClaimTemplates)
	}
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Name == "data" {
			t.Error("persistence on, but data is also a pod volume")
		}
	}

	// The ServiceMonitor scrapes the Service's http port once: it selects
	// the ClusterIP Service, not the headless one too.
	sm := mustDecode[monitoringv1.ServiceMonitor](t, r.find(t, "ServiceMonitor", fullname))
	if sm.Labels["release"] != "kube-prometheus-stack" || len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor: %+v", sm)
	}
	matched := 0
	for _, o := range r.ofKind("Service") {
		svc := mustDecode[corev1.Service](t, o)
		if labels.SelectorFromSet(sm.Spec.Selector.MatchLabels).Matches(labels.Set(svc.Labels)) {
			matched++
		}
	}
	if matched != 1 {
		t.Errorf("the ServiceMonitor selects %d Services, want 1", matched)
	}

	np := mustDecode[networkingv1.NetworkPolicy](t, r.find(t, "NetworkPolicy", fullname))
	if !labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels).Matches(labels.Set(sts.Spec.Template.Labels)) {
		t.Error("the NetworkPolicy does not select weft's pods")
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{"Ingress", "Egress"}) || len(np.Spec.Ingress) != 1 || np.Spec.Ingress[0].Ports[0].Port.String() != "http" {
		t.Errorf("NetworkPolicy: %+v", np.Spec)
	}
	var egressPorts []string
	for _, e := range np.Spec.Egress {
		for _, p := range e.Ports {
			egressPorts = append(egressPorts, p.Port.String())
		}
	}
	for _, want := range []string{"53", "9093", "9440", "4318", "443"} {
		if !slices.Contains(egressPorts, want) {
			t.Errorf("egress to port %s not allowed: %v", want, egressPorts)
		}
	}
}

// TestHTTPListen: the container port and probes follow config.http.listen;
// weft's loopback default, or none, would leave the probes out.
func TestHTTPListen(t *testing.T) {
	r := render(t, valuesYAML(t, "config: {http: {listen: '0.0.0.0:9100', tls: {cert_file: /tls/tls.crt, key_file: /tls/tls.key}}}"))
	c := mustDecode[appsv1.StatefulSet](t, r.find(t, "StatefulSet", fullname)).Spec.Template.Spec.Containers[0]
	if c.Ports[0].ContainerPort != 9100 || c.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("port %d scheme %s", c.Ports[0].ContainerPort, c.ReadinessProbe.HTTPGet.Scheme)
	}
	test := mustDecode[corev1.Pod](t, r.find(t, "Pod", fullname+"-test-readyz"))
	if url := test.Spec.Containers[0].Args[len(test.Spec.Containers[0].Args)-1]; url != "https://"+fullname+":8080/readyz" {
		t.Errorf("helm test curls %s", url)
	}
	for _, bad := range []string{"config: {http: {listen: ''}}", "config: {http: {listen: 'localhost'}}"} {
		if _, err := tryRender(t, valuesYAML(t, bad)); err == nil || !strings.Contains(err.Error(), "config.http.listen") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
