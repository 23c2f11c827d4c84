package collector

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestActionLogConcurrentWriters: writers racing for the actions log's
// next index (a server acknowledging, CLIs erasing) each end with their
// own leaf at a distinct index — dense, none lost, none doubled — and the
// log verifies against its checkpoints.
func TestActionLogConcurrentWriters(t *testing.T) {
	store := testenv.Store(t)
	audit, verifier := testAudit(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const writers, each = 4, 5
	var mu sync.Mutex
	got := map[uint64]string{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := NewActionLog(audit, store)
			for i := range each {
				res := fmt.Sprintf("finding/F-%d-%d", w, i)
				idx, err := l.Record(ctx, auditor.Action{Actor: fmt.Sprintf("op%d", w), Origin: "cli test", Verb: "ack",
					Resource: res, Outcome: auditor.OutcomeSuccess, Detail: "seen"}, "ORD-1")
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				assert.NotContains(t, got, idx, "index %d handed out twice", idx)
				got[idx] = res
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, got, writers*each)
	var resources []string
	require.NoError(t, store.ActionRows(ctx, "", func(r chstore.ActionRow) error {
		assert.Equal(t, got[r.LeafIndex], r.Resource, "the row at %d is the action that was told it", r.LeafIndex)
		resources = append(resources, r.Resource)
		return nil
	}))
	assert.Len(t, resources, writers*each, "one row per action")
	size, _, err := store.LatestActionState(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(writers*each), size, "indices dense from 0")

	rep, err := VerifyAudit(ctx, store, AuditVerify{ClusterID: audit.ClusterID, Verifier: verifier, CheckpointDir: audit.Dir})
	require.NoError(t, err)
	assert.Empty(t, rep.Findings)
	require.NotNil(t, rep.Actions)
	assert.Equal(t, uint64(writers*each), rep.Actions.Leaves)
	assert.Equal(t, uint64(writers*each), rep.Actions.Checkpointed, "the last action is checkpointed")

	var order []chstore.ActionRow
	require.NoError(t, store.ActionRows(ctx, "ORD-1", func(r chstore.ActionRow) error { order = append(order, r); return nil }))
	assert.Len(t, order, writers*each, "the actions on an order are found by its id")
}

// TestVerifyActionsTamper: the actions log is checked like a partition's:
// a dropped action, a column changed, a leaf rewritten or a checkpoint
// removed are each named; untouched, nothing is.
func TestVerifyActionsTamper(t *testing.T) {
	seed := testenv.Store(t)
	audit, verifier := testAudit(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := NewActionLog(audit, seed)
	for i, verb := range []string{"verify", "ack", "export", "ack"} {
		_, err := l.Record(ctx, auditor.Action{Actor: "alice", Origin: "cli alice@ops", Verb: verb,
			Resource: fmt.Sprintf("order/ORD-%d", i), Outcome: auditor.OutcomeSuccess}, fmt.Sprintf("ORD-%d", i))
		require.NoError(t, err)
	}
	conn := testenv.Conn(t)
	exec := func(t *testing.T, q string) { require.NoError(t, conn.Exec(ctx, q), q) }
	cases := []struct {
		name   string
		tamper func(t *testing.T, s *chstore.Store)
		want   []string
	}{
		{"untouched", func(*testing.T, *chstore.Store) {}, nil},
		{"drop an action", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_actions")+` DELETE WHERE leaf_index = 1`)
		}, []string{"broken-log #2"}},
		{"drop the last action", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_actions")+` DELETE WHERE leaf_index = 3`)
		}, []string{"rewritten-checkpoint"}},
		{"change who acted", func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_actions")+` UPDATE actor = 'mallory' WHERE leaf_index = 2`)
		}, []string{"changed #2"}},
		{"rewrite a leaf and its hash", func(t *testing.T, s *chstore.Store) {
			// A forged action, consistently hashed: only the checkpoint's
			// root tells.
			forged, err := auditor.Action{TimeMs: 1, Actor: "mallory", Verb: "ack", Outcome: auditor.OutcomeSuccess}.MarshalBinary()
			require.NoError(t, err)
			h := auditor.LeafHash(forged)
			testenv.Mutate(t, fmt.Sprintf(`ALTER TABLE %s UPDATE leaf = unhex('%x'), leaf_hash = unhex('%x'), actor = 'mallory', origin = '', verb = 'ack', resource = '', detail = '', time = fromUnixTimestamp64Milli(1) WHERE leaf_index = 0`,
				s.Table("audit_actions"), forged, h[:]))
		}, []string{"rewritten-checkpoint"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testenv.Store(t)
			exec(t, `INSERT INTO `+s.Table("audit_actions")+` SELECT * FROM `+seed.Table("audit_actions"))
			exec(t, `INSERT INTO `+s.Table("audit_checkpoints")+` SELECT * FROM `+seed.Table("audit_checkpoints"))
			tc.tamper(t, s)
			rep, err := VerifyAudit(ctx, s, AuditVerify{ClusterID: audit.ClusterID, Verifier: verifier, CheckpointDir: audit.Dir})
			require.NoError(t, err)
			var kinds []string
			for _, f := range rep.Findings {
				k := f.Kind
				if f.Kind != FindingCheckpoint && f.LeafIndex != nil {
					k += fmt.Sprintf(" #%d", *f.LeafIndex)
				}
				if !slices.Contains(kinds, k) {
					kinds = append(kinds, k)
				}
			}
			assert.Equal(t, tc.want, kinds, "%v", rep.Findings)
		})
	}
}
