package auditor

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
)

// testKey returns a signer made from a fixed seed, so golden bundles are
// byte for byte reproducible. It signs nothing outside the tests.
func testKey(t testing.TB) (*Signer, string) {
	t.Helper()
	seed := bytes.Repeat([]byte{7}, 32)
	skey, vkey, err := note.GenerateKey(bytes.NewReader(seed), "weft-test")
	require.NoError(t, err)
	s, err := NewSigner(skey)
	require.NoError(t, err)
	require.Equal(t, vkey, s.VerifierKey())
	return s, vkey
}

var testSourceKey, _ = NewSourceKey(bytes.Repeat([]byte{9}, 32))

// scenario is a small world: one partition log of 14 leaves (12 records of
// several orders and 2 gaps), an actions log of two actions (an export, and
// the erasure of one of ORD-1's records), checkpoints signed by the test
// key, and the bundle of ORD-1: three events, the second erased.
type scenario struct {
	signer   *Signer
	vkey     string
	bundle   Bundle
	rows     map[int64]StoredRecord
	partLog  *PartitionLog
	leaves   LeafHashList
	entries  []Entry
	actions  []Action
	actLeafs LeafHashList
}

func newScenario(t testing.TB) *scenario {
	t.Helper()
	s := &scenario{rows: map[int64]StoredRecord{}}
	s.signer, s.vkey = testKey(t)
	var err error
	s.partLog, err = NewPartitionLog("orders", 3)
	require.NoError(t, err)
	salts := map[int64]Salt{}
	orders := []string{"ORD-1", "ORD-2", "ORD-1", "ORD-3", "ORD-2", "ORD-1"}
	offsets := []int64{100, 101, 102, 110, 111, 112} // 103..109: a gap (an aborted transaction, say)
	for i := range 12 {
		o := int64(200 + i)
		order := fmt.Sprintf("ORD-%d", 4+i)
		if i < len(offsets) {
			o, order = offsets[i], orders[i]
		}
		row := StoredRecord{
			Key:     []byte(order),
			Value:   []byte(fmt.Sprintf(`{"order_id":%q,"card":"411111******1111","step":%d}`, order, i)),
			Headers: []Header{{Name: "traceparent", Value: []byte("00-abc-def-01")}, {Name: "content-type", Value: []byte("application/json")}},
			Columns: map[string]string{"order_id": order, "event_type": fmt.Sprintf("step.%d", i)},
		}
		b, err := row.MarshalBinary()
		require.NoError(t, err)
		salt := Salt(bytes.Repeat([]byte{byte(i + 1)}, SaltSize))
		leaf := Leaf{Kind: KindRecord, Topic: "orders", Partition: 3, Offset: o, LeaderEpoch: 5,
			TimestampMs: time.Date(2025, 3, 1, 12, 0, i, 0, time.UTC).UnixMilli(),
			Stored:      StoredCommitment(salt, b),
			Source:      testSourceKey.Commit(SourceRecord{Key: row.Key, Value: row.Value}),
			OrderTag:    testSourceKey.OrderTag(order)}
		entries, err := s.partLog.AppendRecord(leaf)
		require.NoError(t, err)
		s.entries = append(s.entries, entries...)
		s.rows[o], salts[o] = row, salt
	}
	for _, e := range s.entries {
		s.leaves = append(s.leaves, e.Hash)
	}
	at := time.Date(2025, 4, 2, 9, 30, 0, 0, time.UTC)
	s.actions = []Action{
		{TimeMs: at.UnixMilli(), Actor: "alice", Origin: "cli alice@ops-1", Verb: "ack", Resource: "finding/F-9", Outcome: OutcomeSuccess},
		{TimeMs: at.Add(time.Hour).UnixMilli(), Actor: "bob", Origin: "http 10.0.0.7:51200", Verb: "erase", Resource: "order/ORD-1",
			Outcome: OutcomeSuccess, Detail: "GDPR request 42", OrderTag: testSourceKey.OrderTag("ORD-1"),
			Targets: []Position{{Topic: "orders", Partition: 3, Offset: 102}}},
		{TimeMs: at.Add(2 * time.Hour).UnixMilli(), Actor: "carol", Origin: "cli carol@ops-2", Verb: "export", Resource: "order/ORD-1", Outcome: OutcomeSuccess},
	}
	actionLog := NewLog()
	var actionBytes [][]byte
	for _, a := range s.actions {
		b, err := a.MarshalBinary()
		require.NoError(t, err)
		actionBytes = append(actionBytes, b)
		s.actLeafs = append(s.actLeafs, LeafHash(b))
		_, err = actionLog.Append(LeafHash(b))
		require.NoError(t, err)
	}

	ctx := context.Background()
	partCP, err := s.signer.Sign(s.partLog.Log().Checkpoint(LogOrigin("c1", "orders", 3)))
	require.NoError(t, err)
	actCP, err := s.signer.Sign(actionLog.Checkpoint(ActionsOrigin("c1")))
	require.NoError(t, err)

	var picked []Entry
	for _, e := range s.entries {
		if e.Leaf.Kind == KindRecord && s.rows[e.Leaf.Offset].Columns["order_id"] == "ORD-1" {
			picked = append(picked, e)
		}
	}
	req := ProofRequest{Size: s.partLog.Log().Size()}
	for _, e := range picked {
		req.Inclusion = append(req.Inclusion, e.Index)
	}
	proofs, err := Prove(ctx, s.leaves, req)
	require.NoError(t, err)
	require.Equal(t, partCP.Root, proofs.Root)
	actProofs, err := Prove(ctx, s.actLeafs, ProofRequest{Size: actionLog.Size(), Inclusion: []uint64{1, 2}})
	require.NoError(t, err)

	erase := 0
	m := Manifest{Format: BundleFormat, Cluster: "c1", OrderID: "ORD-1", LeafVersion: LeafVersion,
		CreatedAt: at.Add(2 * time.Hour), Query: "order ORD-1", WeftVersion: "test", MaskPolicy: "cards: BIN+last4"}
	var b Bundle
	for i, e := range picked {
		me := ManifestEvent{Topic: "orders", Partition: 3, Offset: e.Leaf.Offset, LeafIndex: e.Index}
		ev := EventEvidence{Leaf: e.Bytes, Proof: TLogProof(e.Index, proofs.Inclusion[i], partCP)}
		if e.Leaf.Offset == 102 {
			me.ErasedBy = &erase
		} else {
			ev.Row, _ = s.rows[e.Leaf.Offset].MarshalBinary()
			salt := salts[e.Leaf.Offset]
			ev.Salt = salt[:]
		}
		m.Events = append(m.Events, me)
		b.Events = append(b.Events, ev)
	}
	for i, idx := range []uint64{1, 2} {
		m.Actions = append(m.Actions, ManifestAction{LeafIndex: idx})
		b.Actions = append(b.Actions, ActionEvidence{Leaf: actionBytes[idx], Proof: TLogProof(idx, actProofs.Inclusion[i], actCP)})
	}
	b.Manifest = m
	s.bundle = b
	return s
}

// zipped writes the scenario's bundle and reads it back.
func (s *scenario) zipped(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, WriteBundle(&buf, s.bundle))
	return buf.Bytes()
}
