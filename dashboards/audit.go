package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// auditTrail shows the audit trail (docs/audit.md): per Merkle log its
// size, its last checkpoint and how far the log has grown past it, whether
// checkpoints are signed, whether every stored record got its leaf, and
// the operator actions, verify runs first. It reads audit_leaves,
// audit_checkpoints and audit_actions.
func (g *generator) auditTrail() *dashboard.DashboardBuilder {
	heads := g.auditHeadsSQL()
	actions := g.table("audit_actions")
	verifies := fmt.Sprintf("%s WHERE verb = 'verify'", actions)
	return g.newDashboard(UIDAudit, "weft / Audit trail",
		"The tamper-evident audit trail: every log's last checkpoint and the leaves not yet covered by one, unsigned checkpoints, stored records without a leaf, the last `weft audit verify` and every operator action.", false).
		WithRow(dashboard.NewRowBuilder("Logs and checkpoints")).
		WithPanel(statPanel("Logs in the trail",
			"Merkle logs in the trail: one per topic-partition weft stored records of with the audit trail on, plus the operator-actions log once an action was recorded.",
			"short", fmt.Sprintf("SELECT count() AS logs FROM (%s)", heads))).
		WithPanel(statPanel("Leaves not checkpointed",
			"Leaves appended to the logs after their last checkpoint, summed over logs. The tap checkpoints a log every audit.checkpoint.every_leaves leaves or audit.checkpoint.every (default 1m), so a little is normal; until a checkpoint covers them, these leaves are not yet signed.",
			"short", fmt.Sprintf("SELECT sum(behind) AS behind FROM (%s)", heads))).
		WithPanel(statPanel("Longest wait for a checkpoint",
			"Age of the last checkpoint of the logs that have grown past it, worst log: how long leaves have waited to be signed. Minutes past audit.checkpoint.every (default 1m) means the tap cannot store checkpoints or has stopped.",
			"s", fmt.Sprintf("SELECT max(checkpoint_age) AS wait FROM (%s) WHERE behind > 0", heads)).
			NoValue("none waiting").
			Thresholds(thresholds(300, 900))).
		WithPanel(statPanel("Logs with unsigned checkpoints",
			"Logs whose last checkpoint is not signed: weft has no signing key (audit.signing_key_file), so an auditor cannot authenticate their roots and `weft audit verify` reports NOT AUTHENTICATED.",
			"short", fmt.Sprintf("SELECT countIf(signature = 'UNSIGNED') AS unsigned FROM (%s)", heads)).
			Thresholds(alarmAt(1))).
		WithPanel(tablePanel("Logs",
			"One row per log. leaves is the log's size, checkpointed the size of its newest checkpoint, behind the leaves past it. stored_rows counts the partition's records stored in the time range (events and quarantine, each offset once) and record_leaves the record leaves stored then; rows_not_logged the stored rows past the log's last leaf, which should be zero or one batch: more means records are stored without their leaves.",
			g.auditLogsSQL(heads),
			columnUnit("checkpoint_age", "s"), thresholdColumn("rows_not_logged", thresholds(1, 100_000)), signatureColours()).
			Height(10)).
		WithPanel(timeseriesPanel("Records stored and logged",
			"Records stored per interval (events and quarantine, each offset once) beside the record leaves stored: the two lines coincide while every stored record gets its leaf. Stored above logged: redeliveries (stored again, no new leaf) or topics tapped with the trail off.",
			"short", g.storedVsLoggedSQL())).
		WithPanel(timeseriesPanel("Leaves appended by topic",
			"Leaves appended to the logs per interval, by topic: records, and gaps where offsets jump (transaction markers, aborted transactions, compaction). Flat zero while the topic has traffic: the trail is off or the tap is down.",
			"short", fmt.Sprintf(`SELECT $__timeInterval(stored_at) AS time, topic, count() AS leaves
FROM %s
WHERE $__timeFilter(stored_at)
GROUP BY time, topic
ORDER BY time, topic`, g.table("audit_leaves")))).
		WithRow(dashboard.NewRowBuilder("Verify runs")).
		WithPanel(statPanel("Last verify",
			"Outcome of the last `weft audit verify`: verified (the logs, checkpoints and rows all hold), failed (it found tampering or loss, or could not verify: its detail says which) or denied.",
			"none", fmt.Sprintf(`SELECT multiIf(outcome = 'success', 1, outcome = 'failure', 2, 3) AS verdict
FROM (SELECT argMax(outcome, (time, leaf_index)) AS outcome, count() AS runs FROM %s)
WHERE runs > 0`, verifies)).
			Mappings(verdictMappings()).
			NoValue("never run").
			ColorMode(common.BigValueColorModeBackground)).
		WithPanel(statPanel("Since last verify",
			"Time since the last `weft audit verify` ended. Tampering is found when verify runs: schedule it (daily, say) and alert on this.",
			"s", fmt.Sprintf("SELECT dateDiff('second', max(time), now64(3)) AS since FROM %s HAVING count() > 0", verifies)).
			NoValue("never run").
			Thresholds(thresholds(2*86400, 8*86400))).
		WithPanel(statPanel("Failed verify runs",
			"Verify runs in the time range that did not verify: they found tampering or loss, or could not read the trail. Each is in the table below with its summary.",
			"short", fmt.Sprintf("SELECT count() AS failed FROM %s AND outcome != 'success' AND $__timeFilter(time)", verifies)).
			Thresholds(alarmAt(1))).
		WithPanel(statPanel("Verify runs in the time range",
			"`weft audit verify` runs in the time range, whatever their outcome. Each run is itself an entry of the operator-actions log.",
			"short", fmt.Sprintf("SELECT count() AS runs FROM %s AND $__timeFilter(time)", verifies))).
		WithPanel(tablePanel("Verify runs",
			"Every verify run in the time range, newest first, with its summary line (logs, leaves and rows checked, findings, whether checkpoints were authenticated), who ran it and from where.",
			fmt.Sprintf(`SELECT time, outcome, detail AS summary, actor, origin, leaf_index
FROM %s AND $__timeFilter(time)
ORDER BY time DESC, leaf_index DESC
LIMIT 1000`, verifies),
			outcomeColours()).
			Height(8)).
		WithRow(dashboard.NewRowBuilder("Operator actions")).
		WithPanel(timeseriesPanel("Operator actions by verb",
			"Operator actions per interval by verb and outcome: acknowledgements, exports, erasures, verify runs, replays and redrives. Denied attempts are invalid access attempts (PCI DSS 10.2.1.4).",
			"short", fmt.Sprintf(`SELECT $__timeInterval(time) AS time, concat(verb, ' ', outcome) AS action, count() AS actions
FROM %s
WHERE $__timeFilter(time)
GROUP BY time, action
ORDER BY time, action`, actions)).Span(24)).
		WithPanel(tablePanel("Operator actions",
			"Every operator action in the time range, newest first: who, when, from where, what, on what and how it ended (the fields PCI DSS 10.2.2 asks of an audit entry); targets counts the records it acted on (an erasure's erased rows).",
			fmt.Sprintf(`SELECT time, verb, outcome, actor, origin, resource, order_id, length(targets) AS targets, detail, leaf_index
FROM %s
WHERE $__timeFilter(time)
ORDER BY time DESC, leaf_index DESC
LIMIT 1000`, actions),
			outcomeColours()))
}

// auditHeadsSQL has one row per log: its size (leaves), its newest
// checkpoint's size (checkpointed) and time, the leaves past it (behind),
// that checkpoint's age in seconds and whether it is signed. A partition's
// log is named topic/partition, the operator-actions log "actions": the
// checkpoints' origins (weft/<cluster>/<topic>/<partition>,
// weft/<cluster>/actions) without their first two elements.
func (g *generator) auditHeadsSQL() string {
	return fmt.Sprintf(`SELECT
        l.log AS log,
        l.leaves AS leaves,
        c.checkpointed AS checkpointed,
        l.leaves - c.checkpointed AS behind,
        if(c.checkpoints = 0, NULL, c.checkpointed_at) AS last_checkpoint_at,
        if(c.checkpoints = 0, NULL, dateDiff('second', c.checkpointed_at, now64(3))) AS checkpoint_age,
        multiIf(c.checkpoints = 0, 'none yet', c.signed, 'signed', 'UNSIGNED') AS signature,
        c.full_origin AS origin
    FROM
    (
        SELECT concat(topic, '/', toString(partition)) AS log, max(leaf_index) + 1 AS leaves
        FROM %s
        GROUP BY topic, partition
        UNION ALL
        SELECT 'actions' AS log, max(leaf_index) + 1 AS leaves
        FROM %s
        HAVING count() > 0
    ) AS l
    GLOBAL LEFT JOIN
    (
        SELECT arrayStringConcat(arraySlice(splitByChar('/', origin), 3), '/') AS log, any(origin) AS full_origin,
               argMax(size, (created_at, size)) AS checkpointed, max(created_at) AS checkpointed_at,
               argMax(signed, (created_at, size)) AS signed, count() AS checkpoints
        FROM %s
        GROUP BY log
    ) AS c ON c.log = l.log`, g.table("audit_leaves"), g.table("audit_actions"), g.table("audit_checkpoints"))
}

// storedRowsSQL is every stored record's coordinates in the time range,
// events and quarantined alike; t is the time column's name in the result.
func (g *generator) storedRowsSQL() string {
	return fmt.Sprintf(`SELECT topic, partition, offset, ingested_at AS t FROM %s WHERE $__timeFilter(ingested_at)
            UNION ALL
            SELECT topic, partition, offset, quarantined_at AS t FROM %s WHERE $__timeFilter(quarantined_at)`,
		g.table("events"), g.table("quarantine"))
}

// auditLogsSQL adds to every log its stored rows and record leaves in the
// time range, and the stored rows past its last leaf (where the next leaf
// starts: a gap's end, after a record, a truncation's offset).
func (g *generator) auditLogsSQL(heads string) string {
	leaves := g.table("audit_leaves")
	return fmt.Sprintf(`SELECT h.log AS log, leaves, checkpointed, behind, last_checkpoint_at, checkpoint_age, signature,
       r.stored_rows AS stored_rows, n.record_leaves AS record_leaves, r.rows_not_logged AS rows_not_logged, origin
FROM
(
    %s
) AS h
GLOBAL LEFT JOIN
(
    SELECT concat(s.topic, '/', toString(s.partition)) AS log, uniqExact(s.offset) AS stored_rows,
           uniqExactIf(s.offset, s.offset >= e.next) AS rows_not_logged
    FROM
    (
        %s
    ) AS s
    GLOBAL INNER JOIN
    (
        SELECT topic, partition, argMax(multiIf(kind = 'gap', end, kind = 'record', offset + 1, offset), leaf_index) AS next
        FROM %s
        GROUP BY topic, partition
    ) AS e ON e.topic = s.topic AND e.partition = s.partition
    GROUP BY s.topic, s.partition
) AS r ON r.log = h.log
GLOBAL LEFT JOIN
(
    SELECT concat(topic, '/', toString(partition)) AS log, count() AS record_leaves
    FROM %s
    WHERE kind = 'record' AND $__timeFilter(stored_at)
    GROUP BY topic, partition
) AS n ON n.log = h.log
ORDER BY rows_not_logged DESC, behind DESC, log`, heads, g.storedRowsSQL(), leaves, leaves)
}

// storedVsLoggedSQL: records stored and record leaves stored per interval.
func (g *generator) storedVsLoggedSQL() string {
	return fmt.Sprintf(`SELECT time, series, value
FROM
(
    SELECT $__timeInterval(t) AS time, 'stored' AS series, uniqExact(topic, partition, offset) AS value
    FROM
    (
        %s
    )
    GROUP BY time
    UNION ALL
    SELECT $__timeInterval(stored_at) AS time, 'logged' AS series, count() AS value
    FROM %s
    WHERE kind = 'record' AND $__timeFilter(stored_at)
    GROUP BY time
)
ORDER BY time, series`, g.storedRowsSQL(), g.table("audit_leaves"))
}

// alarmAt colours a count green below bad and red from it.
func alarmAt(bad float64) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().
		Mode(dashboard.ThresholdsModeAbsolute).
		Steps([]dashboard.Threshold{{Color: "green"}, {Value: cog.ToPtr(bad), Color: "red"}})
}

// thresholdColumn colours a table column's text by thresholds.
func thresholdColumn(column string, t *dashboard.ThresholdsConfigBuilder) cog.Builder[dashboard.DashboardFieldConfigSourceOverrides] {
	built, _ := t.Build() // a literal config: Build cannot fail
	return dashboard.NewDashboardFieldConfigSourceOverridesBuilder().
		Matcher(dashboard.MatcherConfig{Id: "byName", Options: column}).
		Properties([]dashboard.DynamicConfigValue{
			{Id: "thresholds", Value: built},
			{Id: "custom.cellOptions", Value: map[string]string{"type": "color-text"}},
		})
}

// textColours colours a table column's cells by value.
func textColours(column string, colours map[string]string) cog.Builder[dashboard.DashboardFieldConfigSourceOverrides] {
	opts := map[string]dashboard.ValueMappingResult{}
	for v, c := range colours {
		opts[v] = dashboard.ValueMappingResult{Color: cog.ToPtr(c)}
	}
	return dashboard.NewDashboardFieldConfigSourceOverridesBuilder().
		Matcher(dashboard.MatcherConfig{Id: "byName", Options: column}).
		Properties([]dashboard.DynamicConfigValue{
			{Id: "mappings", Value: []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: opts}}}},
			{Id: "custom.cellOptions", Value: map[string]string{"type": "color-text"}},
		})
}

// outcomeColours colours an action's outcome: success green, failure red,
// denied orange.
func outcomeColours() cog.Builder[dashboard.DashboardFieldConfigSourceOverrides] {
	return textColours("outcome", map[string]string{"success": "green", "failure": "red", "denied": "orange"})
}

// signatureColours colours a log's signature column.
func signatureColours() cog.Builder[dashboard.DashboardFieldConfigSourceOverrides] {
	return textColours("signature", map[string]string{"signed": "green", "UNSIGNED": "red", "none yet": "orange"})
}

// verdictMappings name the last verify's verdict (1 verified, 2 failed, 3 denied).
func verdictMappings() []dashboard.ValueMapping {
	result := func(text, colour string) dashboard.ValueMappingResult {
		return dashboard.ValueMappingResult{Text: cog.ToPtr(text), Color: cog.ToPtr(colour)}
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			"1": result("verified", "green"),
			"2": result("failed", "red"),
			"3": result("denied", "orange"),
		}}}}
}
