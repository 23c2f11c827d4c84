package charttest

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

var update = flag.Bool("update", false, "rewrite charts/weft/dashboards from `weft dashboards generate`")

// repoRoot is weft's module.
var repoRoot = filepath.Join("..", "..")

var (
	weftOnce sync.Once
	weftDir  string // removed by TestMain
	weftBin  string
	weftErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if weftDir != "" {
		_ = os.RemoveAll(weftDir)
	}
	os.Exit(code)
}

// weftBinary builds weft from this checkout, in weft's own module (its
// go.mod, not this test module's), once per test run.
func weftBinary(t *testing.T) string {
	t.Helper()
	weftOnce.Do(func() {
		weftDir, weftErr = os.MkdirTemp("", "weft-chart-test-")
		if weftErr != nil {
			return
		}
		weftBin = filepath.Join(weftDir, "weft")
		cmd := exec.Command("go", "build", "-o", weftBin, "./cmd/weft")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			weftErr = &buildError{err, out}
		}
	})
	if weftErr != nil {
		t.Fatalf("build weft: %v", weftErr)
	}
	return weftBin
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

// generateDashboards runs `weft dashboards generate` (with config, when
// not empty) and returns DIR/dashboards.
func generateDashboards(t *testing.T, config string) (string, error) {
	t.Helper()
	out := t.TempDir()
	args := []string{"dashboards", "generate", "--out", out}
	if config != "" {
		args = append(args, "--config", config)
	}
	cmd := exec.Command(weftBinary(t), args...)
	cmd.Env = append(os.Environ(), "WEFT_CONFIG=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{err, out}
	}
	return filepath.Join(out, "dashboards"), nil
}

// TestRenderedConfigLoads: the weft.yaml each ci values file (and
// weft.example.yaml as config) renders, for the pods and for the migration
// Job, is a config weft itself loads and validates — the binary's own
// loader, unknown keys and all.
func TestRenderedConfigLoads(t *testing.T) {
	sets := map[string]map[string]any{}
	for _, f := range ciFiles(t) {
		sets[filepath.Base(f)] = readValues(t, f)
	}
	sets["weft.example.yaml as config"] = exampleAsValues(t)
	for name, vals := range sets {
		t.Run(name, func(t *testing.T) {
			r := render(t, vals)
			cm := mustDecode[corev1.ConfigMap](t, r.find(t, "ConfigMap", fullname))
			// weft checks that TLS files exist: lay out the files the pod
			// mounts under a temporary root, and point the config there,
			// so a path the pod does not mount fails here.
			root := t.TempDir()
			sts := mustDecode[appsv1.StatefulSet](t, r.find(t, "StatefulSet", fullname))
			for _, f := range mountedFiles(sts.Spec.Template.Spec) {
				p := filepath.Join(root, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			configs := []*corev1.ConfigMap{cm}
			if o, ok := r.lookup("ConfigMap", migrateName); ok {
				configs = append(configs, mustDecode[corev1.ConfigMap](t, o))
			}
			for _, cm := range configs {
				cfg := strings.ReplaceAll(cm.Data["weft.yaml"], " /etc/weft/", " "+root+"/etc/weft/")
				path := writeTemp(t, "weft.yaml", []byte(cfg))
				if _, err := generateDashboards(t, path); err != nil {
					t.Fatalf("weft refuses the config of ConfigMap %s: %v\n%s", cm.Name, err, cm.Data["weft.yaml"])
				}
			}
		})
	}
	t.Run("a bad value is caught by weft", func(t *testing.T) {
		// The schema types keys; weft validates values. Prove the check
		// above would notice a config weft refuses.
		path := writeTemp(t, "weft.yaml", []byte("log: {level: loud}\n"))
		if _, err := generateDashboards(t, path); err == nil || !strings.Contains(err.Error(), "log.level") {
			t.Fatalf("weft accepted log.level: loud: %v", err)
		}
	})
}

// mountedFiles are the paths of the files weft's container sees from
// secret and projected volumes with items.
func mountedFiles(spec corev1.PodSpec) []string {
	vols := map[string][]string{}
	for _, v := range spec.Volumes {
		switch {
		case v.Secret != nil:
			for _, it := range v.Secret.Items {
				vols[v.Name] = append(vols[v.Name], it.Path)
			}
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					for _, it := range s.Secret.Items {
						vols[v.Name] = append(vols[v.Name], it.Path)
					}
				}
			}
		}
	}
	var files []string
	for _, m := range spec.Containers[0].VolumeMounts {
		for _, p := range vols[m.Name] {
			files = append(files, filepath.Join(m.MountPath, p))
		}
	}
	return files
}

// TestDashboardsGolden: charts/weft/dashboards is, byte for byte, what
// `weft dashboards generate` writes for the default config. -update
// rewrites it.
func TestDashboardsGolden(t *testing.T) {
	gen, err := generateDashboards(t, "")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join(chartDir, "dashboards")
	want, _ := filepath.Glob(filepath.Join(gen, "*.json"))
	have, _ := filepath.Glob(filepath.Join(golden, "*.json"))
	if len(want) == 0 {
		t.Fatal("weft generated no dashboards")
	}
	if *update {
		for _, f := range have {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range want {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(golden, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	if len(have) != len(want) {
		t.Errorf("chart has %d dashboards, weft generates %d; run: go test -run TestDashboardsGolden -update", len(have), len(want))
	}
	for _, f := range want {
		b, _ := os.ReadFile(f)
		g, err := os.ReadFile(filepath.Join(golden, filepath.Base(f)))
		if err != nil || !bytes.Equal(b, g) {
			t.Errorf("charts/weft/dashboards/%s differs from weft's output; run: go test -run TestDashboardsGolden -update", filepath.Base(f))
		}
	}
}

// TestDashboardConfigMaps: one ConfigMap per dashboard, labelled for
// Grafana's sidecar, its data the dashboard file byte for byte; label and
// namespace configurable; none when disabled.
func TestDashboardConfigMaps(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(chartDir, "dashboards", "*.json"))
	count := func(r rendered, label, value, ns string) int {
		n := 0
		for _, o := range r.ofKind("ConfigMap") {
			cm := mustDecode[corev1.ConfigMap](t, o)
			if cm.Name == fullname || o.Hook {
				continue // weft's config, the migration Job's
			}
			if cm.Labels[label] != value || cm.Namespace != ns || len(cm.Data) != 1 {
				t.Errorf("dashboard ConfigMap %s: labels %v namespace %q", cm.Name, cm.Labels, cm.Namespace)
			}
			for key, data := range cm.Data {
				want, err := os.ReadFile(filepath.Join(chartDir, "dashboards", key))
				if err != nil || data != string(want) {
					t.Errorf("ConfigMap %s: %s is not the dashboard file byte for byte", cm.Name, key)
				}
			}
			n++
		}
		return n
	}
	if n := count(render(t, nil), "grafana_dashboard", "1", namespace); n != len(files) {
		t.Errorf("%d dashboard ConfigMaps, want %d", n, len(files))
	}
	r := render(t, valuesYAML(t, "dashboards: {label: grafana-dashboards, labelValue: weft, namespace: monitoring}"))
	if n := count(r, "grafana-dashboards", "weft", "monitoring"); n != len(files) {
		t.Errorf("custom label: %d dashboard ConfigMaps, want %d", n, len(files))
	}
	if n := len(render(t, valuesYAML(t, "dashboards: {enabled: false}")).release().ofKind("ConfigMap")); n != 1 {
		t.Errorf("dashboards disabled: %d ConfigMaps, want only the config", n)
	}
}
