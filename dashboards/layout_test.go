package dashboards

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jsonPanel is the part of a panel the layout checks read.
type jsonPanel struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Repeat      string `json:"repeat"`
	GridPos     *struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
		Overrides []struct {
			Matcher struct {
				ID      string `json:"id"`
				Options any    `json:"options"`
			} `json:"matcher"`
			Properties []struct {
				ID    string          `json:"id"`
				Value json.RawMessage `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Panels []jsonPanel `json:"panels"`
}

type jsonDashboard struct {
	UID    string      `json:"uid"`
	Title  string      `json:"title"`
	Panels []jsonPanel `json:"panels"`
	Links  []struct {
		Title string `json:"title"`
		URL   string `json:"url"`
	} `json:"links"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
			Q    any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func parse(t *testing.T, d Dashboard) jsonDashboard {
	t.Helper()
	raw, err := d.JSON()
	require.NoError(t, err)
	var jd jsonDashboard
	require.NoError(t, json.Unmarshal(raw, &jd))
	return jd
}

func flatten(ps []jsonPanel) []jsonPanel {
	var out []jsonPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

// quantityPanels show numbers that need a unit.
var quantityPanels = map[string]bool{"timeseries": true, "stat": true, "bargauge": true, "heatmap": true, "gauge": true}

func TestLayout(t *testing.T) {
	for _, d := range buildAll(t) {
		jd := parse(t, d)
		t.Run(d.UID, func(t *testing.T) {
			all := flatten(jd.Panels)
			require.NotEmpty(t, all)
			titles := map[string]bool{}
			for _, p := range all {
				if p.Type != "row" {
					assert.False(t, titles[p.Title], "panel title %q is used once (the SQL tests find panels by title)", p.Title)
					titles[p.Title] = true
				}
			}
			for i, p := range all {
				require.NotNil(t, p.GridPos, "panel %q has a position", p.Title)
				g := p.GridPos
				assert.True(t, g.X >= 0 && g.W > 0 && g.H > 0 && g.X+g.W <= 24, "panel %q fits the 24-column grid: %+v", p.Title, *g)
				for _, q := range all[i+1:] {
					h := q.GridPos
					overlap := g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H
					assert.False(t, overlap, "panels %q %+v and %q %+v overlap", p.Title, *g, q.Title, *h)
				}
				assert.NotEmpty(t, strings.TrimSpace(p.Title), "every panel has a title")
				if p.Type == "row" {
					continue
				}
				assert.GreaterOrEqual(t, len(p.Description), 40, "panel %q has a description a new on-call engineer understands", p.Title)
				if quantityPanels[p.Type] {
					assert.NotEmpty(t, p.FieldConfig.Defaults.Unit, "panel %q shows a quantity and has a unit", p.Title)
				}
				require.NotNil(t, p.Datasource, "panel %q has a data source", p.Title)
				switch p.Datasource.Type {
				case ClickHousePluginID:
					assert.Equal(t, "${datasource}", p.Datasource.UID, "panel %q uses the data source variable", p.Title)
				case "prometheus":
					assert.Equal(t, "${prometheus}", p.Datasource.UID, "panel %q uses the Prometheus variable", p.Title)
				default:
					t.Errorf("panel %q: unexpected data source %q", p.Title, p.Datasource.Type)
				}
				if p.Type == "table" {
					assert.True(t, linksOrderIDs(p), "table %q links order ids to the drill-down", p.Title)
				}
			}
		})
	}
}

func linksOrderIDs(p jsonPanel) bool {
	for _, o := range p.FieldConfig.Overrides {
		if o.Matcher.ID != "byName" || o.Matcher.Options != "order_id" {
			continue
		}
		for _, prop := range o.Properties {
			if prop.ID == "links" && strings.Contains(string(prop.Value), "/d/"+UIDOrder+"?var-order_id=${__value.raw}") {
				return true
			}
		}
	}
	return false
}

func TestLinksAndVariables(t *testing.T) {
	ds := buildAll(t)
	uids := map[string]bool{}
	for _, d := range ds {
		uids[d.UID] = true
		assert.True(t, strings.HasPrefix(d.UID, "weft-"), "fixed UID %s", d.UID)
	}
	for _, d := range ds {
		jd := parse(t, d)
		t.Run(d.UID, func(t *testing.T) {
			assert.Equal(t, d.UID, jd.UID)
			linked := map[string]bool{}
			for _, l := range jd.Links {
				for uid := range uids {
					if strings.HasPrefix(l.URL, "/d/"+uid+"?") {
						linked[uid] = true
					}
				}
			}
			for uid := range uids {
				if uid != d.UID {
					assert.True(t, linked[uid], "%s links to %s", d.UID, uid)
				}
			}
			require.NotEmpty(t, jd.Templating.List)
			first := jd.Templating.List[0]
			assert.Equal(t, "datasource", first.Name)
			assert.Equal(t, "datasource", first.Type)
			assert.Equal(t, ClickHousePluginID, first.Q, "the data source variable lists ClickHouse data sources")
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	o := DefaultOptions()
	o.Database = "weft; DROP"
	o.OrderWorkflow = "nope"
	o.DLQPattern = "("
	err := o.Validate()
	require.Error(t, err)
	for _, key := range []string{"database", "order_workflow", "dlq_pattern"} {
		assert.Contains(t, err.Error(), key)
	}
	_, err = All(o)
	assert.Error(t, err)
}
