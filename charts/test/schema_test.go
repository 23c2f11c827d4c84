package charttest

import (
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
)

// exampleConfig is weft's reference config, every key documented.
var exampleConfig = filepath.Join("..", "..", "weft.example.yaml")

// TestLint runs Helm's linter (the Helm v4 SDK) over the chart, strict
// (warnings fail), with the defaults and with every ci values file.
func TestLint(t *testing.T) {
	sets := map[string]map[string]any{"defaults": nil}
	for _, f := range ciFiles(t) {
		sets[filepath.Base(f)] = readValues(t, f)
	}
	for name, vals := range sets {
		t.Run(name, func(t *testing.T) {
			l := action.NewLint()
			l.Strict = true
			l.Namespace = namespace
			l.KubeVersion = kubeVersion
			res := l.Run([]string{chartDir}, vals)
			for _, m := range res.Messages {
				t.Logf("lint: %s", m)
			}
			if len(res.Errors) > 0 || res.TotalChartsLinted != 1 {
				t.Errorf("lint: %v (%d charts linted)", res.Errors, res.TotalChartsLinted)
			}
		})
	}
}

// TestSchemaAccepts: the chart's defaults, every ci values file, and weft's
// own weft.example.yaml as config, pass the values schema.
func TestSchemaAccepts(t *testing.T) {
	ch := loadChart(t)
	check := func(name string, user map[string]any) {
		t.Run(name, func(t *testing.T) {
			vals, err := chartutil.ToRenderValuesWithSchemaValidation(ch, user, common.ReleaseOptions{Name: releaseName, Namespace: namespace}, common.DefaultCapabilities, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := vals["Values"]; !ok {
				t.Fatal("no values")
			}
		})
	}
	check("defaults", nil)
	for _, f := range ciFiles(t) {
		check(filepath.Base(f), readValues(t, f))
	}
	ex := exampleAsValues(t)
	t.Run("weft.example.yaml as config", func(t *testing.T) {
		if err := chartutil.ValidateAgainstSchema(ch, ex); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSchemaRejects: unknown keys and wrong types, at the top and deep in
// weft's config, are refused before anything is rendered, with a message
// naming the key.
func TestSchemaRejects(t *testing.T) {
	for _, tc := range []struct {
		name, values string
		want         []string // in the error
	}{
		{"unknown top-level key", "replicas: 3", []string{"additional properties 'replicas' not allowed"}},
		{"unknown config key", "config: {kafka: {brokerz: [a:9092]}}", []string{"/config/kafka", "'brokerz' not allowed"}},
		{"unknown key in a workflow step", "config: {consistency: {workflows: [{name: w, steps: [{name: s, onn: [A]}]}]}}", []string{"/config/consistency/workflows/0/steps/0", "'onn'"}},
		{"case typo", "config: {collector: {sessionTimeout: 45s}}", []string{"/config/collector", "'sessionTimeout' not allowed"}},
		{"duration as a number", "config: {collector: {session_timeout: 45}}", []string{"/config/collector/session_timeout", "got number, want string"}},
		{"duration without unit", "config: {consistency: {interval: '15'}}", []string{"/config/consistency/interval", "does not match pattern"}},
		{"string as a number", "config: {kafka: {client_id: 7}}", []string{"/config/kafka/client_id", "want string"}},
		{"list as a string", "config: {kafka: {brokers: a:9092}}", []string{"/config/kafka/brokers", "want array"}},
		{"bool as a string", "config: {audit: {enabled: 'yes'}}", []string{"/config/audit/enabled", "want boolean"}},
		{"a step's on unquoted (YAML 1.1 reads it as true)", "config: {consistency: {workflows: [{name: w, steps: [{name: s, on: [A]}]}]}}", []string{"/config/consistency/workflows/0/steps/0", "'true' not allowed"}},
		{"replicas as a string", "replicaCount: '3'", []string{"/replicaCount", "want integer"}},
		{"migration Job with a typo", "migrations: {job: {enabeld: false}}", []string{"/migrations/job", "'enabeld'"}},
		{"migration Job deadline as a string", "migrations: {job: {activeDeadlineSeconds: 5m}}", []string{"/migrations/job/activeDeadlineSeconds", "want integer"}},
		{"secret with a typo", "secrets: {kafka: {existingSecrett: weft}}", []string{"/secrets/kafka", "'existingSecrett'"}},
		{"token with a bad role", "secrets: {apiTokens: {tokens: [{name: a, roles: [admin], hash: 'sha256:0000000000000000000000000000000000000000000000000000000000000000'}]}}", []string{"/secrets/apiTokens/tokens/0/roles/0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tryRender(t, valuesYAML(t, tc.values))
			if err == nil {
				t.Fatalf("%s: accepted", tc.values)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error does not say %q:\n%v", tc.values, w, err)
				}
			}
		})
	}
}
