package dashboards

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/dashboards/internal/grafanasql"
	"github.com/weft-sh/weft/internal/chstore"
)

// demoAudit turns the demo tap's audit trail on, signed, checkpointing
// every log when the tap stops.
func demoAudit(t *testing.T) *collector.Audit {
	t.Helper()
	skey, _, err := auditor.GenerateKey("weft-dashboards")
	require.NoError(t, err)
	signer, err := auditor.NewSigner(skey)
	require.NoError(t, err)
	return &collector.Audit{ClusterID: "dash", Signer: signer, EveryLeaves: 100_000, Every: time.Hour, Dir: t.TempDir()}
}

// recordActions verifies the demo's trail with `weft audit verify`'s code
// (it must hold), then logs operator actions the way weft does
// (collector.ActionLog, here without a signing key: its checkpoints are
// unsigned): a failed verify 20 minutes ago, an acknowledgement on an
// order 15 minutes ago, a successful verify now with that run's summary.
// A fourth action is stored as a writer that died before checkpointing it
// would leave it: one leaf past the actions log's last checkpoint.
func (l *loaded) recordActions(t *testing.T, store *chstore.Store, audit *collector.Audit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	verifier, err := auditor.NewVerifier(audit.Signer.VerifierKey())
	require.NoError(t, err)
	rep, err := collector.VerifyAudit(ctx, store, collector.AuditVerify{ClusterID: audit.ClusterID, Verifier: verifier, CheckpointDir: audit.Dir})
	require.NoError(t, err)
	require.Empty(t, rep.Findings, "the demo tap's trail verifies")
	var leaves, rows uint64
	for _, lr := range rep.Logs {
		leaves, rows = leaves+lr.Leaves, rows+lr.Rows
	}
	summary := fmt.Sprintf("VERIFIED: %d logs, %d leaves, %d rows; checkpoints verified with %s", len(rep.Logs), leaves, rows, rep.VerifierKey)

	now := time.Now()
	order := l.manifest.Orders[0].ID
	actions := collector.NewActionLog(collector.Audit{ClusterID: audit.ClusterID}, store)
	for _, a := range []struct {
		auditor.Action
		orderID string
	}{
		{Action: auditor.Action{TimeMs: now.Add(-20 * time.Minute).UnixMilli(), Actor: "alice", Origin: "cli alice@ops-1",
			Verb: "verify", Resource: "logs", Outcome: auditor.OutcomeFailure, Detail: "TAMPERED: 1 findings in 9 logs, 900 leaves, 900 rows"}},
		{Action: auditor.Action{TimeMs: now.Add(-15 * time.Minute).UnixMilli(), Actor: "bob", Origin: "http 10.0.0.7:51200",
			Verb: "ack", Resource: "finding/F-1", Outcome: auditor.OutcomeSuccess, Detail: "customer called",
			Targets: []auditor.Position{{Topic: "orders", Partition: 0, Offset: 7}}}, orderID: order},
		{Action: auditor.Action{Actor: "alice", Origin: "cli alice@ops-1", Verb: "verify", Resource: "logs",
			Outcome: auditor.OutcomeSuccess, Detail: summary}},
	} {
		_, err := actions.Record(ctx, a.Action, a.orderID)
		require.NoError(t, err)
	}

	size, state, err := store.LatestActionState(ctx)
	require.NoError(t, err)
	log, err := auditor.ParseLogState(state)
	require.NoError(t, err)
	at := time.Now().UTC()
	crashed := auditor.Action{TimeMs: at.UnixMilli(), Actor: "carol", Origin: "cli carol@ops-2", Verb: "export",
		Resource: "order/" + order, Outcome: auditor.OutcomeSuccess}
	leaf, err := crashed.MarshalBinary()
	require.NoError(t, err)
	hash := auditor.LeafHash(leaf)
	_, err = log.Append(hash)
	require.NoError(t, err)
	state, err = log.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, store.InsertAction(ctx, chstore.ActionRow{LeafIndex: size, Time: at, Actor: crashed.Actor, Origin: crashed.Origin,
		Verb: crashed.Verb, Resource: crashed.Resource, Outcome: crashed.Outcome.String(), OrderID: order,
		Leaf: leaf, LeafHash: hash, State: state, StoredAt: at}))
}

// checkAudit compares the audit dashboard with the demo's trail and the
// actions recordActions stored; then it stores a record without its leaf
// and requires the Logs table to show it. It runs last: the record is in
// the demo's database for good.
func (l *loaded) checkAudit(t *testing.T, d Dashboard, run map[string]panelRun) {
	logs := run["Logs"]["A"]
	require.NotEmpty(t, logs.rows)
	at := func(row []any, col string) string {
		i := logs.col(col)
		require.GreaterOrEqual(t, i, 0, "Logs has a column %s", col)
		return fmt.Sprint(row[i])
	}
	partitions := 0
	for _, row := range logs.rows {
		name := at(row, "log")
		if name == "actions" {
			assert.Equal(t, "4", at(row, "leaves"), "four actions")
			assert.Equal(t, "3", at(row, "checkpointed"), "checkpointed after each action but the crashed writer's")
			assert.Equal(t, "1", at(row, "behind"))
			assert.Equal(t, "UNSIGNED", at(row, "signature"))
			assert.Equal(t, "weft/dash/actions", at(row, "origin"))
			continue
		}
		partitions++
		_, demoTopic := l.manifest.RecordsPerTopic[strings.Split(name, "/")[0]]
		assert.True(t, demoTopic, "%s is a partition of a demo topic", name)
		assert.Equal(t, "0", at(row, "behind"), "%s: the tap checkpointed every log when it stopped", name)
		assert.Equal(t, at(row, "leaves"), at(row, "checkpointed"), name)
		assert.Equal(t, "signed", at(row, "signature"), name)
		assert.Equal(t, "0", at(row, "rows_not_logged"), "%s: every stored record has its leaf", name)
		assert.Equal(t, at(row, "stored_rows"), at(row, "record_leaves"), "%s: one record leaf per stored record", name)
		assert.Equal(t, "weft/dash/"+name, at(row, "origin"))
	}
	assert.Positive(t, partitions)
	assert.Equal(t, float64(partitions+1), numberAt(run["Logs in the trail"]["A"]), "one log per partition, and the actions log")
	assert.Equal(t, 1.0, numberAt(run["Leaves not checkpointed"]["A"]), "the crashed writer's action")
	wait := run["Longest wait for a checkpoint"]["A"]
	require.Len(t, wait.rows, 1)
	require.NotNil(t, wait.rows[0][0], "the actions log waits for a checkpoint")
	assert.Less(t, numberAt(wait), 300.0, "since its last checkpoint, made by this test")
	assert.Equal(t, 1.0, numberAt(run["Logs with unsigned checkpoints"]["A"]), "the actions log")

	assert.Equal(t, 1.0, numberAt(run["Last verify"]["A"]), "the last verify verified")
	assert.Less(t, numberAt(run["Since last verify"]["A"]), 300.0)
	assert.Equal(t, 1.0, numberAt(run["Failed verify runs"]["A"]))
	assert.Equal(t, 2.0, numberAt(run["Verify runs in the time range"]["A"]))
	verifies := run["Verify runs"]["A"]
	assert.Equal(t, []string{"success", "failure"}, verifies.values("outcome"), "newest first")
	require.Len(t, verifies.values("summary"), 2)
	assert.True(t, strings.HasPrefix(verifies.values("summary")[0], "VERIFIED: "), verifies.values("summary")[0])

	acts := run["Operator actions"]["A"]
	assert.Equal(t, []string{"export", "verify", "ack", "verify"}, acts.values("verb"), "newest first")
	assert.Equal(t, []string{l.manifest.Orders[0].ID, "", l.manifest.Orders[0].ID, ""}, acts.values("order_id"))
	assert.Equal(t, []string{"0", "0", "1", "0"}, acts.values("targets"))

	// Every record stored was logged, in the same batch.
	sums := map[string]float64{}
	series := run["Records stored and logged"]["A"]
	for i, s := range series.values("series") {
		var v float64
		_, _ = fmt.Sscan(fmt.Sprint(series.rows[i][series.col("value")]), &v)
		sums[s] += v
	}
	assert.Equal(t, float64(l.manifest.Records()), sums["stored"])
	assert.Equal(t, sums["stored"], sums["logged"])
	topics := slices.Compact(slices.Sorted(slices.Values(run["Leaves appended by topic"]["A"].values("topic"))))
	assert.Len(t, topics, len(l.manifest.RecordsPerTopic), "every demo topic has leaves")

	// A record stored past a log's last leaf: the trail's tap lag.
	lagging := logs.values("log")[len(logs.rows)-1]
	require.NotEqual(t, "actions", lagging)
	topic, part, _ := strings.Cut(lagging, "/")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Sent at once to its shard on the cluster layout, as weft's inserts are.
	_, err := l.db.ExecContext(ctx, "INSERT INTO quarantine (topic, partition, offset, reason, quarantined_at) SETTINGS distributed_foreground_insert = 1 VALUES (?, ?, 1000000, 'test', now64(3))",
		topic, part)
	require.NoError(t, err)
	var sql string
	for _, p := range panels(d.Model) {
		if title(p) == "Logs" {
			sql = p.Targets[0].(ClickHouseQuery).RawSql
		}
	}
	after := l.query(t, l.expand(t, sql, grafanasql.Variables{}))
	require.Equal(t, lagging, after.values("log")[0], "the lagging log is listed first")
	row := after.rows[0]
	assert.Equal(t, "1", fmt.Sprint(row[after.col("rows_not_logged")]))
	assert.Equal(t, fmt.Sprint(row[after.col("record_leaves")].(uint64)+1), fmt.Sprint(row[after.col("stored_rows")]))
}
