package chstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestAuditLeavesAndCheckpoints: leaves round-trip byte for byte, a retried
// insert (same token) is dropped, the newest state per partition is the
// one with the highest leaf index, and checkpoints read back by origin.
func TestAuditLeavesAndCheckpoints(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	leaves := func(part int32, from, n uint64, state string) []chstore.AuditLeafRow {
		var out []chstore.AuditLeafRow
		for i := from; i < from+n; i++ {
			leaf := []byte(fmt.Sprintf("leaf\x00%d/%d", part, i))
			out = append(out, chstore.AuditLeafRow{Topic: "orders", Partition: part, LeafIndex: i, Kind: "record",
				Offset: int64(i), OrderID: "o1", Leaf: leaf, LeafHash: sha256.Sum256(leaf), Salt: []byte{0, 1, 2}})
		}
		out[len(out)-1].State = []byte(state)
		return out
	}
	now := time.Now().UTC()
	chstore.SetInsertBlocks(store, 2, nil) // three leaves: two blocks, stored and deduplicated as one
	require.NoError(t, store.InsertAuditLeaves(ctx, leaves(0, 0, 3, "s0-3"), now, "tok-a"))
	require.NoError(t, store.InsertAuditLeaves(ctx, leaves(0, 0, 3, "s0-3"), now, "tok-a"), "a retry")
	require.NoError(t, store.InsertAuditLeaves(ctx, leaves(0, 3, 2, "s0-5"), now, "tok-b"))
	require.NoError(t, store.InsertAuditLeaves(ctx, leaves(1, 0, 1, "s1-1"), now, "tok-c"))

	var got []chstore.AuditLeafRow
	require.NoError(t, store.AuditLeaves(ctx, "orders", 0, func(r chstore.AuditLeafRow) error { got = append(got, r); return nil }))
	assert.Equal(t, leaves(0, 0, 3, "s0-3")[2], got[2], "byte for byte")
	assert.Len(t, got, 5, "the retry was dropped")

	for part, state := range []string{"s0-5", "s1-1"} {
		head, err := store.AuditHead(ctx, "orders", int32(part), 0)
		require.NoError(t, err)
		assert.Equal(t, [][]byte{[]byte(state)}, head.States, "partition %d resumes from the state on its highest leaf", part)
	}

	var hashes [][32]byte
	require.NoError(t, store.AuditLeafHashes(ctx, "orders", 0, 1, 4, func(h [32]byte) error { hashes = append(hashes, h); return nil }))
	assert.Equal(t, [][32]byte{got[1].LeafHash, got[2].LeafHash, got[3].LeafHash}, hashes)

	cp := chstore.CheckpointRow{Origin: "weft/c/orders/0", Size: 5, Root: sha256.Sum256([]byte("r")), Note: []byte("weft/c/orders/0\n5\nxx\n"),
		CreatedAt: now.Truncate(time.Millisecond)}
	require.NoError(t, store.InsertCheckpoint(ctx, cp))
	cps, err := store.Checkpoints(ctx, "weft/c/orders/0")
	require.NoError(t, err)
	require.Len(t, cps, 1)
	assert.Equal(t, cp.Root, cps[0].Root)
	assert.Equal(t, cp.Note, cps[0].Note)
	assert.True(t, cp.CreatedAt.Equal(cps[0].CreatedAt))
}
