package collector

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestVerifyAuditSince: the tap stores five records, then five more;
// since is a time between the two inserts. VerifyAudit with Since starts
// from the state stored with the fifth leaf: it reads neither the leaves
// nor the rows before it (a change there is not seen, and is by a whole
// run), checks what follows against every later checkpoint, and a forged
// starting state is found by the checkpoints.
func TestVerifyAuditSince(t *testing.T) {
	brokers := testenv.Kafka(t)
	seed := testenv.Store(t)
	topic := "since_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	conn := testenv.Conn(t)
	storedAt := func(agg string) time.Time {
		var at time.Time
		require.NoError(t, conn.QueryRow(ctx, "SELECT "+agg+"(stored_at) FROM "+seed.Table("audit_leaves")).Scan(&at))
		return at
	}

	audit, verifier := testAudit(t)
	group, pattern := "g_"+testenv.Name(t), regexp.QuoteMeta(topic)
	produce(ctx, t, cl, topic, 0, ids("s", 5)...)
	c, stop := auditTap(t, brokers, seed, audit, group, pattern, 0)
	waitStored(t, c, 5)
	stop()
	// Since: just after the first insert's leaves, before the second's.
	since := storedAt("max").Add(time.Millisecond)
	produce(ctx, t, cl, topic, 0, "s5", "s6", "s7", "s8", "s9")
	c, stop = auditTap(t, brokers, seed, audit, group, pattern, 0)
	waitStored(t, c, 5)
	stop()
	require.False(t, storedAt("max").Before(since.Add(time.Millisecond)), "the second insert stored after since")
	cps, err := seed.Checkpoints(ctx, auditor.LogOrigin(audit.ClusterID, topic, 0))
	require.NoError(t, err)
	var before int
	for _, cp := range cps {
		if cp.Size < 5 {
			before++
		}
	}

	exec := func(t *testing.T, q string, args ...any) { require.NoError(t, conn.Exec(ctx, q, args...), q) }
	// forgedState is a state of five leaves and next offset 5 that is not
	// the log's: five other records.
	forgedState := func(t *testing.T) string {
		p, err := auditor.NewPartitionLog(topic, 0)
		require.NoError(t, err)
		for off := range int64(5) {
			_, err := p.AppendRecord(auditor.Leaf{Kind: auditor.KindRecord, Topic: topic, Offset: off, LeaderEpoch: -1, TimestampMs: 1})
			require.NoError(t, err)
		}
		b, err := p.MarshalBinary()
		require.NoError(t, err)
		return string(b)
	}
	type run struct {
		since time.Time
		want  []string // kind@offset, or kind for a checkpoint
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, s *chstore.Store)
		runs   []run
	}{
		{"untouched", func(*testing.T, *chstore.Store) {}, []run{{since, nil}, {time.Time{}, nil}}},
		{"a row changed before since", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("events")+` UPDATE payload = 'tampered' WHERE offset = 1`)
		}, []run{{since, nil}, {time.Time{}, []string{"changed@1"}}}},
		{"a row changed after since", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("events")+` UPDATE payload = 'tampered' WHERE offset = 7`)
		}, []run{{since, []string{"changed@7"}}}},
		{"the starting state forged", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_leaves")+` UPDATE state = ? WHERE leaf_index = 4`, forgedState(t))
		}, []run{
			// Sizes 5 and 10, each in ClickHouse and in the sink, and the
			// (true) state stored with leaf 9, which the forged one does
			// not lead to.
			{since, []string{FindingCheckpoint, FindingCheckpoint, FindingCheckpoint, FindingCheckpoint, "broken-log@9"}},
			// A whole run compares every stored state with the log.
			{time.Time{}, []string{"broken-log@4"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testenv.Store(t)
			for _, table := range []string{"events", "quarantine", "audit_leaves", "audit_checkpoints"} {
				exec(t, `INSERT INTO `+s.Table(table)+` SELECT * FROM `+seed.Table(table))
			}
			tc.tamper(t, s)
			for _, r := range tc.runs {
				rep, err := VerifyAudit(ctx, s, AuditVerify{ClusterID: audit.ClusterID, Topic: topic, Verifier: verifier,
					CheckpointDir: audit.Dir, Since: r.since})
				require.NoError(t, err)
				var got []string
				for _, f := range rep.Findings {
					if f.Offset < 0 {
						got = append(got, f.Kind)
					} else {
						got = append(got, f.Kind+"@"+itoa(f.Offset))
					}
				}
				assert.Equal(t, r.want, got, "since %v: %+v", r.since, rep.Findings)
				require.Len(t, rep.Logs, 1)
				l := rep.Logs[0]
				if r.since.IsZero() {
					assert.Nil(t, l.From)
					assert.Equal(t, uint64(10), l.Leaves)
					continue
				}
				require.NotNil(t, l.From, "started from a stored state")
				assert.Equal(t, uint64(5), l.From.Leaf)
				assert.Equal(t, int64(5), l.From.Offset)
				assert.Equal(t, before, l.From.CheckpointsBefore)
				assert.Equal(t, uint64(5), l.Leaves, "only the leaves after the state")
				assert.Equal(t, uint64(5), l.Rows, "only the rows after the state")
				assert.Equal(t, uint64(10), l.Checkpointed)
				if len(r.want) > 0 && r.want[0] == FindingCheckpoint {
					assert.Contains(t, rep.Findings[0].Detail, "the state stored with leaf 4, where --since started, is not the log's")
					assert.Contains(t, rep.Findings[3].Detail, "rebuilt from the state stored with leaf 4")
				}
			}
		})
	}

	// Before any leaf: the whole log. After the last: nothing but the
	// checks of the last state against the last checkpoint. With Kafka:
	// from where the state says.
	for _, tc := range []struct {
		since             time.Time
		from              *AuditLogFrom
		leaves, kafkaFrom int64
	}{
		{storedAt("min").Add(-time.Hour), nil, 10, 0},
		{since, &AuditLogFrom{Leaf: 5, Offset: 5}, 5, 5},
		{time.Now().Add(time.Hour), &AuditLogFrom{Leaf: 10, Offset: 10}, 0, 10},
	} {
		rep := kafkaVerifierSince(t, brokers, seed, audit, group, tc.since)(topic)
		assert.Empty(t, rep.Findings)
		l := rep.Logs[0]
		assert.Equal(t, uint64(tc.leaves), l.Leaves)
		if tc.from == nil {
			assert.Nil(t, l.From)
		} else if assert.NotNil(t, l.From) {
			assert.Equal(t, [2]int64{int64(tc.from.Leaf), tc.from.Offset}, [2]int64{int64(l.From.Leaf), l.From.Offset})
		}
		assert.Equal(t, tc.kafkaFrom, l.Kafka.From)
		assert.Equal(t, uint64(10-tc.kafkaFrom), l.Kafka.Matched)
	}
}
