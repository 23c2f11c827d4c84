package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/nodegraph"
)

// order is the drill-down of one order: its events, the causal graph, the
// version vectors and its findings. Its panels ignore the time range: an
// order's events may be older than the range the link came from.
func (g *generator) order() *dashboard.DashboardBuilder {
	events := g.table("events")
	id := "${" + varOrderID + ":sqlstring}"
	return g.newDashboard(UIDOrder, "weft / Order drill-down",
		"Everything weft stored about one order: its events in order, the causal chain as a graph (lost causes in red), version vectors and findings. Order ids elsewhere link here.", false).
		WithVariable(dashboard.NewTextBoxVariableBuilder(varOrderID).
			Label("Order id").
			Description("The order to show; order ids in the other dashboards link here.").
			DefaultValue(dashboard.StringOrMap{String: cog.ToPtr("")})).
		WithRow(dashboard.NewRowBuilder("Order")).
		WithPanel(statPanel("Distinct events",
			"Distinct events stored for the order (redeliveries counted once).",
			"short", fmt.Sprintf("SELECT uniqExact(event_id) AS events FROM %s WHERE order_id = %s", events, id))).
		WithPanel(statPanel("Records",
			"Kafka records stored for the order; more records than events means redeliveries or dead-letter copies.",
			"short", fmt.Sprintf("SELECT count() AS records FROM %s FINAL WHERE order_id = %s", events, id))).
		WithPanel(statPanel("Duration",
			"Time between the order's first and last event.",
			"s", fmt.Sprintf("SELECT dateDiff('millisecond', min(event_time), max(event_time)) / 1000 AS duration FROM %s WHERE order_id = %s", events, id))).
		WithPanel(statPanel("Open findings",
			"Findings about this order that are not resolved.",
			"short", fmt.Sprintf("SELECT count() AS open FROM %s FINAL WHERE order_id = %s AND status != 'resolved'", g.table("findings"), id)).
			Thresholds(thresholds(1, 1))).
		WithPanel(g.causalGraph()).
		WithPanel(g.orderTrace()).
		WithPanel(tablePanel("Events",
			"The order's records by event time, with where each came from (topic, partition, offset), what caused it, when weft stored it and how late it arrived.",
			fmt.Sprintf(`SELECT
    event_time, event_type, service, event_id, causation_id,
    topic, partition, offset, format,
    ingested_at, dateDiff('millisecond', event_time, ingested_at) / 1000 AS arrival_delay,
    trace_id, idempotency_key
FROM %s FINAL
WHERE order_id = %s
ORDER BY event_time, topic, partition, offset`, events, id),
			columnUnit("arrival_delay", "s")).Height(10)).
		WithPanel(tablePanel("Version vectors",
			"Each event's version vector (service → counter) next to its cause's. causality_ok is false when an event does not dominate the vector of the event it names as its cause.",
			fmt.Sprintf(`SELECT
    e.event_time AS event_time, e.event_type AS event_type, e.service AS service,
    toString(e.version_vector) AS version_vector,
    toString(c.version_vector) AS cause_vector,
    if(c.event_id = '', NULL,
       arrayAll(k -> c.version_vector[k] <= e.version_vector[k], mapKeys(c.version_vector))) AS causality_ok
FROM (SELECT * FROM %[1]s WHERE order_id = %[2]s LIMIT 1 BY event_id) AS e
GLOBAL LEFT JOIN (SELECT event_id, version_vector FROM %[1]s WHERE order_id = %[2]s LIMIT 1 BY event_id) AS c
    ON e.causation_id = c.event_id
ORDER BY e.event_time`, events, id)).Span(12).Height(10)).
		WithPanel(tablePanel("Findings",
			"Every finding about the order, open or resolved, with the detector's summary; a stuck one says why the order is stuck (reason).",
			fmt.Sprintf(`SELECT kind, workflow, step, reason, subject, status, summary, first_seen, last_seen, resolved_at
FROM %s FINAL
WHERE order_id = %s
ORDER BY first_seen`, g.table("findings"), id)).Span(12).Height(10)).
		WithPanel(tablePanel("Quarantined records",
			"Records keyed by this order id that weft could not decode, with the reason; they are not in the graph above.",
			fmt.Sprintf(`SELECT topic, partition, offset, record_time, reason, value_size
FROM %s FINAL
WHERE record_key = %s
ORDER BY record_time`, g.table("quarantine"), id)).Height(6))
}

// orderTrace is the order's OpenTelemetry trace (docs/tracing.md) in
// Grafana's trace view, read from otel_traces with the columns the
// ClickHouse data source's trace query gives that view. Its trace id is a
// keyed hash of the order id, which SQL cannot derive, so the spans are
// found by their weft.order.id attribute, within the order's event times
// (each span starts at its cause's event time and ends at its own), so that
// only the days' partitions those times fall in are read.
func (g *generator) orderTrace() *dashboard.PanelBuilder {
	id := "${" + varOrderID + ":sqlstring}"
	sql := fmt.Sprintf(`WITH
    (SELECT min(event_time) FROM %[1]s WHERE order_id = %[3]s) AS order_start,
    (SELECT max(event_time) FROM %[1]s WHERE order_id = %[3]s) AS order_end
SELECT
    TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, ServiceName AS serviceName,
    SpanName AS operationName, Timestamp AS startTime, multiply(Duration, 0.000001) AS duration,
    arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags,
    arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes)) AS serviceTags,
    StatusCode AS statusCode
FROM %[2]s
WHERE Timestamp >= order_start AND Timestamp <= order_end
  AND SpanAttributes['%[4]s'] = %[3]s
ORDER BY startTime ASC`, g.table("events"), g.table("otel_traces"), id, attrOrderID)
	return dashboard.NewPanelBuilder().
		Type("traces").
		Title("Trace").
		Description("The order as one OpenTelemetry trace (weft run with tracing.clickhouse on; `weft trace ORDER_ID` prints the same): a span per event under its cause, named after its topic, its service the one that emitted it, its duration the wait since its cause; the span of the order's latest event carries its findings. Empty when tracing is off or the spans are not stored yet (they follow their events by about 11 s).").
		Datasource(*clickHouseRef()).
		WithTarget(NewClickHouseQuery(sql).Traces()).
		Span(24).
		Height(14)
}

// attrOrderID is the span attribute holding the order id
// (tracing.AttrOrderID; dashboards does not import the tracer).
const attrOrderID = "weft.order.id"

// causalGraph draws the order's events as nodes and "caused" as edges. A
// cause an event names but weft never stored is drawn as a red node, so a
// lost event shows as a hole in the chain.
func (g *generator) causalGraph() *nodegraph.PanelBuilder {
	events := g.table("events")
	id := "${" + varOrderID + ":sqlstring}"
	stored := fmt.Sprintf(`SELECT event_id, event_type, service, event_time, causation_id, topic, partition, offset,
           count() OVER (PARTITION BY event_id) AS copies
    FROM %s
    WHERE order_id = %s
    ORDER BY event_time, offset
    LIMIT 1 BY event_id`, events, id)
	nodes := fmt.Sprintf(`WITH stored AS
(
    %s
)
SELECT
    event_id AS id,
    event_type AS title,
    service AS subtitle,
    concat('+', toString(dateDiff('millisecond', min(event_time) OVER (), event_time) / 1000), ' s') AS mainstat,
    concat(topic, '[', toString(partition), ']@', toString(offset)) AS secondarystat,
    1 AS arc__stored,
    0 AS arc__missing,
    toString(event_time) AS detail__event_time,
    toUInt64(copies) AS detail__copies
FROM stored
UNION ALL
SELECT
    causation_id AS id,
    'missing event' AS title,
    'never stored' AS subtitle,
    '' AS mainstat,
    '' AS secondarystat,
    0 AS arc__stored,
    1 AS arc__missing,
    '' AS detail__event_time,
    toUInt64(0) AS detail__copies
FROM stored
WHERE causation_id != '' AND causation_id GLOBAL NOT IN (SELECT event_id FROM stored)
GROUP BY causation_id`, stored)
	edges := fmt.Sprintf(`WITH stored AS
(
    %s
)
SELECT
    concat(e.causation_id, '->', e.event_id) AS id,
    e.causation_id AS source,
    e.event_id AS target,
    if(c.event_id = '', '', concat(toString(dateDiff('millisecond', c.event_time, e.event_time) / 1000), ' s')) AS mainstat
FROM stored AS e
GLOBAL LEFT JOIN stored AS c ON e.causation_id = c.event_id
WHERE e.causation_id != ''`, stored)
	return nodegraph.NewPanelBuilder().
		Title("Causal chain").
		Description("Each node is an event (type, service, time since the order's first event, topic[partition]@offset); each arrow points from a cause to the event it caused, labelled with the delay. Red nodes are causes that were named but never stored: lost or still in flight.").
		Datasource(*clickHouseRef()).
		WithTarget(NewClickHouseQuery(nodes).RefId("nodes")).
		WithTarget(NewClickHouseQuery(edges).RefId("edges")).
		Nodes(nodegraph.NewNodeOptionsBuilder().Arcs([]cog.Builder[nodegraph.ArcOption]{
			nodegraph.NewArcOptionBuilder().Field("arc__stored").Color("green"),
			nodegraph.NewArcOptionBuilder().Field("arc__missing").Color("red"),
		})).
		Span(24).
		Height(14)
}
