package rulecheck

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/weft-sh/weft/alerts"
)

// TestRulesParse loads both generated files with Prometheus's rule file
// parser, which checks every expression, duration, label and annotation
// template, and parses each expression again to check it is an instant
// vector (an alert needs one).
func TestRulesParse(t *testing.T) {
	o := alerts.DefaultOptions()
	o.DashboardURL = "https://grafana.example"
	groups, err := alerts.Rules(o)
	require.NoError(t, err)
	dir := t.TempDir()
	_, err = alerts.Write(dir, groups)
	require.NoError(t, err)

	rf, errs := rulefmt.ParseFile(filepath.Join(dir, alerts.RulesFileName), false, model.UTF8Validation, promqlParser(), nil)
	require.Empty(t, errs, "Prometheus rejects the rules file")
	require.Len(t, rf.Groups, len(groups))
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			t.Run(g.Name+"/"+r.Alert, func(t *testing.T) {
				e, err := promqlParser().ParseExpr(r.Expr)
				require.NoError(t, err, r.Expr)
				assert.Equal(t, parser.ValueTypeVector, e.Type(), r.Expr)
			})
		}
	}

	// The manifest's spec is the same groups.
	b, err := os.ReadFile(filepath.Join(dir, alerts.PrometheusRuleName))
	require.NoError(t, err)
	spec := specOf(t, b)
	_, errs = rulefmt.Parse(spec, false, model.UTF8Validation, promqlParser(), nil)
	require.Empty(t, errs, "Prometheus rejects the PrometheusRule's groups")
}

func promqlParser() parser.Parser { return parser.NewParser(parser.Options{}) }

// specOf returns the spec of a PrometheusRule manifest, checking its kind.
func specOf(t *testing.T, manifest []byte) []byte {
	t.Helper()
	var m struct {
		APIVersion string    `yaml:"apiVersion"`
		Kind       string    `yaml:"kind"`
		Spec       yaml.Node `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(manifest, &m))
	assert.Equal(t, "monitoring.coreos.com/v1", m.APIVersion)
	assert.Equal(t, "PrometheusRule", m.Kind)
	b, err := yaml.Marshal(&m.Spec)
	require.NoError(t, err)
	return b
}

// TestRulesParseRejects: the check above would catch a broken rule.
func TestRulesParseRejects(t *testing.T) {
	for name, rule := range map[string]string{
		"expression": "sum by (workflow (weft_stuck_orders) > 0",
		"template":   "sum(weft_stuck_orders) > 0\n    annotations:\n      summary: '{{ $labels.workflow'",
	} {
		t.Run(name, func(t *testing.T) {
			file := "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: " + rule + "\n"
			_, errs := rulefmt.Parse([]byte(file), false, model.UTF8Validation, promqlParser(), nil)
			assert.NotEmpty(t, errs)
		})
	}
}
