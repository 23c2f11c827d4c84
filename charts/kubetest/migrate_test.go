package kubetest

import (
	"context"
	"slices"
	"testing"

	release "helm.sh/helm/v4/pkg/release/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// migrationJob returns the release's schema migration hook Job (a Job run
// before install and before upgrade), if it renders one.
func migrationJob(rel *release.Release) (*release.Hook, bool) {
	for _, h := range rel.Hooks {
		if h.Kind == "Job" && slices.Contains(h.Events, release.HookPreInstall) && slices.Contains(h.Events, release.HookPreUpgrade) {
			return h, true
		}
	}
	return nil, false
}

// checkMigrateMode checks the stored weft config against the release's
// hooks: clickhouse.migrate external when the migration Job runs (the pods
// never migrate), startup when it does not. The hook Job itself is not
// stored (the tier installs without hooks, so nothing waits on a Job no
// kubelet will run); admitPods has dry-run it and its pod.
func checkMigrateMode(t *testing.T, ctx context.Context, c *cluster, rel *release.Release, ns string) (withJob bool) {
	t.Helper()
	cm, err := c.client.CoreV1().ConfigMaps(ns).Get(ctx, releaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("weft's ConfigMap: %v", err)
	}
	var cfg struct {
		ClickHouse struct {
			Migrate string `json:"migrate"`
		} `json:"clickhouse"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["weft.yaml"]), &cfg); err != nil {
		t.Fatalf("weft.yaml: %v", err)
	}
	h, withJob := migrationJob(rel)
	want := "startup"
	if withJob {
		want = "external"
		if _, err := c.client.BatchV1().Jobs(ns).Get(ctx, h.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("hook Job %s: got %v, want NotFound (installed without hooks)", h.Name, err)
		}
	}
	if cfg.ClickHouse.Migrate != want {
		t.Errorf("stored clickhouse.migrate %q, want %q (migration Job rendered: %v)", cfg.ClickHouse.Migrate, want, withJob)
	}
	return withJob
}
