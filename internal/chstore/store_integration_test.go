package chstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

func events(n int, base int64) []event.Event {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	out := make([]event.Event, n)
	for i := range out {
		off := base + int64(i) // a record decodes the same every time it is read
		out[i] = event.Event{Topic: "orders", Partition: 1, Offset: off, EventID: fmt.Sprint("e", off),
			Type: "OrderPlaced", OrderID: fmt.Sprint("o", off%3), EventTime: t0.Add(time.Duration(off) * time.Second),
			RecordTime: t0, PayloadHash: fmt.Sprintf("%064d", off), Payload: []byte(`{}`)}
	}
	return out
}

// TestInsertDeduplication: a retried batch (same token) is stored once, in
// the table and in the per-order view; a re-read overlapping batch (new
// token) collapses to one row per record under FINAL.
func TestInsertDeduplication(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	n := func(q string) uint64 {
		var v uint64
		require.NoError(t, store.Conn().QueryRow(ctx, q).Scan(&v))
		return v
	}
	batch := events(10, 0)
	now := time.Now().UTC()
	require.NoError(t, store.InsertEvents(ctx, batch, now, "tok-1"))
	require.NoError(t, store.InsertEvents(ctx, batch, now.Add(time.Second), "tok-1"))
	assert.Equal(t, uint64(10), n("SELECT count() FROM "+store.Table("events")), "same token: dropped at insert")
	assert.Equal(t, uint64(10), n("SELECT sum(events) FROM "+store.Table("order_state")), "and not fed to the view twice")

	// After a crash the records are re-read in a differently shaped batch.
	require.NoError(t, store.InsertEvents(ctx, events(10, 5), now.Add(2*time.Second), "tok-2"))
	assert.Equal(t, uint64(20), n("SELECT count() FROM "+store.Table("events")))
	assert.Equal(t, uint64(15), n("SELECT count() FROM "+store.Table("events")+" FINAL"), "exactly once under FINAL")

	// Migrations are idempotent: running them again changes nothing.
	require.NoError(t, store.Migrate(ctx))
	assert.Equal(t, uint64(15), n("SELECT count() FROM "+store.Table("events")+" FINAL"))
}
