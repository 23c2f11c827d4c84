package dashboards

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func buildAll(t *testing.T) []Dashboard {
	t.Helper()
	ds, err := All(DefaultOptions())
	require.NoError(t, err)
	require.Len(t, ds, len(catalog))
	return ds
}

// TestGolden compares every dashboard's JSON with testdata/<uid>.json;
// `go test ./dashboards -run TestGolden -update` rewrites them.
func TestGolden(t *testing.T) {
	for _, d := range buildAll(t) {
		t.Run(d.UID, func(t *testing.T) {
			got, err := d.JSON()
			require.NoError(t, err)
			path := filepath.Join("testdata", d.UID+".json")
			if *update {
				require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o644))
				return
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run with -update to create it")
			assert.Equal(t, strings.TrimSpace(string(want)), string(got), "run with -update after an intended change")
		})
	}
}

// TestRoundTrip reads every dashboard back with the SDK's unmarshalling
// (ClickHouse targets included) and requires the same JSON.
func TestRoundTrip(t *testing.T) {
	RegisterPlugins()
	for _, d := range buildAll(t) {
		t.Run(d.UID, func(t *testing.T) {
			raw, err := d.JSON()
			require.NoError(t, err)
			var back dashboard.Dashboard
			require.NoError(t, json.Unmarshal(raw, &back))
			again, err := json.MarshalIndent(back, "", "  ")
			require.NoError(t, err)
			assert.JSONEq(t, string(raw), string(again))
			for _, p := range panels(back) {
				for _, tgt := range p.Targets {
					if p.Datasource != nil && p.Datasource.Type != nil && *p.Datasource.Type == ClickHousePluginID {
						assert.IsType(t, &ClickHouseQuery{}, tgt, "panel %q: target read back as the ClickHouse query type", title(p))
					}
				}
			}
			var strict dashboard.Dashboard
			err = strict.UnmarshalJSONStrict(raw)
			if be, ok := err.(cog.BuildErrors); ok && len(be) == 0 {
				err = nil // the SDK returns an empty BuildErrors for "no error"
			}
			assert.NoError(t, err, "strict unmarshalling")
		})
	}
}

// panels flattens a dashboard's panels (rows' nested panels included).
func panels(d dashboard.Dashboard) []dashboard.Panel {
	var out []dashboard.Panel
	for _, p := range d.Panels {
		if p.Panel != nil {
			out = append(out, *p.Panel)
		}
		if p.RowPanel != nil {
			out = append(out, p.RowPanel.Panels...)
		}
	}
	return out
}

func title(p dashboard.Panel) string {
	if p.Title == nil {
		return "<untitled>"
	}
	return *p.Title
}
