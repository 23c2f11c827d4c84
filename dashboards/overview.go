package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// overview is the commerce overview: the state of the business at a glance,
// then weft's own health from its metrics.
func (g *generator) overview() *dashboard.DashboardBuilder {
	w, _ := g.opts.workflow(g.opts.OrderWorkflow)
	happy, unhappy := terminalTypes(w)
	orders := fmt.Sprintf(`SELECT order_id, first_at, tl FROM (%s) WHERE hasAny(mapKeys(tl), %s) AND $__timeFilter(first_at)`,
		g.ordersSQL(), sqlList(w.IdentifiedBy))
	openStuck := fmt.Sprintf(`SELECT order_id FROM %s FINAL WHERE kind = 'stuck' AND status != 'resolved'`, g.table("findings"))

	return g.newDashboard(UIDOverview, "weft / Commerce overview",
		"Where every order is, how fast orders move, how many are abandoned, and whether weft itself keeps up.", true).
		WithRow(dashboard.NewRowBuilder("Orders")).
		WithPanel(statPanel("Orders started",
			"Orders whose first event falls in the time range (any workflow step).",
			"short",
			fmt.Sprintf("SELECT count() AS orders FROM (%s)", orders))).
		WithPanel(statPanel("Stuck now",
			"Orders weft currently reports stuck: no progress within their step's SLA. Open the Consistency dashboard or run `weft stuck` for the list.",
			"short",
			fmt.Sprintf("SELECT count() AS stuck FROM (%s)", openStuck)).
			Thresholds(thresholds(1, 10))).
		WithPanel(statPanel("Abandonment",
			fmt.Sprintf("Share of the orders that finished in the time range which ended unhappily (%v) rather than in %v: pickup expiries, declined or failed payments.", unhappy, happy),
			"percentunit",
			fmt.Sprintf(`SELECT countIf(hasAny(mapKeys(tl), %s)) / greatest(countIf(hasAny(mapKeys(tl), %s)), 1) AS abandonment FROM (%s)`,
				sqlList(unhappy), sqlList(append(append([]string{}, happy...), unhappy...)), orders)).
			Thresholds(thresholds(0.1, 0.25))).
		WithPanel(statPanel("Availability",
			"Share of the orders started in the time range that are not stuck: the order pipeline's availability as customers see it.",
			"percentunit",
			fmt.Sprintf(`SELECT 1 - countIf(order_id GLOBAL IN (%s)) / greatest(count(), 1) AS availability FROM (%s)`, openStuck, orders)).
			Thresholds(thresholdsHighGood(0.99, 0.999)).
			ColorMode(common.BigValueColorModeBackground)).
		WithPanel(rowsBarGauge("Orders by state",
			fmt.Sprintf("Orders started in the time range by where they are in the %s workflow: the furthest terminal step they reached, else the furthest step. Stuck orders are counted in the step they are stuck in.", w.Name),
			"short", "orders",
			fmt.Sprintf("SELECT state, count() AS orders FROM (%s) WHERE $__timeFilter(first_at) GROUP BY state ORDER BY orders DESC", g.stateSQL(w)))).
		WithPanel(timeseriesPanel("Throughput by event type",
			"Distinct events per interval by type, by event time (redeliveries of one event are counted once).",
			"short",
			fmt.Sprintf(`SELECT $__timeInterval(event_time) AS time, event_type, uniqExact(event_id) AS events
FROM %s
WHERE $__timeFilter(event_time)
GROUP BY time, event_type
ORDER BY time, event_type`, g.table("events")))).
		WithPanel(tablePanel("Latency between steps",
			"How long orders stay in each step before the next event moves them on (orders started in the time range), against the step's SLA. A p99 above the SLA means orders are being reported stuck there.",
			g.stepLatencySQL(),
			columnUnit("p50", "s"), columnUnit("p90", "s"), columnUnit("p99", "s"), columnUnit("sla", "s")).
			Height(10)).
		WithRow(dashboard.NewRowBuilder("weft itself (Prometheus)")).
		WithPanel(promTimeseries("Records consumed",
			"Kafka records the tap reads per second, by topic. Flat zero while producers are busy means the tap is down or stuck.",
			"ops", `sum by (topic) (rate(weft_collector_records_consumed_total[$__rate_interval]))`, "{{topic}}")).
		WithPanel(promTimeseries("Records quarantined",
			"Records per second that could not be decoded and went to the quarantine table (never dropped). Inspect them in ClickHouse: SELECT reason, count() FROM quarantine GROUP BY reason.",
			"ops", `sum by (topic) (rate(weft_collector_records_quarantined_total[$__rate_interval]))`, "{{topic}}")).
		WithPanel(promTimeseries("ClickHouse inserts",
			"Insert latency (p99) and failed inserts per second. Failed inserts are retried; offsets are committed only after a successful insert, so nothing is lost, but lag grows.",
			"s", `histogram_quantile(0.99, sum by (le) (rate(weft_collector_insert_duration_seconds_bucket[$__rate_interval])))`, "p99 insert latency").
			WithTarget(promQuery(`sum(rate(weft_collector_insert_errors_total[$__rate_interval]))`, "insert errors/s", "B")).
			OverrideByName("insert errors/s", []dashboard.DynamicConfigValue{{Id: "unit", Value: "ops"}})).
		WithPanel(promTimeseries("Detector",
			"Consistency detector passes and failed passes per second, and the open findings it reports by kind.",
			"short", `sum by (kind) (weft_consistency_open_findings)`, "open {{kind}}").
			WithTarget(promQuery(`sum(rate(weft_consistency_detector_passes_total[$__rate_interval]))`, "passes/s", "B")).
			WithTarget(promQuery(`sum(rate(weft_consistency_detector_failures_total[$__rate_interval]))`, "failures/s", "C")))
}
