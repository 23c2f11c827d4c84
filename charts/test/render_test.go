package charttest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test.
var chartDir = filepath.Join("..", "weft")

// kubeVersion is the cluster version renders and lint assume (the
// kube-apiserver tier's).
var kubeVersion = func() *common.KubeVersion {
	v, err := common.ParseKubeVersion("v1.37.2")
	if err != nil {
		panic(err)
	}
	return v
}()

const (
	releaseName = "shop"
	namespace   = "observability"
	fullname    = "shop-weft"
)

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return ch
}

// readValues reads a values file as Helm does (-f FILE).
func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := common.ReadValuesFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v.AsMap()
}

// valuesYAML reads inline YAML values (tests' overrides).
func valuesYAML(t *testing.T, s string) map[string]any {
	t.Helper()
	v, err := common.ReadValues([]byte(s))
	if err != nil {
		t.Fatalf("values %q: %v", s, err)
	}
	return v.AsMap()
}

// ciFiles are the chart's CI values files, the render matrix.
func ciFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci values files in %s/ci (%v)", chartDir, err)
	}
	sort.Strings(files)
	return files
}

// object is one rendered manifest.
type object struct {
	Source string // the template it came from
	Kind   string
	Name   string
	JSON   []byte // the manifest, converted strictly from YAML
	Hook   bool
}

// rendered is what an install would create.
type rendered struct {
	Objects []object
	Notes   string
}

// find returns the one object of kind named name, or fails.
func (r rendered) find(t *testing.T, kind, name string) object {
	t.Helper()
	o, ok := r.lookup(kind, name)
	if !ok {
		t.Fatalf("no %s %q rendered; have %v", kind, name, r.names())
	}
	return o
}

// lookup returns the one object of kind named name, if rendered.
func (r rendered) lookup(kind, name string) (object, bool) {
	for _, o := range r.Objects {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return object{}, false
}

// release is r without its hooks: what the release itself keeps.
func (r rendered) release() rendered {
	out := rendered{Notes: r.Notes}
	for _, o := range r.Objects {
		if !o.Hook {
			out.Objects = append(out.Objects, o)
		}
	}
	return out
}

func (r rendered) ofKind(kind string) []object {
	var out []object
	for _, o := range r.Objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (r rendered) names() []string {
	var out []string
	for _, o := range r.Objects {
		out = append(out, o.Kind+"/"+o.Name)
	}
	return out
}

// render installs the chart client-side (helm template), values
// validated against the schema as helm install does.
func render(t *testing.T, vals map[string]any) rendered {
	t.Helper()
	r, err := tryRender(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

func tryRender(t *testing.T, vals map[string]any) (rendered, error) {
	t.Helper()
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.KubeVersion = kubeVersion
	rel, err := install.Run(loadChart(t), vals)
	if err != nil {
		return rendered{}, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		return rendered{}, fmt.Errorf("release is a %T", rel)
	}
	out := rendered{Notes: r.Info.Notes}
	add := func(source, manifest string, hook bool) error {
		for _, doc := range splitYAML(manifest) {
			o, err := toObject(doc)
			if err != nil {
				return fmt.Errorf("%s: %w\n%s", source, err, doc)
			}
			o.Source, o.Hook = source, hook
			out.Objects = append(out.Objects, o)
		}
		return nil
	}
	if err := add("manifest", r.Manifest, false); err != nil {
		return rendered{}, err
	}
	for _, h := range r.Hooks {
		if err := add(h.Path, h.Manifest, true); err != nil {
			return rendered{}, err
		}
	}
	return out, nil
}

// splitYAML splits a multi-document stream, dropping empty documents.
func splitYAML(s string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+s, "\n---") {
		var lines []string
		for _, l := range strings.Split(d, "\n") {
			if strings.TrimSpace(l) != "" && !strings.HasPrefix(strings.TrimSpace(l), "#") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// toObject converts a manifest strictly: duplicate keys and YAML that is
// not JSON-compatible are errors.
func toObject(doc string) (object, error) {
	j, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return object{}, fmt.Errorf("YAML to JSON (strict): %w", err)
	}
	var meta struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(j, &meta); err != nil {
		return object{}, err
	}
	return object{Kind: meta.Kind, Name: meta.Metadata.Name, JSON: j}, nil
}

// exampleAsValues reads weft.example.yaml as the chart's config value.
// Helm reads values as YAML 1.1, where a bare `on` key is the boolean true
// (weft reads YAML 1.2, where it is "on"): a workflow step's `on:` must be
// quoted in values, as docs/deploy.md says.
func exampleAsValues(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	quoted := strings.ReplaceAll(string(b), " on: [", ` "on": [`)
	if quoted == string(b) {
		t.Fatal("weft.example.yaml has no workflow step `on:` any more: drop the quoting here")
	}
	return map[string]any{"config": valuesYAML(t, quoted)}
}

// writeTemp writes b to a file in a test's temporary directory.
func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
