package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// replays shows replay and redrive jobs (docs/replay.md) and the
// dead-letter topics they empty: jobs by state, records replayed per
// target topic, every job, and per dead-letter topic the records waiting
// for a redrive and how old the oldest is — before a redrive they wait,
// after it they are redriven. It reads replay_jobs, replay_items, the
// events the tap stored from dead-letter topics and queue_health.
func (g *generator) replays() *dashboard.DashboardBuilder {
	jobs := g.table("replay_jobs") + " FINAL"
	dlq := sqlString(g.opts.DLQPattern)
	return g.newDashboard(UIDReplays, "weft / Replays and dead letters",
		"Replay and redrive jobs — by state, records replayed per topic, each job with who ran it and how far it got — and the dead-letter topics: records waiting for a redrive, the oldest one's age, and the depth Kafka retains.", false).
		WithRow(dashboard.NewRowBuilder("Jobs")).
		WithPanel(statPanel("Jobs running",
			"Jobs running now, in weft run (confirmed over the HTTP API) or in a `weft replay`/`weft redrive` on a terminal. A job killed while running stays running here until it is resumed: see its updated time in the table below.",
			"short", fmt.Sprintf("SELECT countIf(status = 'running') AS running FROM %s", jobs))).
		WithPanel(statPanel("Jobs failed or cancelled",
			"Jobs created in the time range that failed or were cancelled and not resumed since: each stopped part way, and `weft replay resume JOB` (or confirming it again over the API) finishes it without producing any record twice.",
			"short", fmt.Sprintf("SELECT countIf(status IN ('failed', 'cancelled')) AS stopped FROM %s WHERE $__timeFilter(created_at)", jobs)).
			Thresholds(thresholds(1, 1))).
		WithPanel(statPanel("Records replayed",
			"Records the jobs updated in the time range produced (each job's produced count; a record gone from Kafka is not one).",
			"short", fmt.Sprintf("SELECT sum(produced) AS records FROM %s WHERE $__timeFilter(updated_at)", jobs))).
		WithPanel(statPanel("Records gone from Kafka",
			"Records the jobs updated in the time range planned but found gone from Kafka (retention or compaction removed them) and skipped.",
			"short", fmt.Sprintf("SELECT sum(missing) AS missing FROM %s WHERE $__timeFilter(updated_at)", jobs)).
			Thresholds(thresholds(1, 1))).
		WithPanel(rowsBarGauge("Jobs by state",
			"Jobs created in the time range by state: planned (a dry run over the API, waiting for its confirmation), running, finished, cancelled, failed.",
			"short", "jobs", fmt.Sprintf(`SELECT status, count() AS jobs FROM %s WHERE $__timeFilter(created_at)
GROUP BY status
ORDER BY status`, jobs))).
		WithPanel(timeseriesPanel("Records replayed per topic",
			"Records produced per target topic, at each job's last update (the end of a finished job, the last committed batch of one running): the items before the job's cursor, by their target.",
			"short", fmt.Sprintf(`SELECT $__timeInterval(j.updated_at) AS time, i.target AS topic, count() AS records
FROM %s AS i
GLOBAL INNER JOIN (SELECT job_id, cursor, updated_at FROM %s WHERE $__timeFilter(updated_at)) AS j ON i.job_id = j.job_id
WHERE i.seq < j.cursor
GROUP BY time, topic
ORDER BY time, topic`, g.table("replay_items"), jobs))).
		WithPanel(tablePanel("Jobs",
			"Every job created in the time range, newest first: what it replays, who created it, its state, how many records it planned, how far its cursor got (items known committed in Kafka), how many it produced and found gone, its rate cap and detail (why it failed).",
			fmt.Sprintf(`SELECT job_id, kind, resource, actor, status, planned, cursor, produced, missing,
       created_at, updated_at, dateDiff('second', created_at, updated_at) AS duration, rate, detail
FROM %s
WHERE $__timeFilter(created_at)
ORDER BY created_at DESC, job_id
LIMIT 1000`, jobs),
			columnUnit("duration", "s"))).
		WithRow(dashboard.NewRowBuilder("Dead letters")).
		WithPanel(statPanel("Dead letters waiting",
			"Records on dead-letter topics (names matching "+g.opts.DLQPattern+") that no redrive has produced: each is a payment or order that needs a person. A redrive brings this down; the dead-letter topic itself keeps its records.",
			"short", fmt.Sprintf("SELECT count() AS waiting FROM (%s)", g.dlqWaitingSQL(dlq))).
			Span(12)).
		WithPanel(statPanel("Oldest dead letter waiting",
			"Age of the oldest dead-letter record no redrive has produced.",
			"s", fmt.Sprintf("SELECT dateDiff('second', min(record_time), now64(3)) AS age FROM (%s) HAVING count() > 0", g.dlqWaitingSQL(dlq))).
			NoValue("none waiting").
			Thresholds(thresholds(3600, 86400)).
			Span(12)).
		WithPanel(tablePanel("Dead-letter topics",
			"Per dead-letter topic: the records weft stored from it, those redriven (produced by a redrive job), those waiting, the oldest waiting record's age, and the last redrive. Before a redrive everything waits; after it, what it produced is redriven.",
			g.dlqTopicsSQL(dlq),
			columnUnit("oldest_waiting_age", "s")).
			Height(7)).
		WithPanel(timeseriesPanel("Dead-letter depth (Kafka)",
			"Records retained on each dead-letter topic, from the queue-health samples. A redrive does not delete them: the depth falls only with the topic's retention.",
			"short", fmt.Sprintf(`SELECT $__timeInterval(ts) AS time, topic, max(depth) AS records
FROM
(
    SELECT ts, topic, sum(end_offset - start_offset) AS depth
    FROM %s
    WHERE group_id = '' AND is_dlq AND $__timeFilter(ts)
    GROUP BY ts, topic
)
GROUP BY time, topic
ORDER BY time, topic`, g.table("queue_health")))).
		WithPanel(timeseriesPanel("Dead letters and redrives",
			"Records written to each dead-letter topic per interval (by record time), beside the records redriven from it (at each redrive job's last update): failures arriving and being sent back.",
			"short", fmt.Sprintf(`SELECT time, series, sum(records) AS records
FROM
(
    SELECT $__timeInterval(record_time) AS time, concat(topic, ' dead-lettered') AS series, count() AS records
    FROM (%s)
    WHERE $__timeFilter(record_time)
    GROUP BY time, series
    UNION ALL
    SELECT $__timeInterval(j.updated_at) AS time, concat(i.topic, ' redriven') AS series, count() AS records
    FROM %s AS i
    GLOBAL INNER JOIN (SELECT job_id, cursor, updated_at FROM %s WHERE kind = 'redrive' AND $__timeFilter(updated_at)) AS j ON i.job_id = j.job_id
    WHERE i.seq < j.cursor
    GROUP BY time, series
)
GROUP BY time, series
ORDER BY time, series`, g.dlqRecordsSQL(dlq), g.table("replay_items"), jobs)))
}

// dlqRecordsSQL is every record weft stored from a dead-letter topic, each
// once: topic, partition, offset, record_time.
func (g *generator) dlqRecordsSQL(dlq string) string {
	return fmt.Sprintf(`SELECT topic, partition, offset, record_time
        FROM %s
        WHERE match(topic, %s)
        LIMIT 1 BY topic, partition, offset`, g.table("events"), dlq)
}

// redrivenSQL is every dead-letter record a redrive job produced (an item
// before its job's cursor): topic, partition, offset, redriven_at.
func (g *generator) redrivenSQL() string {
	return fmt.Sprintf(`SELECT i.topic AS topic, i.partition AS partition, i.offset AS offset, max(j.updated_at) AS redriven_at
        FROM %s AS i
        GLOBAL INNER JOIN (SELECT job_id, cursor, updated_at FROM %s FINAL WHERE kind = 'redrive') AS j ON i.job_id = j.job_id
        WHERE i.seq < j.cursor
        GROUP BY topic, partition, offset`, g.table("replay_items"), g.table("replay_jobs"))
}

// dlqWaitingSQL is every dead-letter record no redrive produced.
func (g *generator) dlqWaitingSQL(dlq string) string {
	return fmt.Sprintf(`SELECT d.topic AS topic, d.record_time AS record_time
    FROM (%s) AS d
    GLOBAL LEFT ANTI JOIN (%s) AS r ON d.topic = r.topic AND d.partition = r.partition AND d.offset = r.offset`,
		g.dlqRecordsSQL(dlq), g.redrivenSQL())
}

// dlqTopicsSQL has one row per dead-letter topic: records stored,
// redriven, waiting, the oldest waiting one's age and the last redrive.
func (g *generator) dlqTopicsSQL(dlq string) string {
	return fmt.Sprintf(`SELECT d.topic AS topic, count() AS stored,
       countIf(r.topic != '') AS redriven,
       countIf(r.topic = '') AS waiting,
       if(waiting = 0, NULL, dateDiff('second', minIf(d.record_time, r.topic = ''), now64(3))) AS oldest_waiting_age,
       if(redriven = 0, NULL, max(r.redriven_at)) AS last_redrive
FROM (%s) AS d
GLOBAL LEFT JOIN (%s) AS r ON d.topic = r.topic AND d.partition = r.partition AND d.offset = r.offset
GROUP BY topic
ORDER BY waiting DESC, topic`, g.dlqRecordsSQL(dlq), g.redrivenSQL())
}
