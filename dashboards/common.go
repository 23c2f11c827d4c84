package dashboards

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// This file holds the panel defaults every dashboard shares: data sources,
// variables, links between the dashboards, and panel builders with weft's
// look.

// Variable names the dashboards share.
const (
	varDatasource = "datasource"
	varPrometheus = "prometheus"
	varOrderID    = "order_id"
)

func clickHouseRef() *common.DataSourceRef {
	return &common.DataSourceRef{Type: cog.ToPtr(ClickHousePluginID), Uid: cog.ToPtr("${" + varDatasource + "}")}
}

func prometheusRef() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${" + varPrometheus + "}")}
}

// newDashboard starts a dashboard with weft's defaults: fixed UID, tags,
// time range, the data source variables and the links to the other
// dashboards.
func (g *generator) newDashboard(uid, title, description string, prometheus bool) *dashboard.DashboardBuilder {
	b := dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{Tag}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("1m").
		Time("now-6h", "now").
		Timezone(common.TimeZoneUtc).
		WithVariable(dashboard.NewDatasourceVariableBuilder(varDatasource).
			Label("ClickHouse").
			Description("The ClickHouse data source holding weft's tables.").
			Type(ClickHousePluginID).
			Current(option(g.opts.ClickHouseUID, g.opts.ClickHouseUID)))
	if prometheus {
		b = b.WithVariable(dashboard.NewDatasourceVariableBuilder(varPrometheus).
			Label("Prometheus").
			Description("The Prometheus data source scraping weft's /metrics.").
			Type("prometheus"))
	}
	for _, l := range g.links(uid) {
		b = b.Link(l)
	}
	return b
}

// links are the dashboard links at the top of every dashboard: one per
// other weft dashboard, keeping the time range and the data source.
func (g *generator) links(self string) []cog.Builder[dashboard.DashboardLink] {
	var out []cog.Builder[dashboard.DashboardLink]
	for _, d := range catalog {
		if d.uid == self {
			continue
		}
		out = append(out, dashboard.NewDashboardLinkBuilder(d.title).
			Type(dashboard.DashboardLinkTypeLink).
			Url("/d/"+d.uid+"?${"+varDatasource+":queryparam}").
			Tooltip(d.short).
			Icon("dashboard").
			KeepTime(true))
	}
	return out
}

func option(text, value string) dashboard.VariableOption {
	return dashboard.VariableOption{
		Text:  dashboard.StringOrArrayOfString{String: cog.ToPtr(text)},
		Value: dashboard.StringOrArrayOfString{String: cog.ToPtr(value)},
	}
}

// customVariable is a multi-value variable over fixed values, "All" selected.
func customVariable(name, label, description string, values []string) *dashboard.CustomVariableBuilder {
	opts := []dashboard.VariableOption{{
		Selected: cog.ToPtr(true),
		Text:     dashboard.StringOrArrayOfString{String: cog.ToPtr("All")},
		Value:    dashboard.StringOrArrayOfString{String: cog.ToPtr("$__all")},
	}}
	for _, v := range values {
		opts = append(opts, option(v, v))
	}
	return dashboard.NewCustomVariableBuilder(name).
		Label(label).
		Description(description).
		Values(dashboard.StringOrMap{String: cog.ToPtr(strings.Join(values, ","))}).
		Options(opts).
		Current(dashboard.VariableOption{
			Selected: cog.ToPtr(true),
			Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		}).
		Multi(true).
		IncludeAll(true)
}

// queryVariable is a multi-value variable whose values come from ClickHouse.
func queryVariable(name, label, description, sql string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Description(description).
		Datasource(*clickHouseRef()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(sql)}).
		Definition(sql).
		Current(dashboard.VariableOption{
			Selected: cog.ToPtr(true),
			Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true)
}

// dataLink is a field data link (the "links" field config property).
type dataLink struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// orderLink opens the order drill-down on the clicked order id, keeping the
// time range and the data source.
func orderLink() []dataLink {
	return []dataLink{{
		Title: "Order drill-down: ${__value.raw}",
		URL:   "/d/" + UIDOrder + "?var-" + varOrderID + "=${__value.raw}&${" + varDatasource + ":queryparam}&${__url_time_range}",
	}}
}

// orderIDLinks links every "order_id" column of a table to the drill-down.
func orderIDLinks() cog.Builder[dashboard.DashboardFieldConfigSourceOverrides] {
	return dashboard.NewDashboardFieldConfigSourceOverridesBuilder().
		Matcher(dashboard.MatcherConfig{Id: "byName", Options: "order_id"}).
		Properties([]dashboard.DynamicConfigValue{{Id: "links", Value: orderLink()}})
}

// columnUnit sets the unit of one table column.
func columnUnit(column, unit string) cog.Builder[dashboard.DashboardFieldConfigSourceOverrides] {
	return dashboard.NewDashboardFieldConfigSourceOverridesBuilder().
		Matcher(dashboard.MatcherConfig{Id: "byName", Options: column}).
		Properties([]dashboard.DynamicConfigValue{{Id: "unit", Value: unit}})
}

// tablePanel is a table of ClickHouse rows; order ids link to the drill-down.
func tablePanel(title, description, sql string, overrides ...cog.Builder[dashboard.DashboardFieldConfigSourceOverrides]) *table.PanelBuilder {
	return table.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(*clickHouseRef()).
		WithTarget(NewClickHouseQuery(sql)).
		Overrides(append([]cog.Builder[dashboard.DashboardFieldConfigSourceOverrides]{orderIDLinks()}, overrides...)).
		Filterable(true).
		// An explicit footer: the SDK's default has a null reducer, which
		// its own strict unmarshalling rejects.
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{})).
		Span(24).
		Height(9)
}

// timeseriesPanel plots a ClickHouse time series: a time column, optionally
// a label column (one series per value) and value columns.
func timeseriesPanel(title, description, unit, sql string) *timeseries.PanelBuilder {
	return defaultTimeseries().
		Title(title).
		Description(description).
		Unit(unit).
		Datasource(*clickHouseRef()).
		WithTarget(NewClickHouseQuery(sql).TimeSeries())
}

// promTimeseries plots a PromQL expression from weft's own metrics.
func promTimeseries(title, description, unit, expr, legend string) *timeseries.PanelBuilder {
	return defaultTimeseries().
		Title(title).
		Description(description).
		Unit(unit).
		Datasource(prometheusRef()).
		WithTarget(promQuery(expr, legend, "A"))
}

// promQuery is one more PromQL target for a Prometheus panel.
func promQuery(expr, legend, refID string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Expr(expr).LegendFormat(legend).RefId(refID).Datasource(prometheusRef())
}

func defaultTimeseries() *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		LineWidth(1).
		FillOpacity(15).
		DrawStyle(common.GraphDrawStyleLine).
		ShowPoints(common.VisibilityModeNever).
		SpanNulls(common.BoolOrFloat64{Bool: cog.ToPtr(false)}).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeMulti).
			Sort(common.SortOrderDescending)).
		Span(12).
		Height(8)
}

// statPanel shows one number from ClickHouse.
func statPanel(title, description, unit, sql string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Unit(unit).
		Datasource(*clickHouseRef()).
		WithTarget(NewClickHouseQuery(sql)).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeNone).
		Span(6).
		Height(4)
}

// thresholds colours a value green below warn, orange from warn, red from bad.
func thresholds(warn, bad float64) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().
		Mode(dashboard.ThresholdsModeAbsolute).
		Steps([]dashboard.Threshold{
			{Color: "green"},
			{Value: cog.ToPtr(warn), Color: "orange"},
			{Value: cog.ToPtr(bad), Color: "red"},
		})
}

// thresholdsHighGood colours a value red below bad, orange below good, green above.
func thresholdsHighGood(bad, good float64) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().
		Mode(dashboard.ThresholdsModeAbsolute).
		Steps([]dashboard.Threshold{
			{Color: "red"},
			{Value: cog.ToPtr(bad), Color: "orange"},
			{Value: cog.ToPtr(good), Color: "green"},
		})
}

// rowsBarGauge shows one bar per result row: a label column and a value
// column (a funnel, a count per kind).
func rowsBarGauge(title, description, unit, valueColumn, sql string) *bargauge.PanelBuilder {
	return bargauge.NewPanelBuilder().
		Title(title).
		Description(description).
		Unit(unit).
		Datasource(*clickHouseRef()).
		WithTarget(NewClickHouseQuery(sql)).
		ReduceOptions(common.NewReduceDataOptionsBuilder().
			Values(true).
			Calcs([]string{}).
			Fields(fmt.Sprintf("/^%s$/", valueColumn))).
		Orientation(common.VizOrientationHorizontal).
		DisplayMode(common.BarGaugeDisplayModeGradient).
		ShowUnfilled(true).
		Span(12).
		Height(8)
}

// sqlList renders values as a ClickHouse array literal of strings.
func sqlList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = sqlString(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// sqlString renders s as a ClickHouse string literal: the one quoting of
// the dashboards' SQL, which Grafana runs as it is (it cannot bind
// parameters). A backslash and a quote are escaped with a backslash; every
// other byte stands for itself in a quoted literal
// (TestSQLStringOnClickHouse).
func sqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
