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
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestAuditVerifyReadsFrom: what `weft audit verify --since` reads. The
// state it starts from is the one of the highest leaf stored before the
// time given (none before the first insert); leaves are read from an
// index on, rows from an offset on.
func TestAuditVerifyReadsFrom(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	insert := func(from, n uint64, state string, at time.Time, token string) {
		var rows []chstore.AuditLeafRow
		for i := from; i < from+n; i++ {
			leaf := []byte(fmt.Sprintf("leaf %d", i))
			rows = append(rows, chstore.AuditLeafRow{Topic: "orders", LeafIndex: i, Kind: "record", Offset: int64(i),
				Leaf: leaf, LeafHash: sha256.Sum256(leaf)})
		}
		rows[len(rows)-1].State = []byte(state)
		require.NoError(t, store.InsertAuditLeaves(ctx, rows, at, token))
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	insert(0, 3, "s3", t0, "a")
	insert(3, 2, "s5", t0.Add(time.Minute), "b")
	insert(5, 4, "s9", t0.Add(2*time.Minute), "c")

	for _, tc := range []struct {
		before time.Time
		ok     bool
		leaf   uint64
		state  string
	}{
		{t0, false, 0, ""},
		{t0.Add(time.Millisecond), true, 2, "s3"},
		{t0.Add(time.Minute), true, 2, "s3"}, // strictly before
		{t0.Add(90 * time.Second), true, 4, "s5"},
		{t0.Add(time.Hour), true, 8, "s9"},
	} {
		st, ok, err := store.AuditStateBefore(ctx, "orders", 0, tc.before)
		require.NoError(t, err)
		assert.Equal(t, tc.ok, ok, "before %s", tc.before)
		assert.Equal(t, tc.leaf, st.LeafIndex, "before %s", tc.before)
		assert.Equal(t, tc.state, string(st.State), "before %s", tc.before)
	}
	st, _, err := store.AuditStateBefore(ctx, "orders", 0, t0.Add(time.Hour))
	require.NoError(t, err)
	assert.True(t, st.StoredAt.Equal(t0.Add(2*time.Minute)), "%s", st.StoredAt)
	_, ok, err := store.AuditStateBefore(ctx, "orders", 1, t0.Add(time.Hour))
	require.NoError(t, err)
	assert.False(t, ok, "another partition")

	var idx []uint64
	require.NoError(t, store.AuditLeavesFrom(ctx, "orders", 0, 5, func(r chstore.AuditLeafRow) error { idx = append(idx, r.LeafIndex); return nil }))
	assert.Equal(t, []uint64{5, 6, 7, 8}, idx)

	var evs []event.Event
	for off := range int64(4) {
		evs = append(evs, event.Event{Topic: "orders", Offset: off, EventID: fmt.Sprint("e", off), OrderID: "o1", Type: "OrderPlaced",
			RecordTime: t0, EventTime: t0})
	}
	require.NoError(t, store.InsertEvents(ctx, evs, t0, "e"))
	var offs []int64
	require.NoError(t, store.AuditEventRowsFrom(ctx, "orders", 0, 2, func(e event.Event) error { offs = append(offs, e.Offset); return nil }))
	assert.Equal(t, []int64{2, 3}, offs)
}
