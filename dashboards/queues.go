package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Variables of the queue health dashboard.
const (
	varGroup = "group"
	varTopic = "topic"
)

// queues shows consumer lag from the queue_health samples weft takes of
// every consumer group reading the tapped topics (the applications' groups,
// not only weft's).
func (g *generator) queues() *dashboard.DashboardBuilder {
	qh := g.table("queue_health")
	filter := fmt.Sprintf("$__conditionalAll(group_id IN (${%s:sqlstring}), $%s) AND $__conditionalAll(topic IN (${%s:sqlstring}), $%s)",
		varGroup, varGroup, varTopic, varTopic)
	// perSample sums the partitions of each (group, topic) sample; rows
	// without a group are the topics' own depth samples.
	perSample := func(value, where string) string {
		return fmt.Sprintf(`SELECT time, series, max(v) AS value
FROM
(
    SELECT $__timeInterval(ts) AS time, concat(group_id, ' / ', topic) AS series, ts, %s AS v
    FROM %s
    WHERE $__timeFilter(ts) AND group_id != '' AND %s AND %s
    GROUP BY time, series, ts
)
GROUP BY time, series
ORDER BY time, series`, value, qh, where, filter)
	}
	// perTopic sums the partitions of each topic sample.
	perTopic := func(where string) string {
		return fmt.Sprintf(`SELECT $__timeInterval(ts) AS time, topic, max(depth) AS records
FROM
(
    SELECT ts, topic, sum(end_offset - start_offset) AS depth
    FROM %s
    WHERE group_id = '' AND %s AND $__timeFilter(ts) AND $__conditionalAll(topic IN (${%s:sqlstring}), $%s)
    GROUP BY ts, topic
)
GROUP BY time, topic
ORDER BY time, topic`, qh, where, varTopic, varTopic)
	}
	// latest is each partition's newest sample in the time range.
	latest := fmt.Sprintf(`SELECT group_id, topic, partition,
           argMax(lag_messages, ts) AS lag_messages, argMax(lag_seconds, ts) AS lag_seconds,
           argMax(end_offset - start_offset, ts) AS depth, argMax(group_state, ts) AS group_state,
           argMax(is_dlq, ts) AS is_dlq, max(ts) AS sampled_at
    FROM %s
    WHERE $__timeFilter(ts) AND group_id != '' AND %s
    GROUP BY group_id, topic, partition`, qh, filter)

	return g.newDashboard(UIDQueues, "weft / Queue health",
		"Lag of every consumer group on the tapped topics, in messages and in seconds, queue depth and dead-letter depth, from weft's queue_health samples.", true).
		WithVariable(queryVariable(varGroup, "Consumer group", "Consumer groups sampled in the time range.",
			fmt.Sprintf("SELECT DISTINCT group_id FROM %s WHERE $__timeFilter(ts) AND group_id != '' ORDER BY group_id", qh))).
		WithVariable(queryVariable(varTopic, "Topic", "Topics sampled in the time range.",
			fmt.Sprintf("SELECT DISTINCT topic FROM %s WHERE $__timeFilter(ts) ORDER BY topic", qh))).
		WithRow(dashboard.NewRowBuilder("Lag")).
		WithPanel(timeseriesPanel("Lag (messages)",
			"Messages produced but not yet committed by each consumer group, summed over partitions. A line that only grows means the group is not keeping up, or has stopped.",
			"short", perSample("sum(lag_messages)", "1"))).
		WithPanel(timeseriesPanel("Lag (seconds)",
			"Age of the oldest unconsumed record of each group and topic (worst partition). This is how late the consumers' view of the world is; compare with the step SLAs.",
			"s", perSample("max(lag_seconds)", "lag_seconds >= 0"))).
		WithPanel(timeseriesPanel("Queue depth",
			"Records retained on each topic (end offset minus start offset, summed over partitions).",
			"short", perTopic("NOT is_dlq"))).
		WithPanel(timeseriesPanel("Dead-letter depth",
			"Records retained on dead-letter topics. Anything above zero is a payment or order that needs a person: see the Async payments dashboard.",
			"short", perTopic("is_dlq"))).
		WithPanel(tablePanel("Current lag by group and topic",
			"Newest sample per group and topic in the time range, worst first. group_state Empty or Dead with lag means nobody is consuming.",
			fmt.Sprintf(`SELECT group_id, topic, any(group_state) AS group_state, max(is_dlq) AS dead_letter,
       sum(lag_messages) AS lag_messages, max(lag_seconds) AS lag_seconds, sum(depth) AS depth, max(sampled_at) AS sampled_at
FROM
(
    %s
)
GROUP BY group_id, topic
ORDER BY lag_seconds DESC, lag_messages DESC`, latest),
			columnUnit("lag_seconds", "s"))).
		WithRow(dashboard.NewRowBuilder("Lag monitor metrics (Prometheus)")).
		WithPanel(promTimeseries("Group lag (seconds)",
			"Worst lag in seconds of each consumer group on each topic, as weft's lag monitor exports it (weft_queue_group_lag_seconds): usable for alerting without ClickHouse.",
			"s", `max by (group, topic) (weft_queue_group_lag_seconds)`, "{{group}} / {{topic}}")).
		WithPanel(promTimeseries("Commit age",
			"Seconds since each consumer group last moved a committed offset. Growing while its lag is above zero: the group is stuck.",
			"s", `max by (group) (weft_queue_group_commit_age_seconds)`, "{{group}}")).
		WithPanel(promTimeseries("Produce rate",
			"Records produced per second to each topic, from end-offset changes between two samples.",
			"ops", `sum by (topic) (weft_queue_produce_rate)`, "{{topic}}")).
		WithPanel(promTimeseries("Dead-letter topics",
			"Records retained in each dead-letter topic and the age of the oldest one.",
			"short", `sum by (topic) (weft_queue_dlq_depth)`, "{{topic}} records").
			WithTarget(promQuery(`max by (topic) (weft_queue_dlq_oldest_age_seconds)`, "{{topic}} oldest age", "B")).
			OverrideByRegexp(".*oldest age", []dashboard.DynamicConfigValue{{Id: "unit", Value: "s"}}))
}
