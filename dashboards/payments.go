package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// payments follows the async payment workflow: where payments are, how
// often they are retried and declined, what ends in the dead-letter topic
// and which paths payments take to their outcome.
func (g *generator) payments() *dashboard.DashboardBuilder {
	w, _ := g.opts.workflow(g.opts.PaymentWorkflow)
	happy, unhappy := terminalTypes(w)
	retries := retryTypes(w)
	dlq := sqlString(g.opts.DLQPattern)
	events := g.table("events")

	return g.newDashboard(UIDPayments, "weft / Async payments",
		"Asynchronous payment authorization ("+w.Name+" workflow): status pipeline, retries, declines, the failure queue (dead-letter topics) and the paths payments take.", false).
		WithRow(dashboard.NewRowBuilder("Pipeline")).
		WithPanel(rowsBarGauge("Payment status pipeline",
			"Orders with a payment started in the time range that reached each step of the "+w.Name+" workflow, in step order.",
			"short", "orders", g.funnelSQL(w))).
		WithPanel(timeseriesPanel("Payment outcomes",
			fmt.Sprintf("Payment events per interval: retries (%v), successes (%v) and declines or failures (%v).", retries, happy, unhappy),
			"short",
			fmt.Sprintf(`SELECT $__timeInterval(event_time) AS time, event_type, uniqExact(event_id) AS events
FROM %s
WHERE $__timeFilter(event_time) AND event_type IN %s AND NOT match(topic, %s)
GROUP BY time, event_type
ORDER BY time, event_type`, events, sqlList(append(append(append([]string{}, retries...), happy...), unhappy...)), dlq))).
		WithPanel(rowsBarGauge("Orders by number of retries",
			fmt.Sprintf("Orders with a payment in the time range by how many retries (%v) they needed. A shift to the right means the payment provider is struggling.", retries),
			"short", "orders",
			fmt.Sprintf(`SELECT concat(toString(retries), ' retries') AS retried, count() AS orders
FROM
(
    SELECT order_id, uniqExactIf(event_id, event_type IN %s) AS retries
    FROM %s
    WHERE $__timeFilter(event_time) AND event_type IN %s
    GROUP BY order_id
)
GROUP BY retries
ORDER BY retries`, sqlList(retries), events, sqlList(w.IdentifiedBy)))).
		WithPanel(tablePanel("Payment paths",
			"The sequences of payment events orders went through (retries included), most common first: the fallback paths taken when the first attempt does not succeed.",
			fmt.Sprintf(`SELECT path, count() AS orders, any(order_id) AS example_order
FROM
(
    SELECT order_id,
           arrayStringConcat(arrayMap(x -> x.2, arraySort(x -> x.1, groupArray((event_time, event_type)))), ' → ') AS path,
           min(event_time) AS started
    FROM
    (
        SELECT order_id, event_id, event_time, event_type
        FROM %s
        WHERE event_type IN %s AND NOT match(topic, %s)
        LIMIT 1 BY order_id, event_id
    )
    GROUP BY order_id
    HAVING $__timeFilter(started)
)
GROUP BY path
ORDER BY orders DESC`, events, sqlList(workflowTypes(w)), dlq)).
			Span(12).Height(8)).
		WithRow(dashboard.NewRowBuilder("Failure queue")).
		WithPanel(statPanel("Dead-letter records",
			"Records on dead-letter topics (names matching "+g.opts.DLQPattern+") written in the time range: payments that exhausted their retries. Each needs a decision: redrive or refund.",
			"short",
			fmt.Sprintf(`SELECT count() AS records FROM %s FINAL WHERE match(topic, %s) AND $__timeFilter(record_time)`, events, dlq)).
			Thresholds(thresholds(1, 20))).
		WithPanel(statPanel("Oldest dead-letter record",
			"Age of the oldest record on a dead-letter topic: how long the oldest failed payment has waited for someone.",
			"s",
			fmt.Sprintf(`SELECT if(count() = 0, 0, dateDiff('second', min(record_time), now64(3))) AS age FROM %s WHERE match(topic, %s)`, events, dlq)).
			Thresholds(thresholds(3600, 86400))).
		WithPanel(timeseriesPanel("Dead-letter depth",
			"Records on each dead-letter topic over time (cumulative within the time range).",
			"short",
			fmt.Sprintf(`SELECT time, topic, sum(records) OVER (PARTITION BY topic ORDER BY time) AS depth
FROM
(
    SELECT $__timeInterval(record_time) AS time, topic, count() AS records
    FROM %s
    WHERE match(topic, %s) AND $__timeFilter(record_time)
    GROUP BY time, topic
)
ORDER BY time, topic`, events, dlq))).
		WithPanel(tablePanel("Dead-lettered payments",
			"Every dead-letter record in the time range with the reason and the original topic and offset from its headers. Redrive with weft's replay once the cause is fixed.",
			fmt.Sprintf(`SELECT
    order_id,
    event_type,
    topic,
    partition,
    offset,
    record_time,
    headers['dlq-reason']          AS reason,
    headers['dlq-original-topic']  AS original_topic,
    headers['dlq-original-offset'] AS original_offset
FROM %s FINAL
WHERE match(topic, %s) AND $__timeFilter(record_time)
ORDER BY record_time DESC
LIMIT 1000`, events, dlq)))
}
