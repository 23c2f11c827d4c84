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

// RecheckAt is the first window still running, counted from the last event
// (redeliveries of an id count once, as in CheckOrder); zero after both.
func TestRecheckAt(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	win := Windows{Grace: 2 * time.Minute, Convergence: 5 * time.Minute}
	evs := []ChainEvent{{EventID: "a", EventTime: t0}, {EventID: "b", EventTime: t0.Add(time.Minute)}}
	last := t0.Add(time.Minute)
	assert.Equal(t, last.Add(2*time.Minute), RecheckAt(evs, last, win))
	assert.Equal(t, last.Add(5*time.Minute), RecheckAt(evs, last.Add(2*time.Minute), win), "grace ran out at now: next is convergence")
	assert.True(t, RecheckAt(evs, last.Add(5*time.Minute), win).IsZero())
	// A redelivered id with a later time is the same event: the first wins.
	redelivered := append(evs, ChainEvent{EventID: "a", EventTime: t0.Add(10 * time.Minute)})
	assert.Equal(t, last.Add(2*time.Minute), RecheckAt(redelivered, last, win))
	// Windows in either order.
	assert.Equal(t, last.Add(time.Minute), RecheckAt(evs, last, Windows{Grace: 3 * time.Minute, Convergence: time.Minute}))
	assert.True(t, RecheckAt(nil, last, win).IsZero())
}

// TestRecheckWhenWindowsRunOut: an order with a lost event raises its gap
// only once its grace window ran out on the stream's clock, and the detector
// finds that out without any new event: the order is rechecked
// when the clock passes its stored recheck time, and no more once both
// windows ran out.
func TestRecheckWhenWindowsRunOut(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	ev := func(order, id, typ string, at time.Time, off int64, vv map[string]uint64) event.Event {
		return event.Event{Topic: "payments", Offset: off, EventID: id, Type: typ, Service: "payments", OrderID: order,
			EventTime: at, RecordTime: at, VersionVector: vv, PayloadHash: id}
	}
	// payments:2 was lost between the two events of "gappy".
	require.NoError(t, store.InsertEvents(ctx, []event.Event{
		ev("gappy", "g1", "PaymentRequested", now.Add(-10*time.Second), 1, map[string]uint64{"payments": 1}),
		ev("gappy", "g3", "PaymentAuthorized", now.Add(-5*time.Second), 2, map[string]uint64{"payments": 3}),
		ev("whole", "w1", "PaymentRequested", now.Add(-5*time.Second), 3, map[string]uint64{"payments": 1}),
	}, time.Now().UTC(), ""))

	e := NewEngine(store, Builtin())
	d := NewDetector(e, time.Minute, Windows{Grace: time.Minute, Convergence: 2 * time.Minute}, Settings{})
	gaps := func() []string {
		fs, err := e.Findings(ctx, FindingFilter{Kind: KindGap, Status: "active"})
		require.NoError(t, err)
		var orders []string
		for _, f := range fs {
			orders = append(orders, f.OrderID)
		}
		return orders
	}
	res, err := d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Checked)
	assert.Empty(t, gaps(), "within grace the lost event may still arrive")

	// Three minutes pass without an event: the stream's clock moves on
	// with the wall clock, and both windows of both orders run out.
	e.wall = func() time.Time { return time.Now().Add(3 * time.Minute) }
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, res.Checked, "nothing changed")
	assert.Equal(t, 2, res.Rechecked, "both orders, once each, though each has two recheck rows behind")
	assert.Equal(t, 2, res.Due)
	assert.Equal(t, []string{"gappy"}, gaps())

	// Nothing new: nothing rechecked, the gap stays.
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Checked+res.Rechecked)
	assert.Equal(t, []string{"gappy"}, gaps())

	// Later still, the payment SLA (5m) of "whole" runs out: its stored
	// deadline makes it stuck, from its stored progress, its chain not read.
	e.wall = func() time.Time { return time.Now().Add(6 * time.Minute) }
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Due)
	assert.Zero(t, res.Checked+res.Rechecked)
	assert.Equal(t, 1, res.Opened)
	stuck, err := e.Findings(ctx, FindingFilter{Kind: KindStuck, Status: "active"})
	require.NoError(t, err)
	require.Len(t, stuck, 1)
	assert.Equal(t, "whole", stuck[0].OrderID)
}

// TestSettle: a pass looks only at rows stored at least Settle ago, so a
// row still in flight when the pass runs is looked at by a later pass.
func TestSettle(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, store.InsertEvents(ctx, []event.Event{{Topic: "orders", Offset: 1, EventID: "p1", Type: "OrderPlaced",
		Service: "orders", OrderID: "o1", EventTime: now, RecordTime: now, PayloadHash: "p1"}}, now, ""))
	e := NewEngine(store, Builtin())
	d := NewDetector(e, time.Minute, Default().Windows, Settings{Settle: time.Hour})
	res, err := d.Pass(ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Checked, "stored less than Settle ago")

	e.wall = func() time.Time { return time.Now().Add(time.Hour + time.Second) }
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Checked)
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Checked, "and once only")
}
