package collector

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
)

// runAuditTap runs a tap with the audit trail on and hands back Run's
// error on done; cancel stops it.
func runAuditTap(t *testing.T, brokers []string, store *chstore.Store, audit Audit, group, pattern string) (c *Collector, done <-chan error, cancel func()) {
	t.Helper()
	cfg := Default()
	cfg.Group = group
	cfg.Topics.Include = []string{pattern}
	cfg.Batch.FlushInterval = 100 * time.Millisecond
	cfg.Batch.MaxRecords = 50
	cfg.Topics.RefreshInterval = time.Second
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	c, err := New(cfg, kc, store, Settings{Logger: zerolog.Nop(), Audit: &audit})
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	require.NoError(t, c.Start(ctx))
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	t.Cleanup(func() { stop(); _ = c.Shutdown(context.Background()) })
	return c, errc, stop
}

// produceOrders produces n plain order events to topic, numbered from
// first, and waits until they are acknowledged.
func produceOrders(ctx context.Context, t *testing.T, brokers []string, topic string, first, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer cl.Close()
	for i := first; i < first+n; i++ {
		cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint("o-", i%7)),
			Value: []byte(fmt.Sprintf(`{"event_type":"OrderPlaced","order_id":"o-%d","event_id":"e%d"}`, i%7, i))}, nil)
	}
	require.NoError(t, cl.Flush(ctx))
}

// countLeaves is how many leaves the log of topic/part holds.
func countLeaves(t *testing.T, store *chstore.Store, topic string, part int32) int {
	t.Helper()
	n := 0
	require.NoError(t, store.AuditLeaves(context.Background(), topic, part, func(chstore.AuditLeafRow) error { n++; return nil }))
	return n
}

// TestAuditResumeChecksLastCheckpoint: a tap stores a partition's log with
// checkpoints along the way; each case copies what it stored into a fresh
// database, tampers with the log's end as a DBA (or a lost batch) could,
// and a second tap, reading the partition again, resumes the log only when
// its stored end extends the last checkpoint. Otherwise Run stops with
// ErrAuditLogDiverged naming the log, and stores no leaf.
func TestAuditResumeChecksLastCheckpoint(t *testing.T) {
	brokers := testenv.Kafka(t)
	seed := testenv.Store(t)
	topic := "orders.resume_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 300
	produceOrders(ctx, t, brokers, topic, 0, n)

	audit, verifier := testAudit(t)
	audit.EveryLeaves = 100
	pattern := regexp.QuoteMeta(topic)
	c, stop := auditTap(t, brokers, seed, audit, "g_"+testenv.Name(t), pattern, 50)
	waitStored(t, c, n)
	stop()
	require.Equal(t, n, countLeaves(t, seed, topic, 0))
	origin := auditor.LogOrigin(audit.ClusterID, topic, 0)
	cps, err := seed.Checkpoints(ctx, origin)
	require.NoError(t, err)
	require.Greater(t, len(cps), 2, "checkpoints along the way")
	require.Equal(t, uint64(n), cps[len(cps)-1].Size, "and one of the whole log when the tap stopped")
	earlier := cps[len(cps)-2].Size
	head, err := seed.AuditHead(ctx, topic, 0, 0)
	require.NoError(t, err)
	produceOrders(ctx, t, brokers, topic, n, 20) // for the second tap to store

	conn := testenv.Conn(t)
	exec := func(t *testing.T, q string, args ...any) { require.NoError(t, conn.Exec(ctx, q, args...), q) }
	cases := []struct {
		name   string
		tamper func(t *testing.T, s *chstore.Store)
		want   string // in Run's error; "" resumes
	}{
		{"untouched", func(*testing.T, *chstore.Store) {}, ""},
		{"the last batch's leaves lost", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_leaves")+` DELETE WHERE leaf_index >= ?`, n-50)
		}, "leaves were removed"},
		{"the log's end cut inside a batch", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_leaves")+` DELETE WHERE leaf_index >= ?`, n-10)
		}, "carries"},
		{"every leaf deleted", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `TRUNCATE TABLE `+s.Table("audit_leaves"))
		}, "none is stored"},
		{"a forged state on the newest leaf", func(t *testing.T, s *chstore.Store) {
			forged := append([]byte(nil), head.States[0]...)
			forged[len(forged)-1] ^= 1 // a hash of the compact range
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_leaves")+` UPDATE state = ? WHERE leaf_index = ?`, string(forged), n-1)
		}, "another root than its last checkpoint"},
		{"a leaf changed after the last checkpoint left", func(t *testing.T, s *chstore.Store) {
			// The newest checkpoint removed (and its sink copy unread), a
			// leaf after the one before it rewritten.
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_checkpoints")+` DELETE WHERE size = ?`, n)
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_leaves")+` UPDATE leaf_hash = toFixedString(unhex(repeat('00', 32)), 32) WHERE leaf_index = ?`, earlier+1)
		}, "does not extend its last checkpoint"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testenv.Store(t)
			for _, table := range []string{"events", "quarantine", "audit_leaves", "audit_checkpoints"} {
				exec(t, `INSERT INTO `+s.Table(table)+` SELECT * FROM `+seed.Table(table))
			}
			tc.tamper(t, s)
			leaves := countLeaves(t, s, topic, 0)
			// A new group reads the partition from the start: the log is
			// loaded with the first batch.
			c, done, stop := runAuditTap(t, brokers, s, audit, fmt.Sprintf("g%d_%s", i, testenv.Name(t)), pattern)
			if tc.want == "" {
				require.Eventually(t, func() bool { return countLeaves(t, s, topic, 0) == n+20 }, time.Minute, 50*time.Millisecond,
					"the log resumes and logs the new records only")
				stop()
				require.NoError(t, <-done)
				rep, err := VerifyAudit(ctx, s, AuditVerify{ClusterID: audit.ClusterID, Topic: topic, Verifier: verifier})
				require.NoError(t, err)
				assert.Empty(t, rep.Findings)
				return
			}
			select {
			case err := <-done:
				require.ErrorIs(t, err, ErrAuditLogDiverged)
				assert.ErrorContains(t, err, "audit log "+origin+": ")
				assert.ErrorContains(t, err, tc.want)
			case <-time.After(time.Minute):
				t.Fatalf("the tap did not stop; stats %+v", c.Stats())
			}
			assert.Equal(t, leaves, countLeaves(t, s, topic, 0), "no leaf stored on a log that does not extend its checkpoint")
			assert.Zero(t, c.Stats().Stored, "nor its batch committed as stored")
		})
	}
}

// tapWithoutKafka is a collector with the audit trail on that is never
// started: a test hands it records and calls insert, as storeLoop does.
func tapWithoutKafka(t *testing.T, store *chstore.Store, audit Audit) *Collector {
	t.Helper()
	c, err := New(Default(), kafkaconn.Default(), store, Settings{Logger: zerolog.Nop(), Audit: &audit})
	require.NoError(t, err)
	return c
}

// batchOf is a batch of the records of topic/0 at offsets [from, to).
func batchOf(c *Collector, topic string, from, to int64) *batch {
	b := newBatch()
	for off := from; off < to; off++ {
		c.add(b, &kgo.Record{Topic: topic, Offset: off, Timestamp: time.UnixMilli(1_700_000_000_000 + off),
			Key: []byte("o-1"), Value: []byte(fmt.Sprintf(`{"event_type":"OrderPlaced","order_id":"o-1","event_id":"e%d"}`, off))})
	}
	return b
}

// TestAuditLeavesRestagedWhenAnotherTapMovedTheLog: tap A stages a batch
// on a partition's log; before A stores the leaves, tap B (the partition's
// next owner, A having lost it) stores leaves of the same records and
// more. A's check before its leaves go in sees the log moved, loads it
// again and stages again: the records B logged get no second leaf, and the
// log stays one log. An attempt of A's own that landed although it failed
// is recognised as A's, and its retry is deduplicated.
func TestAuditLeavesRestagedWhenAnotherTapMovedTheLog(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	topic := "orders.moved_" + testenv.Name(t)
	audit, verifier := testAudit(t)
	a, b := tapWithoutKafka(t, store, audit), tapWithoutKafka(t, store, audit)

	require.NoError(t, a.insert(ctx, batchOf(a, topic, 0, 10)))
	ba := batchOf(a, topic, 10, 20)
	st, err := a.audit.stage(ctx, ba)
	require.NoError(t, err)
	ba.auditStage = st
	require.Equal(t, 10, len(st.rows), "A staged leaves 10-19")

	require.NoError(t, b.insert(ctx, batchOf(b, topic, 10, 25)), "B loads the log A stored and logs 10-24")
	require.NoError(t, a.insert(ctx, ba))
	assert.Equal(t, 1, ba.restaged, "A saw the log move and staged again")
	assert.Zero(t, len(ba.auditStage.rows), "every record of A's batch is logged already")
	assert.Equal(t, 25, countLeaves(t, store, topic, 0))

	// A's next batch: its leaves land, the insert reports an error (as a
	// timeout would), and the retry finds its own leaves at the log's end.
	bn := batchOf(a, topic, 20, 30)
	st, err = a.audit.stage(ctx, bn)
	require.NoError(t, err)
	bn.auditStage = st
	require.Equal(t, 5, len(st.rows), "25-29: A's log was loaded again and knows B's leaves")
	require.NoError(t, store.InsertAuditLeaves(ctx, st.rows, time.Now(), auditToken(bn.token(), st)))
	require.NoError(t, a.insert(ctx, bn))
	assert.Zero(t, bn.restaged, "the log's end is A's own staging")
	assert.Equal(t, 30, countLeaves(t, store, topic, 0), "the retry was deduplicated")

	a.audit.flush(ctx)
	rep, err := VerifyAudit(ctx, store, AuditVerify{ClusterID: audit.ClusterID, Topic: topic, Verifier: verifier})
	require.NoError(t, err)
	assert.Empty(t, rep.Findings)
	require.Len(t, rep.Logs, 1)
	assert.Equal(t, uint64(30), rep.Logs[0].Records)
}

// TestAuditNewLogStartsWhereTheTapBegan: a group that consumed a
// partition before the audit trail was on has a committed offset; the
// partition's new log accounts from there, so the aborted transaction
// between it and the first record stored is a gap leaf, and nothing before
// the committed offset is claimed.
func TestAuditNewLogStartsWhereTheTapBegan(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "orders.start_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produceTx := txProducer(ctx, t, brokers, topic, "OrderPlaced", false)
	produceTx(0, []string{"c1", "c2", "c3"}, kgo.TryCommit) // 0-2, marker 3

	group, pattern := "g_"+testenv.Name(t), regexp.QuoteMeta(topic)
	cfg := Default()
	cfg.Group = group
	cfg.Topics.Include = []string{pattern}
	cfg.Batch.FlushInterval = 100 * time.Millisecond
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	plain, err := New(cfg, kc, store, Settings{Logger: zerolog.Nop()}) // the trail off
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	require.NoError(t, plain.Start(runCtx))
	done := make(chan error, 1)
	go func() { done <- plain.Run(runCtx) }()
	waitStored(t, plain, 3)
	stop()
	require.NoError(t, <-done)
	require.NoError(t, plain.Shutdown(ctx))

	produceTx(0, []string{"a1"}, kgo.TryAbort)  // 4, marker 5
	produceTx(0, []string{"c4"}, kgo.TryCommit) // 6, marker 7
	audit, verifier := testAudit(t)
	c, stopAudit := auditTap(t, brokers, store, audit, group, pattern, 0)
	waitStored(t, c, 1)
	stopAudit()
	// The committed offset is 3 (after c3): the log begins there, not at
	// the partition's log start (0).
	var leaves []string
	require.NoError(t, store.AuditLeaves(ctx, topic, 0, func(r chstore.AuditLeafRow) error {
		leaves = append(leaves, fmt.Sprintf("%s %d-%d", r.Kind, r.Offset, r.End))
		return nil
	}))
	assert.Equal(t, []string{"gap 3-6", "record 6-0"}, leaves)
	rep, err := VerifyAudit(ctx, store, AuditVerify{ClusterID: audit.ClusterID, Topic: topic, Verifier: verifier})
	require.NoError(t, err)
	assert.Empty(t, rep.Findings)
	require.Len(t, rep.Logs, 1)
	assert.Equal(t, uint64(3), rep.Logs[0].Before, "c1-c3, stored before the trail was on")
}

// TestAuditTruncationFromKafka: Kafka tells the tap, through franz-go's
// *kgo.ErrDataLoss, that the partition ends before where the group had
// read to in that leader epoch — what an unclean leader election leaves a
// consumer with. One broker cannot elect an unclean leader, and a topic
// deleted and recreated is not adopted by franz-go (UNKNOWN_TOPIC_ID, no
// loss reported), so the group's position is set past the end with its
// epoch, as the lost leader would have left it: franz-go validates it with
// OffsetForLeaderEpoch and reports the loss. The log gets a gap leaf for
// the offsets the group had read past its last record, a truncation leaf
// at the offset Kafka resumed at, and the records produced since, logged
// from there; VerifyAudit finds nothing.
func TestAuditTruncationFromKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "orders.truncated_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produceOrders(ctx, t, brokers, topic, 0, 20)
	audit, verifier := testAudit(t)
	group, pattern := "g_"+testenv.Name(t), regexp.QuoteMeta(topic)
	c, stop := auditTap(t, brokers, store, audit, group, pattern, 0)
	waitStored(t, c, 20)
	stop()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	require.NoError(t, err)
	end, ok := ends.Lookup(topic, 0)
	require.True(t, ok)
	require.Equal(t, int64(20), end.Offset)
	commits, err := adm.CommitOffsets(ctx, group, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 30, LeaderEpoch: end.LeaderEpoch}}})
	require.NoError(t, err)
	require.NoError(t, commits.Error())

	c, done, stopRun := runAuditTap(t, brokers, store, audit, group, pattern)
	require.Eventually(t, func() bool { return countLeaves(t, store, topic, 0) == 22 }, 30*time.Second, 50*time.Millisecond,
		"the loss is stored on its own: a gap and a truncation leaf")
	produceOrders(ctx, t, brokers, topic, 20, 3)
	require.Eventually(t, func() bool { return countLeaves(t, store, topic, 0) == 25 }, 30*time.Second, 50*time.Millisecond)
	stopRun()
	require.NoError(t, <-done)
	require.Equal(t, int64(3), c.Stats().Stored)

	var leaves []string
	require.NoError(t, store.AuditLeaves(ctx, topic, 0, func(r chstore.AuditLeafRow) error {
		if r.LeafIndex >= 19 {
			leaves = append(leaves, fmt.Sprintf("%d %s %d-%d", r.LeafIndex, r.Kind, r.Offset, r.End))
		}
		return nil
	}))
	assert.Equal(t, []string{"19 record 19-0", "20 gap 20-30", "21 truncation 20-0", "22 record 20-0", "23 record 21-0", "24 record 22-0"}, leaves)
	rep, err := VerifyAudit(ctx, store, AuditVerify{ClusterID: audit.ClusterID, Topic: topic, Verifier: verifier})
	require.NoError(t, err)
	assert.Empty(t, rep.Findings)
}
