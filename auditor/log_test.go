package auditor

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A naive RFC 6962 (section 2.1) tree, written from the RFC's recursive
// definitions and nothing else, to check the merkle module's answers as
// this package uses them.

func refLeaf(d []byte) Hash { return sha256.Sum256(append([]byte{0}, d...)) }

func refNode(l, r Hash) Hash { return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...)) }

// refSplit is the largest power of two smaller than n.
func refSplit(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

// refMTH is MTH(D[n]) over leaf hashes.
func refMTH(leaves []Hash) Hash {
	switch n := len(leaves); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	default:
		k := refSplit(n)
		return refNode(refMTH(leaves[:k]), refMTH(leaves[k:]))
	}
}

// refPath is PATH(m, D[n]).
func refPath(m int, leaves []Hash) []Hash {
	n := len(leaves)
	if n <= 1 {
		return nil
	}
	k := refSplit(n)
	if m < k {
		return append(refPath(m, leaves[:k]), refMTH(leaves[k:]))
	}
	return append(refPath(m-k, leaves[k:]), refMTH(leaves[:k]))
}

// refProof is PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
func refProof(m int, leaves []Hash) []Hash { return refSubproof(m, leaves, true) }

func refSubproof(m int, leaves []Hash, b bool) []Hash {
	n := len(leaves)
	if m == n {
		if b {
			return nil
		}
		return []Hash{refMTH(leaves)}
	}
	k := refSplit(n)
	if m <= k {
		return append(refSubproof(m, leaves[:k], b), refMTH(leaves[k:]))
	}
	return append(refSubproof(m-k, leaves[k:], false), refMTH(leaves[:k]))
}

func testLeaves(n int) LeafHashList {
	out := make(LeafHashList, n)
	for i := range out {
		out[i] = refLeaf(binary.BigEndian.AppendUint64(nil, uint64(i)))
	}
	return out
}

// TestProofsAgainstReference rebuilds every tree of 1..N leaves from the
// RFC's definitions and checks the log's roots, every inclusion proof and
// every consistency proof against them, and that each verifies.
func TestProofsAgainstReference(t *testing.T) {
	const n = 70
	ctx := context.Background()
	leaves := testLeaves(n)
	log := NewLog()
	assert.Equal(t, refMTH(nil), log.Root(), "empty tree")
	for size := 1; size <= n; size++ {
		idx, err := log.Append(leaves[size-1])
		require.NoError(t, err)
		require.Equal(t, uint64(size-1), idx)
		root := refMTH(leaves[:size])
		require.Equal(t, root, log.Root(), "root at size %d", size)

		req := ProofRequest{Size: uint64(size)}
		for i := range size {
			req.Inclusion = append(req.Inclusion, uint64(i))
		}
		for m := 0; m <= size; m++ {
			req.ConsistencyFrom = append(req.ConsistencyFrom, uint64(m))
		}
		got, err := Prove(ctx, leaves[:size], req)
		require.NoError(t, err)
		require.Equal(t, root, got.Root)
		for i := range size {
			want := refPath(i, leaves[:size])
			assert.Equal(t, nilIfEmpty(want), nilIfEmpty(got.Inclusion[i]), "inclusion of %d in %d", i, size)
			require.NoError(t, VerifyInclusion(uint64(i), uint64(size), leaves[i], got.Inclusion[i], root))
			if size > 1 {
				wrong := leaves[(i+1)%size]
				assert.Error(t, VerifyInclusion(uint64(i), uint64(size), wrong, got.Inclusion[i], root), "another leaf at %d of %d", i, size)
			}
		}
		for m := 0; m <= size; m++ {
			var want []Hash
			if m > 0 {
				want = refProof(m, leaves[:size])
			}
			assert.Equal(t, nilIfEmpty(want), nilIfEmpty(got.Consistency[m]), "consistency %d → %d", m, size)
			old := Checkpoint{Origin: "o", Size: uint64(m), Root: refMTH(leaves[:m])}
			require.NoError(t, CheckConsistent(old, Checkpoint{Origin: "o", Size: uint64(size), Root: root}, got.Consistency[m]))
			if m > 0 && m < size {
				forked := old
				forked.Root[0] ^= 1
				assert.Error(t, CheckConsistent(forked, Checkpoint{Origin: "o", Size: uint64(size), Root: root}, got.Consistency[m]))
			}
		}
	}
}

func nilIfEmpty(h []Hash) []Hash {
	if len(h) == 0 {
		return nil
	}
	return h
}

func TestProveChecksTheSource(t *testing.T) {
	ctx := context.Background()
	leaves := testLeaves(5)
	_, err := Prove(ctx, leaves, ProofRequest{Size: 6, Inclusion: []uint64{0}})
	assert.ErrorContains(t, err, "out of a list of 5")
	short := LeafSourceFunc(func(ctx context.Context, begin, end uint64, fn func(Hash) error) error {
		return leaves.LeafHashes(ctx, begin, end-1, fn)
	})
	_, err = Prove(ctx, short, ProofRequest{Size: 5, Inclusion: []uint64{0}})
	assert.ErrorContains(t, err, "got 4")
	long := LeafSourceFunc(func(ctx context.Context, begin, end uint64, fn func(Hash) error) error {
		return leaves.LeafHashes(ctx, begin, end+1, fn)
	})
	_, err = Prove(ctx, long, ProofRequest{Size: 4, Inclusion: []uint64{0}})
	assert.ErrorContains(t, err, "more leaves than asked for")
	_, err = Prove(ctx, leaves, ProofRequest{Size: 5, Inclusion: []uint64{5}})
	assert.ErrorContains(t, err, "out of bounds")
	_, err = Prove(ctx, leaves, ProofRequest{Size: 3, ConsistencyFrom: []uint64{4}})
	assert.ErrorContains(t, err, "consistency")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Prove(cancelled, leaves, ProofRequest{Size: 5})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestLogStateRoundTrip(t *testing.T) {
	leaves := testLeaves(100)
	log := NewLog()
	for size := 0; size <= 100; size++ {
		if size > 0 {
			_, err := log.Append(leaves[size-1])
			require.NoError(t, err)
		}
		b, err := log.MarshalBinary()
		require.NoError(t, err)
		back, err := ParseLogState(b)
		require.NoError(t, err)
		require.True(t, log.Equal(back))
		require.Equal(t, log.Root(), back.Root())
	}
	b, _ := log.MarshalBinary()
	for _, tc := range []struct {
		name   string
		in     []byte
		reason string
	}{
		{"empty", nil, "truncated"},
		{"version", append([]byte{2}, b[1:]...), "version 2"},
		{"trailing", append(b, 0), "trailing"},
		{"short", b[:len(b)-1], "truncated"},
	} {
		_, err := ParseLogState(tc.in)
		assert.ErrorContains(t, err, tc.reason, tc.name)
	}
}

func TestLogCloneIsIndependent(t *testing.T) {
	leaves := testLeaves(10)
	a := NewLog()
	for _, h := range leaves[:7] {
		_, _ = a.Append(h)
	}
	b := a.Clone()
	_, _ = b.Append(leaves[7])
	assert.Equal(t, uint64(7), a.Size())
	assert.Equal(t, refMTH(leaves[:7]), a.Root())
	assert.Equal(t, refMTH(leaves[:8]), b.Root())
	_, _ = a.Append(leaves[9]) // a forks from b
	assert.NotEqual(t, a.Root(), b.Root())
}

func TestVerifyExtends(t *testing.T) {
	ctx := context.Background()
	leaves := testLeaves(20)
	from, to := NewLog(), NewLog()
	for i, h := range leaves {
		if i < 12 {
			_, _ = from.Append(h)
		}
		_, _ = to.Append(h)
	}
	require.NoError(t, VerifyExtends(ctx, from, leaves, to))
	forged := append(LeafHashList(nil), leaves...)
	forged[15][0] ^= 1
	assert.ErrorContains(t, VerifyExtends(ctx, from, forged, to), "it forked")
	assert.Error(t, VerifyExtends(ctx, to, leaves, from))
}

func TestPartitionLog(t *testing.T) {
	p, err := NewPartitionLog("orders", 2)
	require.NoError(t, err)
	rec := func(off int64) Leaf {
		return Leaf{Kind: KindRecord, Topic: "orders", Partition: 2, Offset: off, LeaderEpoch: 1, TimestampMs: 1000 + off}
	}
	es, err := p.AppendRecord(rec(10))
	require.NoError(t, err)
	require.Len(t, es, 1, "the first record starts the log: no gap before it")
	es, err = p.AppendRecord(rec(11))
	require.NoError(t, err)
	require.Len(t, es, 1)
	assert.Equal(t, uint64(1), es[0].Index)

	es, err = p.AppendRecord(rec(15))
	require.NoError(t, err)
	require.Len(t, es, 2, "a gap leaf for 12..14, then the record")
	assert.Equal(t, Leaf{Kind: KindGap, Topic: "orders", Partition: 2, Offset: 12, End: 15, LeaderEpoch: 1, TimestampMs: 1015}, es[0].Leaf)
	assert.Equal(t, []uint64{2, 3}, []uint64{es[0].Index, es[1].Index})
	assert.Equal(t, LeafHash(es[1].Bytes), es[1].Hash)

	_, err = p.AppendRecord(rec(15))
	assert.ErrorIs(t, err, ErrAlreadyLogged, "a redelivery")
	_, err = p.AppendRecord(rec(3))
	assert.ErrorIs(t, err, ErrAlreadyLogged)
	assert.Equal(t, uint64(4), p.Log().Size(), "nothing appended by a refused record")
	_, err = p.AppendRecord(Leaf{Kind: KindRecord, Topic: "orders", Partition: 1, Offset: 16})
	assert.ErrorContains(t, err, "cannot append")

	staged := p.Clone()
	_, err = staged.AppendRecord(rec(16))
	require.NoError(t, err)
	assert.Equal(t, int64(16), p.Next(), "the clone is staged apart")

	trs, err := p.Truncated(16, 14, 2, 5000)
	require.NoError(t, err)
	require.Len(t, trs, 1, "the tap had read to its log's next offset: no gap")
	assert.Equal(t, KindTruncation, trs[0].Leaf.Kind)
	assert.Equal(t, int64(14), p.Next())
	es, err = p.AppendRecord(Leaf{Kind: KindRecord, Topic: "orders", Partition: 2, Offset: 14, LeaderEpoch: 2})
	require.NoError(t, err)
	require.Len(t, es, 1, "offset 14 again, under the new epoch")
	_, err = p.Truncated(15, 20, 2, 0)
	assert.Error(t, err, "a truncation forward of what the tap read")
	trs, err = p.Truncated(15, 15, 3, 6000)
	require.NoError(t, err, "a loss where the tap was: marked, nothing logged again")
	require.Len(t, trs, 1)
	assert.Equal(t, int64(15), trs[0].Leaf.Offset)
	assert.Equal(t, int64(15), p.Next())
	trs, err = p.Truncated(18, 17, 4, 7000)
	require.NoError(t, err, "the tap read 15-17 and stored nothing of them (an aborted transaction)")
	require.Len(t, trs, 2)
	assert.Equal(t, Leaf{Kind: KindGap, Topic: "orders", Partition: 2, Offset: 15, End: 18, LeaderEpoch: -1, TimestampMs: 7000}, trs[0].Leaf)
	assert.Equal(t, Leaf{Kind: KindTruncation, Topic: "orders", Partition: 2, Offset: 17, LeaderEpoch: 4, TimestampMs: 7000}, trs[1].Leaf)
	assert.Equal(t, int64(17), p.Next())

	b, err := p.MarshalBinary()
	require.NoError(t, err)
	back, err := ParsePartitionState(b)
	require.NoError(t, err)
	assert.Equal(t, p.Next(), back.Next())
	assert.True(t, p.Log().Equal(back.Log()))
	_, err = back.AppendRecord(rec(16))
	assert.True(t, errors.Is(err, ErrAlreadyLogged), "the resumed log knows where it is")
	_, err = ParsePartitionState(append(b, 1))
	assert.ErrorContains(t, err, "trailing")
}

// TestPartitionLogStartAt: a log started at the offset the tap began
// reading from opens with a gap leaf up to its first record; only an empty
// log starts, and an empty log cannot be truncated.
func TestPartitionLogStartAt(t *testing.T) {
	p, err := NewPartitionLog("orders", 0)
	require.NoError(t, err)
	_, err = p.Truncated(0, 0, 1, 0)
	assert.Error(t, err, "nothing logged, nothing to truncate")
	assert.Error(t, p.StartAt(-1))
	require.NoError(t, p.StartAt(3))
	es, err := p.AppendRecord(Leaf{Kind: KindRecord, Topic: "orders", Offset: 7, LeaderEpoch: 1, TimestampMs: 9})
	require.NoError(t, err)
	require.Len(t, es, 2)
	assert.Equal(t, Leaf{Kind: KindGap, Topic: "orders", Offset: 3, End: 7, LeaderEpoch: 1, TimestampMs: 9}, es[0].Leaf)
	assert.Error(t, p.StartAt(0), "a log with leaves")

	q, err := NewPartitionLog("orders", 0)
	require.NoError(t, err)
	require.NoError(t, q.StartAt(7))
	es, err = q.AppendRecord(Leaf{Kind: KindRecord, Topic: "orders", Offset: 7})
	require.NoError(t, err)
	assert.Len(t, es, 1, "the first record where the tap began: no gap")
}
