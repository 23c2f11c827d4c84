package collector

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestVerifyAuditTamper: the tap stores a transactional topic (an abort
// leaves a gap leaf) and one quarantined record with the audit trail on,
// once; each case copies what it stored into a fresh database, tampers
// with it as a DBA could, and VerifyAudit names the problem. Untouched data
// has no findings.
func TestVerifyAuditTamper(t *testing.T) {
	brokers := testenv.Kafka(t)
	seed := testenv.Store(t)
	topic := "orders.verify_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	produceTx := txProducer(ctx, t, brokers, topic, "OrderPlaced", false)
	produceTx(0, []string{"c1", "c2", "c3"}, kgo.TryCommit) // offsets 0-2, marker 3
	produceTx(0, []string{"a1"}, kgo.TryAbort)              // 4, marker 5: a gap 3-6
	produceTx(0, []string{"c4", "bad"}, kgo.TryCommit)      // 6, 7 (quarantined)
	produceTx(1, []string{"d1", "d2"}, kgo.TryCommit)

	audit, verifier := testAudit(t)
	c, stop := auditTap(t, brokers, seed, audit, "g_"+testenv.Name(t), regexp.QuoteMeta(topic), 0)
	waitStored(t, c, 7)
	stop()

	conn := testenv.Conn(t)
	exec := func(t *testing.T, q string, args ...any) { require.NoError(t, conn.Exec(ctx, q, args...), q) }
	origin := auditor.LogOrigin(audit.ClusterID, topic, 0)
	verify := func(store *chstore.Store, only string) AuditVerifyReport {
		rep, err := VerifyAudit(ctx, store, AuditVerify{ClusterID: audit.ClusterID, Topic: only, Verifier: verifier, CheckpointDir: audit.Dir})
		require.NoError(t, err)
		return rep
	}
	// copyOf is a fresh database holding what the tap stored.
	copyOf := func(t *testing.T) *chstore.Store {
		s := testenv.Store(t)
		for _, table := range []string{"events", "quarantine", "audit_leaves", "audit_checkpoints"} {
			exec(t, `INSERT INTO `+s.Table(table)+` SELECT * FROM `+seed.Table(table))
		}
		return s
	}
	// The gap leaf's first offset, for a forged row no record leaf covers.
	gapAt := int64(-1)
	require.NoError(t, seed.AuditLeaves(ctx, topic, 0, func(r chstore.AuditLeafRow) error {
		if r.Kind == "gap" && gapAt < 0 {
			gapAt = r.Offset
		}
		return nil
	}))
	require.Equal(t, int64(3), gapAt, "the aborted transaction leaves a gap")

	// The latest checkpoint of partition 0, to delete or rewrite.
	cps, err := seed.Checkpoints(ctx, origin)
	require.NoError(t, err)
	require.NotEmpty(t, cps)
	size := cps[len(cps)-1].Size

	cases := []struct {
		name   string
		tamper func(t *testing.T, s *chstore.Store)
		want   []string // kind@offset, or kind for a checkpoint
	}{
		{"untouched", func(*testing.T, *chstore.Store) {}, nil},
		{"identical copy (a redelivery not merged yet)", func(t *testing.T, s *chstore.Store) {
			exec(t, `INSERT INTO `+s.Table("events")+` SELECT * FROM `+seed.Table("events")+` WHERE topic = ? AND partition = 0 AND offset = 0`, topic)
		}, nil},
		{"swap two rows", func(t *testing.T, s *chstore.Store) {
			// offset is in the sorting key: a DELETE and an INSERT.
			testenv.Mutate(t, `ALTER TABLE `+s.Table("events")+` DELETE WHERE topic = ? AND partition = 0 AND offset IN (0, 1)`, topic)
			exec(t, `INSERT INTO `+s.Table("events")+` SELECT * REPLACE (1 - offset AS offset) FROM `+seed.Table("events")+
				` WHERE topic = ? AND partition = 0 AND offset IN (0, 1)`, topic)
		}, []string{"reordered@0 o-c1", "reordered@1 o-c2"}},
		{"update payload", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("events")+` UPDATE payload = 'tampered' WHERE topic = ? AND partition = 0 AND offset = 1`, topic)
		}, []string{"changed@1 o-c2"}},
		{"delete row", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("events")+` DELETE WHERE topic = ? AND partition = 0 AND offset = 2`, topic)
		}, []string{"missing@2 o-c3"}},
		{"delete quarantined row", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("quarantine")+` DELETE WHERE topic = ? AND partition = 0 AND offset = 7`, topic)
		}, []string{"missing@7 "}},
		{"insert forged row", func(t *testing.T, s *chstore.Store) {
			exec(t, `INSERT INTO `+s.Table("events")+` (topic, partition, offset, order_id, event_type, payload) VALUES (?, 0, ?, 'o-forged', 'OrderPlaced', 'forged')`, topic, gapAt)
		}, []string{"extra@3 o-forged"}},
		{"insert different copy", func(t *testing.T, s *chstore.Store) {
			exec(t, `INSERT INTO `+s.Table("events")+` (topic, partition, offset, order_id, event_type, payload) VALUES (?, 0, 0, 'o-c1', 'OrderCancelled', 'forged')`, topic)
		}, []string{"duplicated@0 o-c1"}},
		{"change order id", func(t *testing.T, s *chstore.Store) {
			// order_id is in the sorting key: no UPDATE, a DELETE and an INSERT.
			testenv.Mutate(t, `ALTER TABLE `+s.Table("events")+` DELETE WHERE topic = ? AND partition = 0 AND offset = 0`, topic)
			exec(t, `INSERT INTO `+s.Table("events")+` SELECT * REPLACE ('o-other' AS order_id) FROM `+seed.Table("events")+
				` WHERE topic = ? AND partition = 0 AND offset = 0`, topic)
		}, []string{"changed@0 o-c1"}},
		{"truncate the partition's rows", func(t *testing.T, s *chstore.Store) {
			for _, table := range []string{"events", "quarantine"} {
				testenv.Mutate(t, `ALTER TABLE `+s.Table(table)+` DELETE WHERE topic = ? AND partition = 0 AND offset >= 6`, topic)
			}
		}, []string{"missing@6 o-c4", "missing@7 "}},
		{"delete checkpoint", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_checkpoints")+` DELETE WHERE origin = ? AND size = ?`, origin, size)
		}, []string{FindingMissingCkpt}},
		{"rewrite checkpoint root", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_checkpoints")+` UPDATE root = toFixedString(unhex(repeat('00', 32)), 32) WHERE origin = ? AND size = ?`, origin, size)
		}, []string{FindingCheckpoint}},
		{"rewrite checkpoint note", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_checkpoints")+` UPDATE note = replaceOne(note, concat('\n', toString(size), '\n'), '\n99\n') WHERE origin = ? AND size = ?`, origin, size)
		}, []string{FindingCheckpoint}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := copyOf(t)
			tc.tamper(t, s)
			rep := verify(s, topic)
			var got []string
			for _, f := range rep.Findings {
				if f.Offset < 0 {
					got = append(got, f.Kind)
				} else {
					got = append(got, f.Kind+"@"+itoa(f.Offset)+" "+f.OrderID)
				}
				assert.Equal(t, topic, f.Topic)
				assert.Equal(t, int32(0), f.Partition)
			}
			if len(tc.want) == 1 && (tc.want[0] == FindingCheckpoint || tc.want[0] == FindingMissingCkpt) {
				require.NotEmpty(t, got, "%+v", rep.Findings)
				for _, g := range got {
					assert.Equal(t, tc.want[0], g, "%+v", rep.Findings)
				}
			} else {
				assert.Equal(t, tc.want, got, "%+v", rep.Findings)
			}
			require.Len(t, rep.Logs, 2)
			assert.True(t, rep.Authenticated)
			p0 := rep.Logs[0]
			assert.Equal(t, uint64(6), p0.Leaves, "records 0-2, gap 3-6, records 6 and 7")
			assert.Equal(t, p0.Leaves, p0.Checkpointed)
		})
	}

	// The partition's tail cut, rows and leaves alike: the log is whole up
	// to where it was cut, and its signed checkpoint says it was longer.
	t.Run("truncate the partition's rows and leaves", func(t *testing.T) {
		s := copyOf(t)
		for _, table := range []string{"events", "quarantine"} {
			testenv.Mutate(t, `ALTER TABLE `+s.Table(table)+` DELETE WHERE topic = ? AND partition = 0 AND offset >= 6`, topic)
		}
		testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_leaves")+` DELETE WHERE topic = ? AND partition = 0 AND leaf_index >= 4`, topic)
		rep := verify(s, topic)
		require.NotEmpty(t, rep.Findings)
		for _, f := range rep.Findings {
			assert.Equal(t, FindingCheckpoint, f.Kind, "%+v", f)
			assert.Contains(t, f.Detail, "the log has 4: leaves lost")
		}
		assert.Equal(t, uint64(4), rep.Logs[0].Leaves)
	})

	// Verify reads every partition's rows in one ordered read and hands
	// each log its own (verifyRows): rows no log covers are skipped, and a
	// log left early leaves its rows to no other.
	t.Run("rows of partitions without a log", func(t *testing.T) {
		s := copyOf(t)
		for _, p := range []struct {
			table, topic string
			partition    int32
		}{{"events", "a.untapped", 0}, {"quarantine", "a.untapped", 1}, {"events", topic, 5}, {"quarantine", topic + "z", 0}} {
			exec(t, `INSERT INTO `+s.Table(p.table)+` (topic, partition, offset) VALUES (?, ?, 0)`, p.topic, p.partition)
		}
		rep := verify(s, "")
		assert.Empty(t, rep.Findings)
		require.Len(t, rep.Logs, 2)
		assert.Equal(t, []uint64{5, 2}, []uint64{rep.Logs[0].Rows, rep.Logs[1].Rows}, "each log counts its own rows only")
	})
	t.Run("broken log", func(t *testing.T) {
		s := copyOf(t)
		testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_leaves")+` UPDATE leaf_hash = toFixedString(unhex(repeat('00', 32)), 32)
WHERE topic = ? AND partition = 0 AND leaf_index = 1`, topic)
		rep := verify(s, "")
		require.Len(t, rep.Findings, 1)
		assert.Equal(t, FindingBrokenLog, rep.Findings[0].Kind)
		assert.Equal(t, int32(0), rep.Findings[0].Partition)
		require.Len(t, rep.Logs, 2)
		assert.Equal(t, uint64(1), rep.Logs[0].Leaves, "partition 0 is checked up to its broken leaf")
		p1 := rep.Logs[1]
		assert.Equal(t, [4]uint64{2, 2, 2, 2}, [4]uint64{p1.Leaves, p1.Records, p1.Rows, p1.Checkpointed},
			"partition 1 gets its own rows, none of partition 0's")
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
