package consistency

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// placed is an OrderPlaced event of order id at event time at.
func placed(id string, offset int64, at time.Time) event.Event {
	return event.Event{Topic: "orders", Offset: offset, EventID: id + "-placed", Type: "OrderPlaced", Service: "orders",
		OrderID: id, EventTime: at, RecordTime: at, PayloadHash: id}
}

func stuckIDs(t *testing.T, e *Engine) []string {
	t.Helper()
	fs, err := e.Findings(context.Background(), FindingFilter{Kind: KindStuck, Status: "active"})
	require.NoError(t, err)
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.OrderID)
	}
	return ids
}

// TestStuckAfterTheClockWentBack: the stream's clock runs on wall time
// through a quiet spell, then a backlog of older events arrives and the
// clock goes back. An order of the backlog whose deadline lies between is
// raised once the clock passes its deadline again, not skipped because an
// earlier pass's window had already gone past it.
func TestStuckAfterTheClockWentBack(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Millisecond)
	wall := t0.Add(24 * time.Hour)
	e := NewEngine(store, Builtin())
	e.wall = func() time.Time { return wall }
	d := NewDetector(e, time.Minute, Default().Windows, Settings{})

	// A stored an hour of wall time ago, nothing since: the clock is t0 + 1h.
	require.NoError(t, store.InsertEvents(ctx, []event.Event{placed("a", 1, t0)}, wall.Add(-time.Hour), ""))
	_, err := d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, stuckIDs(t, e), "placed an hour ago on the stream's clock, SLA 5m")

	// The backlog: b placed ten minutes after a, stored now. The clock goes
	// back to t0 + 10m; b's deadline (t0 + 15m) is ahead of it.
	require.NoError(t, store.InsertEvents(ctx, []event.Event{placed("b", 2, t0.Add(10*time.Minute))}, wall, ""))
	wall = wall.Add(time.Second)
	_, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, stuckIDs(t, e), "b not stuck yet on the stream's clock")

	// Half an hour of quiet: the clock passes b's deadline.
	wall = wall.Add(30 * time.Minute)
	_, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"a", "b"}, stuckIDs(t, e), "b raised once the clock passed its deadline")
}

// TestIngestWindowStopsAtAnInsertInFlight: rows an insert stamps while a
// pass runs, and that become visible later than Settle after their stamp
// (a slow or retried insert), are still looked at by a later pass: the
// window never passes the tap's insert in flight.
func TestIngestWindowStopsAtAnInsertInFlight(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Millisecond)
	wall := t0.Add(24 * time.Hour)
	var storing time.Time
	e := NewEngine(store, Builtin())
	e.wall = func() time.Time { return wall }
	d := NewDetector(e, time.Minute, Default().Windows, Settings{Settle: time.Second,
		StoringSince: func() time.Time { return storing }})

	require.NoError(t, store.InsertEvents(ctx, []event.Event{placed("a", 1, t0)}, wall.Add(-time.Minute), ""))
	// The tap begins an insert, stamps its rows, and is slow.
	storing = wall.Add(-30 * time.Second)
	stamp := storing.Add(time.Millisecond)
	wall = wall.Add(time.Minute)
	res, err := d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Checked)

	// The slow insert lands a minute after its stamp; the pass after sees it.
	require.NoError(t, store.InsertEvents(ctx, []event.Event{placed("late", 2, t0)}, stamp, ""))
	storing = time.Time{}
	wall = wall.Add(time.Minute)
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Checked, "the late rows' order")
	p, err := e.progressOfOrders(ctx, []string{"late"})
	require.NoError(t, err)
	assert.Contains(t, p, "late", "its progress stored, so its deadline will be found")
}
