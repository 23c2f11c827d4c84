package collector

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// kafkaVerifier runs VerifyAudit with Kafka on, as `weft audit verify
// --kafka` does: a client with no group, the tap's group, its source key
// (nil: offsets only) and its decoder.
func kafkaVerifier(t *testing.T, brokers []string, store *chstore.Store, audit Audit, group string) func(topic string) AuditVerifyReport {
	t.Helper()
	return kafkaVerifierSince(t, brokers, store, audit, group, time.Time{})
}

// kafkaVerifierSince is kafkaVerifier with --since.
func kafkaVerifierSince(t *testing.T, brokers []string, store *chstore.Store, audit Audit, group string, since time.Time) func(topic string) AuditVerifyReport {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	dec, err := NewDecoder(Default())
	require.NoError(t, err)
	return func(topic string) AuditVerifyReport {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var phases []string
		var lastKafka uint64
		rep, err := VerifyAudit(ctx, store, AuditVerify{ClusterID: audit.ClusterID, Topic: topic, CheckpointDir: audit.Dir, Since: since,
			Kafka: &AuditKafka{Client: cl, Group: group, SourceKey: audit.SourceKey, Decoder: dec},
			Progress: func(phase string, n uint64) {
				if len(phases) == 0 || phases[len(phases)-1] != phase {
					phases = append(phases, phase)
				}
				if phase == PhaseKafka {
					lastKafka = n
				}
			}})
		require.NoError(t, err)
		// The progress: the leaves, then the Kafka records read.
		assert.Equal(t, []string{PhaseLeaves, PhaseKafka}, phases)
		var read uint64
		for _, l := range rep.Logs {
			read += l.Kafka.Records
		}
		assert.Equal(t, read, lastKafka, "the Kafka phase's progress ends at the records read")
		return rep
	}
}

// kafkaOffsets lists a partition's offsets as an independent client sees
// them: kcat, reading committed records only, from the log start.
func kafkaOffsets(t *testing.T, brokers []string, topic string, part int32) []int64 {
	t.Helper()
	out, err := exec.Command("kcat", "-C", "-b", strings.Join(brokers, ","), "-t", topic, "-p", strconv.Itoa(int(part)),
		"-o", "beginning", "-e", "-q", "-X", "isolation.level=read_committed", "-f", `%o\n`).CombinedOutput()
	require.NoError(t, err, "kcat: %s", out)
	var offs []int64
	for _, f := range strings.Fields(string(out)) {
		o, err := strconv.ParseInt(f, 10, 64)
		require.NoError(t, err, "kcat: %s", out)
		offs = append(offs, o)
	}
	return offs
}

// produce writes one order event per id to a partition of topic,
// non-transactionally, and waits for them.
func produce(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, part int32, ids ...string) {
	t.Helper()
	for _, id := range ids {
		r := &kgo.Record{Topic: topic, Partition: part, Key: []byte("o-" + id),
			Value: []byte(`{"event_type":"OrderPlaced","order_id":"o-` + id + `","event_id":"` + id + `"}`)}
		require.NoError(t, cl.ProduceSync(ctx, r).FirstErr())
	}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	return out
}

// TestVerifyAuditKafkaLegitimate: what Kafka legitimately does to a
// partition after the tap stored it is no finding. With the audit trail
// on, the tap stores (a) a topic written in committed transactions, (b)
// one with aborted transactions interleaved (one at the very end, so the
// last offsets before the last stable offset hold nothing a read_committed
// reader returns), (c) a compacted topic whose compaction then really runs
// (checked with kcat), and (d) a topic whose first records are then
// deleted (kadm DeleteRecords, as retention does). VerifyAudit with Kafka
// finds nothing and counts what it skipped and why.
func TestVerifyAuditKafkaLegitimate(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	prefix := "legit_" + testenv.Name(t)
	txTopic, abortTopic, compactTopic, retainTopic := prefix+".tx", prefix+".abort", prefix+".compact", prefix+".retain"
	testenv.CreateTopic(t, brokers, txTopic, 2, nil)
	testenv.CreateTopic(t, brokers, abortTopic, 1, nil)
	testenv.CreateTopic(t, brokers, retainTopic, 1, nil)
	str := func(s string) *string { return &s }
	testenv.CreateTopic(t, brokers, compactTopic, 1, map[string]*string{
		"cleanup.policy": str("compact"), "segment.ms": str("100"),
		"min.cleanable.dirty.ratio": str("0.01"), "delete.retention.ms": str("0"),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)

	txCommit := txProducer(ctx, t, brokers, txTopic, "OrderPlaced", true)
	txCommit(0, []string{"t1", "t2", "t3"}, kgo.TryCommit) // 0-2, marker 3
	txCommit(0, []string{"t4"}, kgo.TryCommit)             // 4, marker 5
	txCommit(1, []string{"u1", "u2"}, kgo.TryCommit)       // 0-1, marker 2
	txAbort := txProducer(ctx, t, brokers, abortTopic, "OrderPlaced", false)
	txAbort(0, []string{"c1", "c2"}, kgo.TryCommit) // 0-1, marker 2
	txAbort(0, []string{"a1", "a2"}, kgo.TryAbort)  // 3-4, marker 5
	txAbort(0, []string{"c3"}, kgo.TryCommit)       // 6, marker 7
	txAbort(0, []string{"a3"}, kgo.TryAbort)        // 8, marker 9: the end
	produce(ctx, t, cl, compactTopic, 0, ids("k", 10)...)
	produce(ctx, t, cl, retainTopic, 0, ids("r", 10)...)

	audit, _ := testAudit(t)
	group := "g_" + testenv.Name(t)
	c, stop := auditTap(t, brokers, store, audit, group, regexp.QuoteMeta(prefix)+`\..*`, 0)
	waitStored(t, c, 6+3+20)

	// (c) The same keys again: once compaction runs, offsets 0-9 are gone.
	// The cleaner takes only closed segments, and a segment closes when a
	// record arrives after segment.ms: a record of a key of its own each
	// second until kcat sees the compaction.
	produce(ctx, t, cl, compactTopic, 0, ids("k", 10)...)
	ends := 0
	require.Eventually(t, func() bool {
		produce(ctx, t, cl, compactTopic, 0, fmt.Sprint("end", ends))
		ends++
		offs := kafkaOffsets(t, brokers, compactTopic, 0)
		return len(offs) > 0 && offs[0] >= 10
	}, 2*time.Minute, time.Second, "compaction did not run: kcat still reads offset 0 of %s", compactTopic)
	compacted := kafkaOffsets(t, brokers, compactTopic, 0)
	require.Len(t, compacted, 10+ends, "compacted: the second round and the records of their own keys are left")
	assert.Equal(t, int64(10), compacted[0])
	waitStored(t, c, int64(6+3+30+ends))

	// (d) Retention: the first 6 records deleted after they were stored.
	del, err := adm.DeleteRecords(ctx, kadm.Offsets{retainTopic: {0: {Topic: retainTopic, Partition: 0, At: 6}}})
	require.NoError(t, err)
	require.NoError(t, del.Error())
	assert.Equal(t, []int64{6, 7, 8, 9}, kafkaOffsets(t, brokers, retainTopic, 0))
	stop()

	verify := kafkaVerifier(t, brokers, store, audit, group)
	type want struct {
		part                                       int32
		matched, notOnKafka, beforeStart, from, to int64
	}
	for _, tc := range []struct {
		topic string
		want  []want
	}{
		{txTopic, []want{{part: 0, matched: 4, from: 0, to: 5}, {part: 1, matched: 2, from: 0, to: 2}}},
		// The log ends at 7, past c3; the tap committed 7 (a3 and its
		// marker are not returned), so the range read ends there.
		{abortTopic, []want{{part: 0, matched: 3, from: 0, to: 7}}},
		{compactTopic, []want{{part: 0, matched: int64(10 + ends), notOnKafka: 10, from: 0, to: int64(20 + ends)}}},
		{retainTopic, []want{{part: 0, matched: 4, beforeStart: 6, from: 6, to: 10}}},
	} {
		t.Run(tc.topic[len(prefix)+1:], func(t *testing.T) {
			rep := verify(tc.topic)
			assert.Empty(t, rep.Findings)
			assert.True(t, rep.Kafka)
			assert.True(t, rep.SourceChecked)
			require.Len(t, rep.Logs, len(tc.want))
			for i, w := range tc.want {
				k := rep.Logs[i].Kafka
				require.NotNil(t, k)
				assert.Equal(t, w.part, rep.Logs[i].Partition)
				assert.Equal(t, uint64(w.matched), k.Matched, "matched by C_source %+v", k)
				assert.Equal(t, uint64(w.matched), k.Records, "records read %+v", k)
				assert.Zero(t, k.OffsetOnly)
				assert.Equal(t, uint64(w.notOnKafka), k.NotOnKafka, "not on Kafka %+v", k)
				assert.Equal(t, uint64(w.beforeStart), k.BeforeStart, "before the log start %+v", k)
				assert.Equal(t, [2]int64{w.from, w.to}, [2]int64{k.From, k.To}, "range read %+v", k)
			}
		})
	}

	// Without the source key, records match by offset only.
	audit.SourceKey = nil
	rep := kafkaVerifier(t, brokers, store, audit, group)(abortTopic)
	assert.Empty(t, rep.Findings)
	assert.False(t, rep.SourceChecked)
	assert.Equal(t, uint64(3), rep.Logs[0].Kafka.OffsetOnly)
	assert.Zero(t, rep.Logs[0].Kafka.Matched)
}

// TestVerifyAuditKafkaTamper: what Kafka holds and the logs do not say is
// found, on the real broker.
func TestVerifyAuditKafkaTamper(t *testing.T) {
	brokers := testenv.Kafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	newClient := func() (*kgo.Client, *kadm.Client) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		require.NoError(t, err)
		t.Cleanup(cl.Close)
		return cl, kadm.NewClient(cl)
	}
	found := func(rep AuditVerifyReport) []string {
		var got []string
		for _, f := range rep.Findings {
			got = append(got, f.Kind+"@"+itoa(f.Offset)+" "+f.OrderID)
		}
		return got
	}

	// The stored record is not what Kafka holds at its offset: the tap
	// stores five records; the topic is then deleted and created again
	// with the same records at the same offsets but for one, which has
	// another value. ClickHouse still agrees with its leaves; only Kafka
	// tells.
	t.Run("source-mismatch", func(t *testing.T) {
		store := testenv.Store(t)
		topic := "mismatch_" + testenv.Name(t)
		testenv.CreateTopic(t, brokers, topic, 1, nil)
		cl, adm := newClient()
		produce(ctx, t, cl, topic, 0, ids("m", 5)...)
		audit, _ := testAudit(t)
		group := "g_" + testenv.Name(t)
		c, stop := auditTap(t, brokers, store, audit, group, regexp.QuoteMeta(topic), 0)
		waitStored(t, c, 5)
		stop()

		_, err := adm.DeleteTopic(ctx, topic)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
			return err == nil && resp.Err == nil // the deletion may still be under way
		}, time.Minute, 200*time.Millisecond, "create %s again", topic)
		cl2, _ := newClient()
		produce(ctx, t, cl2, topic, 0, "m0", "m1")
		require.NoError(t, cl2.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Key: []byte("o-m2"),
			Value: []byte(`{"event_type":"OrderCancelled","order_id":"o-m2","event_id":"m2"}`)}).FirstErr())
		produce(ctx, t, cl2, topic, 0, "m3", "m4")
		require.Equal(t, []int64{0, 1, 2, 3, 4}, kafkaOffsets(t, brokers, topic, 0))

		rep := kafkaVerifier(t, brokers, store, audit, group)(topic)
		assert.Equal(t, []string{"source-mismatch@2 o-m2"}, found(rep), "%+v", rep.Findings)
		k := rep.Logs[0].Kafka
		assert.Equal(t, uint64(4), k.Matched)
		assert.Equal(t, uint64(5), k.Records)

		// By offset only, the swap cannot be seen: the summary says so.
		audit.SourceKey = nil
		rep = kafkaVerifier(t, brokers, store, audit, group)(topic)
		assert.Empty(t, rep.Findings)
		assert.Equal(t, uint64(5), rep.Logs[0].Kafka.OffsetOnly)
	})

	// Records on Kafka never stored: an operator moves the tap's group
	// past records (kadm CommitOffsets, as kafka-consumer-groups
	// --reset-offsets does) while the tap is stopped. Once, and the tap
	// resumes past them: the log records the jump as a gap leaf, and Kafka
	// holds committed records inside it. Once more with the tap not
	// restarted: the records are past the log's end but below the
	// committed offset. Records past the committed offset the tap has
	// simply not read yet: no finding.
	t.Run("never-stored", func(t *testing.T) {
		store := testenv.Store(t)
		topic := "skipped_" + testenv.Name(t)
		testenv.CreateTopic(t, brokers, topic, 1, nil)
		cl, adm := newClient()
		produce(ctx, t, cl, topic, 0, ids("n", 5)...) // 0-4
		audit, _ := testAudit(t)
		group := "g_" + testenv.Name(t)
		pattern := regexp.QuoteMeta(topic)
		c, stop := auditTap(t, brokers, store, audit, group, pattern, 0)
		waitStored(t, c, 5)
		stop()

		resetTo := func(at int64) {
			t.Helper()
			resp, err := adm.CommitOffsets(ctx, group, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: at, LeaderEpoch: -1}}})
			require.NoError(t, err)
			require.NoError(t, resp.Error())
		}
		produce(ctx, t, cl, topic, 0, "n5", "n6", "n7", "n8", "n9")
		resetTo(8)
		c, stop = auditTap(t, brokers, store, audit, group, pattern, 0)
		waitStored(t, c, 2) // n8, n9
		stop()
		produce(ctx, t, cl, topic, 0, "n10", "n11", "n12")
		resetTo(13)
		produce(ctx, t, cl, topic, 0, "n13", "n14")

		rep := kafkaVerifier(t, brokers, store, audit, group)(topic)
		assert.Equal(t, []string{"never-stored@5 o-n5", "never-stored@6 o-n6", "never-stored@7 o-n7",
			"never-stored@10 o-n10", "never-stored@11 o-n11", "never-stored@12 o-n12"}, found(rep), "%+v", rep.Findings)
		require.Len(t, rep.Findings, 6)
		assert.Contains(t, rep.Findings[0].Detail, "gap for offsets 5 to 8")
		assert.Contains(t, rep.Findings[3].Detail, "past the log's end (offset 10) and below the tap's committed offset 13")
		k := rep.Logs[0].Kafka
		assert.Equal(t, uint64(7), k.Matched, "0-4, 8 and 9")
		assert.Equal(t, [3]int64{0, 13, 13}, [3]int64{k.From, k.To, k.Committed}, "read up to the committed offset, not to the end")
		assert.Equal(t, int64(15), k.LastStable)
	})
}

// TestPartitionReaderReadCommitted: the reader returns what a
// read_committed consumer returns — no aborted record, no marker — and
// ends a range whose last offsets hold nothing it returns (markers, an
// aborted transaction, an open one past the last stable offset) at once,
// rather than waiting for records that never come.
func TestPartitionReaderReadCommitted(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := "reader_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tx := txProducer(ctx, t, brokers, topic, "OrderPlaced", false)
	tx(0, []string{"c1", "c2"}, kgo.TryCommit) // 0-1, marker 2
	tx(0, []string{"a1"}, kgo.TryAbort)        // 3, marker 4
	tx(0, []string{"c3"}, kgo.TryCommit)       // 5, marker 6
	tx(0, []string{"a2"}, kgo.TryAbort)        // 7, marker 8
	// An open transaction at 9: the last stable offset stays at 9 (for
	// longer than the test, unless it is stuck waiting: see read).
	open, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID("open-"+testenv.Name(t)), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionTimeout(5*time.Minute))
	require.NoError(t, err)
	defer open.Close()
	require.NoError(t, open.BeginTransaction())
	require.NoError(t, open.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("open")}).FirstErr())
	defer open.EndTransaction(context.Background(), kgo.TryAbort) //nolint:errcheck // cleanup

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// A reader waiting for records that never come would end only when the
	// open transaction does: each read must end well before.
	read := func(from, end int64) []int64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r := &partitionReader{cl: cl, adm: adm, topic: topic, partition: 0, pos: from, end: end, dec: kgo.DefaultDecompressor()}
		require.NoError(t, r.findLeader(ctx))
		var offs []int64
		for {
			rec, ok, err := r.next(ctx)
			require.NoError(t, err)
			if !ok {
				return offs
			}
			offs = append(offs, rec.Offset)
		}
	}
	assert.Equal(t, []int64{0, 1, 5}, read(0, 10), "up to the high watermark: ends at the last stable offset")
	assert.Equal(t, []int64{1, 5}, read(1, 6))
	assert.Empty(t, read(6, 9), "markers and an aborted record only")
	assert.Empty(t, read(9, 10), "an open transaction")
}

// TestVerifyAuditKafkaReadOnlyPrincipal: --kafka needs no more than READ
// on the topic and DESCRIBE on the tap's group (docs/kafka-access.md): an
// auditor's principal holding only those verifies a log, reads the tap's
// committed offset, and the broker denies it nothing — verify never tries
// to join a group, commit or produce.
func TestVerifyAuditKafkaReadOnlyPrincipal(t *testing.T) {
	brokers := testenv.Kafka(t)
	k := testenv.KafkaSecure(t)
	adm := k.Admin(t)
	user, pw := k.NewSCRAMUser(t, adm)
	principal := "User:" + user
	store := testenv.Store(t)
	topic := "auditor_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	produce(ctx, t, cl, topic, 0, ids("p", 4)...)
	produce(ctx, t, cl, topic, 1, ids("q", 3)...)
	audit, _ := testAudit(t)
	group := "g_" + testenv.Name(t)
	c, stop := auditTap(t, brokers, store, audit, group, regexp.QuoteMeta(topic), 0)
	waitStored(t, c, 7)
	stop()

	k.Grant(t, adm, kadm.NewACLs().Allow(principal).Topics(topic).Operations(kadm.OpRead))
	k.Grant(t, adm, kadm.NewACLs().Allow(principal).Groups(group).Operations(kadm.OpDescribe))
	auditor := k.Client(t, k.Conn("scram-sha-512", user, pw))
	// The broker applies new ACLs a moment after the controller took them:
	// wait until they answer (denials meanwhile are the wait's, not
	// verify's).
	aadm := kadm.NewClient(auditor)
	require.Eventually(t, func() bool {
		l, err := aadm.ListStartOffsets(ctx, topic)
		if err != nil || l.Error() != nil {
			return false
		}
		_, err = aadm.FetchOffsets(ctx, group)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "the auditor's ACLs take effect")
	denied := len(k.Denials(t, principal))
	rep, err := VerifyAudit(ctx, store, AuditVerify{ClusterID: audit.ClusterID, Topic: topic, CheckpointDir: audit.Dir,
		Kafka: &AuditKafka{Client: auditor, Group: group, SourceKey: audit.SourceKey}})
	require.NoError(t, err)
	assert.Empty(t, rep.Findings)
	require.Len(t, rep.Logs, 2)
	for i, n := range []int64{4, 3} {
		kr := rep.Logs[i].Kafka
		assert.Equal(t, uint64(n), kr.Matched, "partition %d by C_source", i)
		assert.Equal(t, n, kr.Committed, "partition %d: the tap's committed offset, read with DESCRIBE", i)
	}
	assert.Len(t, k.Denials(t, principal), denied, "verify asked for nothing it may not do")
}
