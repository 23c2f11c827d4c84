package collector

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
)

// auditTap runs a tap with the audit trail on until stop is called.
func auditTap(t *testing.T, brokers []string, store *chstore.Store, audit Audit, group, pattern string, maxRecords int) (c *Collector, stop func()) {
	t.Helper()
	cfg := Default()
	cfg.Group = group
	cfg.Topics.Include = []string{pattern}
	cfg.Batch.FlushInterval = 100 * time.Millisecond
	cfg.Topics.RefreshInterval = time.Second
	if maxRecords > 0 {
		cfg.Batch.MaxRecords = maxRecords
	}
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	c, err := New(cfg, kc, store, Settings{Logger: zerolog.Nop(), Audit: &audit})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, c.Start(ctx))
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			_ = c.Shutdown(context.Background())
		}
	}
	t.Cleanup(stop)
	return c, stop
}

func testAudit(t *testing.T) (Audit, *auditor.Verifier) {
	skey, vkey, err := auditor.GenerateKey("weft-test")
	require.NoError(t, err)
	signer, err := auditor.NewSigner(skey)
	require.NoError(t, err)
	v, err := auditor.NewVerifier(vkey)
	require.NoError(t, err)
	source, err := auditor.ParseSourceKey(auditor.GenerateSourceKey())
	require.NoError(t, err)
	return Audit{ClusterID: "test", Signer: signer, SourceKey: source, EveryLeaves: 1, Every: time.Hour, Dir: t.TempDir()}, v
}

// TestAuditTrailWithAbortsAndRedelivery: a transactional topic (aborts
// leave offset gaps), one undecodable record (quarantined: it has a leaf
// too), a second tap that reads everything again (a redelivery: no new
// leaf) and stores what was produced since. Each partition's log, rebuilt
// from audit_leaves, is whole and matches its latest signed checkpoint, and
// every stored row recomputes to its leaf's C_stored.
func TestAuditTrailWithAbortsAndRedelivery(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "payments.audit_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	produceTx := txProducer(ctx, t, brokers, topic, "PaymentRequested", true)
	produceTx(0, []string{"a1", "a2", "a3"}, kgo.TryAbort)
	produceTx(0, []string{"c1", "bad"}, kgo.TryCommit)
	produceTx(0, []string{"a4"}, kgo.TryAbort)
	produceTx(0, []string{"c3"}, kgo.TryCommit)
	produceTx(1, []string{"d1", "d2"}, kgo.TryCommit)

	audit, verifier := testAudit(t)
	pattern := regexp.QuoteMeta(topic)
	c, stop := auditTap(t, brokers, store, audit, "g1_"+testenv.Name(t), pattern, 0)
	waitStored(t, c, 5)
	stop()

	produceTx(0, []string{"a5"}, kgo.TryAbort)
	produceTx(0, []string{"c4"}, kgo.TryCommit)
	// Another group reads both partitions from the start: every record
	// but c4 is a redelivery.
	c, stop = auditTap(t, brokers, store, audit, "g2_"+testenv.Name(t), pattern, 0)
	waitStored(t, c, 6)
	time.Sleep(500 * time.Millisecond)
	stop()

	p0 := checkAuditLog(t, store, verifier, audit.ClusterID, topic, 0)
	// c1, bad, c3, c4 and three gaps: a1-a3 and their marker (the log
	// starts where the tap began reading, the partition's log start offset),
	// c1's commit marker, a4 and its marker; c3's marker, a5 and its marker.
	assert.Equal(t, []string{"gap 0-4", "record 4", "record 5", "gap 6-9", "record 9", "gap 10-13", "record 13"}, p0)
	p1 := checkAuditLog(t, store, verifier, audit.ClusterID, topic, 1)
	assert.Equal(t, []string{"record 0", "record 1"}, p1)
	assertSinkHasCheckpoints(t, audit, topic, 0)
}

// waitStored waits until c stored (or quarantined) n records.
func waitStored(t *testing.T, c *Collector, n int64) {
	t.Helper()
	require.Eventually(t, func() bool { st := c.Stats(); return st.Stored+st.Quarantined >= n },
		60*time.Second, 50*time.Millisecond, "tap stored %+v, want %d", c.Stats(), n)
}

// checkAuditLog rebuilds a partition's log from audit_leaves and checks it
// against the latest checkpoint and the stored rows; it returns the
// leaves as "kind offset" (a gap as "gap begin-end").
func checkAuditLog(t *testing.T, store *chstore.Store, v *auditor.Verifier, cluster, topic string, part int32) []string {
	t.Helper()
	ctx := context.Background()
	var rows []chstore.AuditLeafRow
	require.NoError(t, store.AuditLeaves(ctx, topic, part, func(r chstore.AuditLeafRow) error { rows = append(rows, r); return nil }))
	log := auditor.NewLog()
	var out []string
	seen := map[int64]bool{}
	leaves := map[int64]auditor.Leaf{}
	salts := map[int64]auditor.Salt{}
	var next int64 = -1
	for i, r := range rows {
		require.Equal(t, uint64(i), r.LeafIndex, "dense leaf indices, each once")
		require.Equal(t, auditor.LeafHash(r.Leaf), r.LeafHash)
		l, err := auditor.ParseLeaf(r.Leaf)
		require.NoError(t, err)
		_, err = log.Append(r.LeafHash)
		require.NoError(t, err)
		if next >= 0 {
			require.Equal(t, next, l.Offset, "leaf %d starts where the previous ended", i)
		}
		switch l.Kind {
		case auditor.KindRecord:
			require.False(t, seen[l.Offset], "offset %d logged twice", l.Offset)
			seen[l.Offset], leaves[l.Offset], next = true, l, l.Offset+1
			require.Len(t, r.Salt, auditor.SaltSize)
			salts[l.Offset] = auditor.Salt(r.Salt)
			out = append(out, fmt.Sprintf("record %d", l.Offset))
		case auditor.KindGap:
			next = l.End
			out = append(out, fmt.Sprintf("gap %d-%d", l.Offset, l.End))
		}
	}
	origin := auditor.LogOrigin(cluster, topic, part)
	cps, err := store.Checkpoints(ctx, origin)
	require.NoError(t, err)
	require.NotEmpty(t, cps)
	last := cps[len(cps)-1]
	opened, err := v.Open(last.Note, origin)
	require.NoError(t, err)
	assert.Equal(t, log.Size(), opened.Size, "the latest checkpoint covers every leaf")
	assert.Equal(t, log.Root(), opened.Root)
	for _, cp := range cps {
		_, err := v.Open(cp.Note, origin)
		require.NoError(t, err)
	}

	// Every stored row recomputes to its leaf's C_stored.
	stored := 0
	readEvents(t, store, topic, part, func(e event.Event) {
		l, ok := leaves[e.Offset]
		require.True(t, ok, "event at offset %d has a leaf", e.Offset)
		c, err := StoredEvent(&e).Commit(salts[e.Offset])
		require.NoError(t, err)
		assert.Equal(t, l.Stored, c, "event at offset %d recomputes to its leaf", e.Offset)
		stored++
	})
	readQuarantine(t, store, topic, part, func(q event.Quarantined) {
		l, ok := leaves[q.Offset]
		require.True(t, ok, "quarantined record at offset %d has a leaf", q.Offset)
		c, err := StoredQuarantined(&q).Commit(salts[q.Offset])
		require.NoError(t, err)
		assert.Equal(t, l.Stored, c, "quarantined record at offset %d recomputes to its leaf", q.Offset)
		stored++
	})
	assert.Equal(t, len(leaves), stored, "a leaf per stored record")
	return out
}

func readEvents(t *testing.T, store *chstore.Store, topic string, part int32, fn func(event.Event)) {
	t.Helper()
	rows, err := testenv.Conn(t).Query(context.Background(), `SELECT topic, partition, offset, record_key, record_time,
event_id, event_type, service, order_id, event_time, causation_id, correlation_id, trace_id, span_id, parent_span_id,
trace_state, version_vector, idempotency_key, format, headers, payload, payload_hash
FROM `+store.Table("events")+` FINAL WHERE topic = ? AND partition = ? ORDER BY offset`, topic, part)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var e event.Event
		var format, payload string
		require.NoError(t, rows.Scan(&e.Topic, &e.Partition, &e.Offset, &e.Key, &e.RecordTime, &e.EventID, &e.Type, &e.Service,
			&e.OrderID, &e.EventTime, &e.CausationID, &e.CorrelationID, &e.TraceID, &e.SpanID, &e.ParentSpanID, &e.TraceState,
			&e.VersionVector, &e.IdempotencyKey, &format, &e.Headers, &payload, &e.PayloadHash))
		e.Format, e.Payload = event.Format(format), []byte(payload)
		fn(e)
	}
	require.NoError(t, rows.Err())
}

func readQuarantine(t *testing.T, store *chstore.Store, topic string, part int32, fn func(event.Quarantined)) {
	t.Helper()
	rows, err := testenv.Conn(t).Query(context.Background(), `SELECT topic, partition, offset, record_key, record_time,
value, value_size, headers, reason
FROM `+store.Table("quarantine")+` FINAL WHERE topic = ? AND partition = ? ORDER BY offset`, topic, part)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var q event.Quarantined
		var key, value string
		var size uint64
		require.NoError(t, rows.Scan(&q.Topic, &q.Partition, &q.Offset, &key, &q.RecordTime, &value, &size, &q.Headers, &q.Reason))
		q.Key, q.Value, q.Size = []byte(key), []byte(value), int(size)
		fn(q)
	}
	require.NoError(t, rows.Err())
}

// assertSinkHasCheckpoints: the directory sink holds the log's checkpoints.
func assertSinkHasCheckpoints(t *testing.T, audit Audit, topic string, part int32) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(audit.Dir, url.PathEscape(auditor.LogOrigin(audit.ClusterID, topic, part))+".checkpoints"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "checkpoint ")
	assert.Contains(t, string(b), auditor.LogOrigin(audit.ClusterID, topic, part)+"\n")
}

// TestAuditTrailSurvivesRestart: a tap stopped mid-stream and a new one in
// the same group (resuming from the committed offsets and the stored log
// states) leave each partition one whole log: no fork, no leaf twice, none
// skipped.
func TestAuditTrailSurvivesRestart(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "orders.audit_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer cl.Close()
	const n = 2000
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint("o-", i%50)),
			Value: []byte(fmt.Sprintf(`{"event_type":"OrderPlaced","order_id":"o-%d","event_id":"e%d"}`, i%50, i))}, nil)
	}
	require.NoError(t, cl.Flush(ctx))

	audit, verifier := testAudit(t)
	audit.EveryLeaves = 100
	group, pattern := "g_"+testenv.Name(t), regexp.QuoteMeta(topic)
	c, stop := auditTap(t, brokers, store, audit, group, pattern, 50)
	require.Eventually(t, func() bool { return c.Stats().Consumed >= n/4 }, time.Minute, time.Millisecond)
	stop() // mid-stream: batches in flight are stored or read again
	c, stop = auditTap(t, brokers, store, audit, group, pattern, 50)
	var leaves int
	require.Eventually(t, func() bool {
		leaves = 0
		for p := int32(0); p < 2; p++ {
			require.NoError(t, store.AuditLeaves(ctx, topic, p, func(chstore.AuditLeafRow) error { leaves++; return nil }))
		}
		return leaves >= n
	}, time.Minute, 100*time.Millisecond, "leaves %d of %d", leaves, n)
	stop()
	total := 0
	for p := int32(0); p < 2; p++ {
		total += len(checkAuditLog(t, store, verifier, audit.ClusterID, topic, p))
	}
	assert.Equal(t, n, total, "one record leaf per record, no gaps on a non-transactional topic")
}

// txProducer returns a function that produces, in one transaction to one
// partition of topic, a record of eventType per id (id "bad": an
// undecodable one), with a header h=v-<id> when headers is set, and
// commits or aborts it.
func txProducer(ctx context.Context, t *testing.T, brokers []string, topic, eventType string, headers bool) func(part int32, ids []string, commit kgo.TransactionEndTry) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID("tx-"+testenv.Name(t)), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return func(part int32, ids []string, commit kgo.TransactionEndTry) {
		require.NoError(t, cl.BeginTransaction())
		for _, id := range ids {
			v := `{"event_type":"` + eventType + `","order_id":"o-` + id + `","event_id":"` + id + `"}`
			if id == "bad" {
				v = `{not json`
			}
			r := &kgo.Record{Partition: part, Key: []byte("o-" + id), Value: []byte(v)}
			if headers {
				r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte("v-" + id)}}
			}
			require.NoError(t, cl.ProduceSync(ctx, r).FirstErr())
		}
		require.NoError(t, cl.EndTransaction(ctx, commit))
	}
}

// TestAuditCheckpointsIdleLog: a log that grew and then went quiet is
// checkpointed once audit.checkpoint.every has passed, while the tap
// runs — not only when the next batch is stored or the tap stops.
func TestAuditCheckpointsIdleLog(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "orders.audit_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produce := orderOneProducer(ctx, t, brokers, topic)
	audit, _ := testAudit(t)
	audit.EveryLeaves, audit.Every = 1_000_000, 3*time.Second
	origin := auditor.LogOrigin(audit.ClusterID, topic, 0)
	var last chstore.CheckpointRow
	checkpointed := func() uint64 {
		row, _, err := store.LastCheckpoint(ctx, origin)
		require.NoError(t, err)
		last = row
		return row.Size // 0 when !ok
	}

	produce(0, 10)
	_, stop := auditTap(t, brokers, store, audit, "g_"+testenv.Name(t), regexp.QuoteMeta(topic), 0)
	defer stop()
	// The log's first checkpoint is due at once (it has none).
	require.Eventually(t, func() bool { return checkpointed() == 10 }, time.Minute, 50*time.Millisecond)
	first := last.CreatedAt
	produce(10, 15)
	require.Eventually(t, func() bool { return checkpointed() == 15 }, 30*time.Second, 50*time.Millisecond,
		"the 5 leaves stored after the first checkpoint get one while the tap idles")
	assert.GreaterOrEqual(t, last.CreatedAt.Sub(first), audit.Every-10*time.Millisecond, "not before audit.checkpoint.every")
}

// orderOneProducer returns a function that produces to topic, and flushes,
// the events e<from>…e<to-1> of order o-1.
func orderOneProducer(ctx context.Context, t *testing.T, brokers []string, topic string) func(from, to int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return func(from, to int) {
		for i := from; i < to; i++ {
			cl.Produce(ctx, &kgo.Record{Key: []byte("o-1"),
				Value: []byte(fmt.Sprintf(`{"event_type":"OrderPlaced","order_id":"o-1","event_id":"e%d"}`, i))}, nil)
		}
		require.NoError(t, cl.Flush(ctx))
	}
}
