package chstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestAuditHead: a log's end is its highest leaf index with the states on
// it — one for a whole log, an empty one when the end was cut, two when
// two writers forked it — and ClickHouse reads only the log's last
// granules for it, whatever the log's size.
func TestAuditHead(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	insert := func(part int32, from, n uint64, state, token string) {
		t.Helper()
		rows := make([]chstore.AuditLeafRow, 0, n)
		for i := from; i < from+n; i++ {
			leaf := []byte(fmt.Sprintf("leaf %d/%d %s", part, i, token))
			rows = append(rows, chstore.AuditLeafRow{Topic: "orders", Partition: part, LeafIndex: i, Kind: "record",
				Offset: int64(i), Leaf: leaf, LeafHash: sha256.Sum256(leaf)})
		}
		rows[len(rows)-1].State = []byte(state)
		require.NoError(t, store.InsertAuditLeaves(ctx, rows, time.Now(), token))
	}

	h, err := store.AuditHead(ctx, "orders", 0, 0)
	require.NoError(t, err)
	assert.Equal(t, chstore.AuditHead{}, h, "no leaf")

	insert(0, 0, 3, "s3", "a")
	insert(0, 3, 2, "s5", "b")
	h, err = store.AuditHead(ctx, "orders", 0, 0)
	require.NoError(t, err)
	assert.Equal(t, chstore.AuditHead{Size: 5, States: [][]byte{[]byte("s5")}}, h)
	insert(0, 3, 2, "s5", "b-again") // the same leaves stored twice: one state
	h, err = store.AuditHead(ctx, "orders", 0, 0)
	require.NoError(t, err)
	assert.Len(t, h.States, 1)

	insert(0, 5, 1, "s6-x", "c")
	insert(0, 5, 1, "s6-y", "d") // a second writer at the same index
	h, err = store.AuditHead(ctx, "orders", 0, 0)
	require.NoError(t, err)
	assert.Equal(t, uint64(6), h.Size)
	assert.ElementsMatch(t, [][]byte{[]byte("s6-x"), []byte("s6-y")}, h.States)

	insert(1, 0, 4, "", "e") // the end of a log without its state
	h, err = store.AuditHead(ctx, "orders", 1, 0)
	require.NoError(t, err)
	assert.Equal(t, chstore.AuditHead{Size: 4, States: [][]byte{{}}}, h)

	states, err := store.AuditStatesAt(ctx, "orders", 0, 2)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("s3")}, states)
	states, err = store.AuditStatesAt(ctx, "orders", 0, 1)
	require.NoError(t, err)
	assert.Empty(t, states, "no insert ended at leaf 1")

	h, err = store.AuditHead(ctx, "orders", 0, 6)
	require.NoError(t, err)
	assert.Equal(t, chstore.AuditHead{}, h, "nothing from index 6 on")

	// Several logs' ends in one read, each from its own index: as read one
	// by one.
	for _, ends := range [][]chstore.AuditLogEnd{
		{{Topic: "orders", Partition: 1, From: 3}, {Topic: "orders", Partition: 0, From: 2}, {Topic: "orders", Partition: 7}},
		{{Topic: "orders", Partition: 0, From: 6}, {Topic: "orders", Partition: 1}},
		{{Topic: "orders", Partition: 0}},
	} {
		heads, err := store.AuditHeads(ctx, ends)
		require.NoError(t, err)
		require.Len(t, heads, len(ends))
		for i, e := range ends {
			one, err := store.AuditHead(ctx, e.Topic, e.Partition, e.From)
			require.NoError(t, err)
			assert.Equal(t, one.Size, heads[i].Size, "%+v", e)
			assert.ElementsMatch(t, one.States, heads[i].States, "%+v", e)
		}
	}

	// A long log: from a known index, the head is read from the log's end.
	for i := uint64(0); i < 20; i++ {
		insert(2, i*10_000, 10_000, fmt.Sprint("s", (i+1)*10_000), fmt.Sprint("big", i))
	}
	var read uint64
	progress := clickhouse.Context(ctx, clickhouse.WithProgress(func(p *clickhouse.Progress) { read += p.Rows }))
	h, err = store.AuditHead(progress, "orders", 2, 199_999)
	require.NoError(t, err)
	assert.Equal(t, chstore.AuditHead{Size: 200_000, States: [][]byte{[]byte("s200000")}}, h)
	t.Logf("rows read for the head of a log of 200,000 leaves in 20 parts: %d", read)
	assert.Less(t, read, uint64(20_000), "a granule or two, not one per part")
	read = 0
	heads, err := store.AuditHeads(progress, []chstore.AuditLogEnd{{Topic: "orders", Partition: 2, From: 199_999}, {Topic: "orders", Partition: 0, From: 5}})
	require.NoError(t, err)
	assert.Equal(t, uint64(200_000), heads[0].Size)
	assert.Less(t, read, uint64(30_000), "AuditHeads reads a granule or two per log")
	h, err = store.AuditHead(ctx, "orders", 2, 0)
	require.NoError(t, err)
	assert.Equal(t, uint64(200_000), h.Size)
}

// TestLastCheckpoint: the largest checkpoint of a log, none for a log
// without one.
func TestLastCheckpoint(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	_, ok, err := store.LastCheckpoint(ctx, "weft/c/orders/0")
	require.NoError(t, err)
	assert.False(t, ok)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i, size := range []uint64{5, 20, 10} {
		require.NoError(t, store.InsertCheckpoint(ctx, chstore.CheckpointRow{Origin: "weft/c/orders/0", Size: size,
			Root: sha256.Sum256([]byte(fmt.Sprint(size))), Note: []byte(fmt.Sprint(size)), CreatedAt: now.Add(time.Duration(i) * time.Second)}))
	}
	c, ok, err := store.LastCheckpoint(ctx, "weft/c/orders/0")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, uint64(20), c.Size)
	assert.Equal(t, []byte("20"), c.Note)
}
