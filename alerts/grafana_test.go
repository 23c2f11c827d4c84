package alerts

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestGrafanaRules: every Prometheus rule has a Grafana-managed copy with
// the same expression, labels and annotations, a unique fixed UID Grafana
// accepts, and a condition naming one of its queries.
func TestGrafanaRules(t *testing.T) {
	groups, err := Rules(DefaultOptions())
	require.NoError(t, err)
	_, err = GrafanaRules(groups, GrafanaOptions{})
	require.ErrorContains(t, err, "data source UID")

	b, err := GrafanaRules(groups, GrafanaOptions{PrometheusUID: "prom"})
	require.NoError(t, err)
	var f grafanaFile
	require.NoError(t, yaml.Unmarshal(b, &f))
	assert.Equal(t, 1, f.APIVersion)
	require.Len(t, f.Groups, len(groups))
	uids := map[string]bool{}
	for i, g := range f.Groups {
		assert.Equal(t, "weft", g.Folder)
		require.Len(t, g.Rules, len(groups[i].Rules))
		for j, r := range g.Rules {
			want := groups[i].Rules[j]
			assert.LessOrEqual(t, len(r.UID), 40, r.UID)
			assert.Regexp(t, `^[a-z0-9-]+$`, r.UID)
			assert.False(t, uids[r.UID], "UID %s twice", r.UID)
			uids[r.UID] = true
			assert.Equal(t, want.Alert, r.Title)
			assert.Equal(t, want.Labels, r.Labels)
			for k, v := range want.Annotations {
				assert.Equal(t, strings.ReplaceAll(v, "$value", "$values.A.Value"), r.Annotations[k], k)
			}
			refs := map[string]bool{}
			for _, q := range r.Data {
				refs[q.RefID] = true
			}
			assert.True(t, refs[r.Condition], "condition %s is no query", r.Condition)
			assert.Equal(t, "prom", r.Data[0].DatasourceUID)
			assert.Equal(t, want.Expr, r.Data[0].Model["expr"])
		}
	}
}
