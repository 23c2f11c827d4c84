package consistency

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

// TestStuckAgainstClickHouse loads hand-made orders into a real ClickHouse
// and checks that exactly the stuck ones are reported, at the right step,
// with the right owner, one row per order.
func TestStuckAgainstClickHouse(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	var evs []event.Event
	off := int64(0)
	add := func(order string, ago time.Duration, types ...string) {
		for i, typ := range types {
			off++
			evs = append(evs, event.Event{Topic: "orders", Offset: off, EventID: fmt.Sprintf("%s-%d", order, off),
				Type: typ, Service: "svc", OrderID: order, EventTime: now.Add(-ago + time.Duration(i)*time.Second),
				RecordTime: now, PayloadHash: fmt.Sprintf("%064d", off)})
		}
	}
	add("done", 3*time.Hour, "OrderPlaced", "InventoryReserved", "PaymentAuthorized", "FulfillmentStarted", "ReadyForPickup",
		"CustomerNotified", "PickedUp", "PaymentCaptured", "OrderCompleted")
	add("fresh", time.Minute, "OrderPlaced")                                     // within its 5m SLA
	add("stuck-placed", time.Hour, "OrderPlaced")                                // placed, owes inventory
	add("stuck-notified", 3*time.Hour, "OrderPlaced", "CustomerNotified")        // furthest step wins, lost events between
	add("out-of-order", 2*time.Hour, "PickedUp", "OrderPlaced")                  // late OrderPlaced does not move it back
	add("retrying", 2*time.Hour, "OrderPlaced", "InventoryReserved")             // BOPIS waits on the payment...
	add("retrying", 90*time.Minute, "PaymentRequested", "PaymentRetryScheduled") // ...which is where it is stuck
	add("paying", 2*time.Hour, "OrderPlaced", "InventoryReserved")
	add("paying", 2*time.Minute, "PaymentRequested") // payment in progress within SLA: not stuck anywhere
	add("cancelled", 5*time.Hour, "OrderPlaced", "PickupExpired", "OrderCancelled")
	// The payment's outcome event was lost, but the order completed: a gap, not stuck.
	add("lost-outcome", 3*time.Hour, "OrderPlaced", "InventoryReserved", "PaymentRequested")
	add("lost-outcome", 2*time.Hour, "FulfillmentStarted", "ReadyForPickup", "CustomerNotified", "PickedUp", "PaymentCaptured", "OrderCompleted")
	// PaymentAuthorized ends the payment workflow and moves BOPIS on at the same instant: BOPIS is where it waits.
	add("authorized", 2*time.Hour, "OrderPlaced", "InventoryReserved", "PaymentRequested", "PaymentAuthorized")
	// The same record stored twice (a retried insert) changes nothing.
	evs = append(evs, evs[len(evs)-1])
	require.NoError(t, store.InsertEvents(ctx, evs, now, ""))

	e := NewEngine(store, Builtin())
	clock, err := e.Clock(ctx)
	require.NoError(t, err)
	// The newest event ("fresh", a minute old) was ingested just now: the
	// stream's clock stands at that event, not at the wall clock.
	assert.WithinDuration(t, now.Add(-time.Minute), clock.Now, 5*time.Second)

	type row struct{ order, workflow, step, owner string }
	rowsOf := func(got []StuckOrder) []row {
		var rows []row
		for _, s := range got {
			rows = append(rows, row{s.OrderID, s.Workflow, s.Step, s.Owner})
			assert.Greater(t, s.InStep, s.SLA, s.OrderID)
		}
		return rows
	}
	want := []row{
		{"stuck-placed", "bopis", "placed", "inventory"},
		{"stuck-notified", "bopis", "customer_notified", "pickup"},
		{"out-of-order", "bopis", "picked_up", "payments"},
		{"retrying", "async_payment", "payment_retry_scheduled", "payments"},
		{"authorized", "bopis", "payment_authorized", "fulfillment"},
	}

	// Without a detector every order is evaluated now.
	got, err := e.Stuck(ctx, clock, Filter{})
	require.NoError(t, err)
	assert.Equal(t, "live", got.Source)
	assert.ElementsMatch(t, want, rowsOf(got.Orders))

	// A detector pass opens one finding per stuck order, and stores where
	// every order stands; from then on the stuck list is its findings.
	d := NewDetector(e, time.Minute, Windows{Grace: 2 * time.Minute, Convergence: 5 * time.Minute}, Settings{})
	res, err := d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 5, res.Opened)
	assert.False(t, res.More)
	live := got.Orders
	got, err = e.Stuck(ctx, clock, Filter{})
	require.NoError(t, err)
	assert.Equal(t, "detector", got.Source)
	assert.ElementsMatch(t, want, rowsOf(got.Orders))
	// Each order's last event, as the live answer read it from every event.
	type last struct {
		order, typ string
		at         time.Time
	}
	lastOf := func(orders []StuckOrder) []last {
		var out []last
		for _, s := range orders {
			out = append(out, last{s.OrderID, s.LastEventType, s.LastEventTime.UTC()})
		}
		return out
	}
	assert.ElementsMatch(t, lastOf(live), lastOf(got.Orders))
	assert.Equal(t, 5, got.Total)
	assert.Equal(t, "stuck-notified", got.Orders[0].OrderID, "longest in its step first")

	for _, live := range []bool{false, true} {
		only, err := e.Stuck(ctx, clock, Filter{Service: "pickup", Live: live})
		require.NoError(t, err)
		require.Len(t, only.Orders, 1)
		assert.Equal(t, "stuck-notified", only.Orders[0].OrderID)
		assert.Equal(t, []string{"PickedUp", "PickupExpired"}, only.Orders[0].Expects)

		older, err := e.Stuck(ctx, clock, Filter{OlderThan: 150 * time.Minute, Live: live})
		require.NoError(t, err)
		require.Len(t, older.Orders, 1)
		assert.Equal(t, "stuck-notified", older.Orders[0].OrderID)

		step, err := e.Stuck(ctx, clock, Filter{Workflow: "bopis", Step: "placed", Live: live})
		require.NoError(t, err)
		assert.Equal(t, []row{{"stuck-placed", "bopis", "placed", "inventory"}}, rowsOf(step.Orders))

		page, err := e.Stuck(ctx, clock, Filter{Limit: 2, Live: live})
		require.NoError(t, err)
		assert.Len(t, page.Orders, 2)
		assert.Equal(t, 5, page.Total)
	}

	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, res.Opened, "a second pass is idempotent")
	assert.Equal(t, 0, res.Checked, "nothing changed")

	// Once the order moves on, the next pass resolves its finding.
	add("stuck-placed", 0, "InventoryReserved", "PaymentAuthorized", "FulfillmentStarted", "ReadyForPickup",
		"CustomerNotified", "PickedUp", "PaymentCaptured", "OrderCompleted")
	require.NoError(t, store.InsertEvents(ctx, evs[len(evs)-8:], time.Now().UTC(), ""))
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Checked)
	assert.Equal(t, 1, res.Resolved)
	open, err := e.Findings(ctx, FindingFilter{Kind: KindStuck, Status: "active"})
	require.NoError(t, err)
	assert.Len(t, open, 4)

	// Time passes with no event for "fresh" (placed a minute ago, 5m SLA)
	// nor "paying" (payment requested 2m ago, 5m SLA): their stored
	// deadlines pass and a pass finds them. Their grace and convergence
	// windows ran out too, as did those of "stuck-placed" (which just
	// completed): those three are rechecked from their chains once.
	e.wall = func() time.Time { return time.Now().Add(6 * time.Minute) }
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, res.Checked)
	assert.Equal(t, 3, res.Due)
	assert.Equal(t, 3, res.Rechecked)
	assert.Equal(t, 2, res.Opened)
	open, err = e.Findings(ctx, FindingFilter{Kind: KindStuck, Status: "active"})
	require.NoError(t, err)
	var ids []string
	for _, f := range open {
		ids = append(ids, f.OrderID)
	}
	assert.Contains(t, ids, "fresh")
	assert.Contains(t, ids, "paying")

	// A new detector (a restarted weft) continues from the stored state.
	d2 := NewDetector(e, time.Minute, Windows{Grace: 2 * time.Minute, Convergence: 5 * time.Minute}, Settings{})
	res, err = d2.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, res.Checked+res.Due+res.Opened+res.Resolved, "a restarted detector does not start over: %+v", res)
	e.wall = time.Now

	chain, err := e.Chain(ctx, "out-of-order")
	require.NoError(t, err)
	require.Len(t, chain, 2)
	// No causation ids and a late OrderPlaced: the workflow's step order puts
	// OrderPlaced first and hangs PickedUp under it, marked as inferred.
	assert.Equal(t, "OrderPlaced", chain[0].Type)
	assert.Equal(t, "PickedUp", chain[1].Type)
	assert.Equal(t, ViaWorkflow, chain[1].Via)
}

// TestClockFollowsBackfill: events from last week ingested now must not make
// the clock jump to the wall clock.
func TestClockFollowsBackfill(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	old := time.Now().UTC().Add(-7 * 24 * time.Hour).Truncate(time.Millisecond)
	require.NoError(t, store.InsertEvents(ctx, []event.Event{
		{Topic: "orders", Offset: 1, EventID: "a", Type: "OrderPlaced", OrderID: "o", EventTime: old, RecordTime: old, PayloadHash: fmt.Sprintf("%064d", 1)},
	}, time.Now().UTC(), ""))
	e := NewEngine(store, Builtin())
	clock, err := e.Clock(ctx)
	require.NoError(t, err)
	assert.WithinDuration(t, old, clock.Now, 10*time.Second)
	stuck, err := e.Stuck(ctx, clock, Filter{})
	require.NoError(t, err)
	assert.Empty(t, stuck.Orders, "a just-backfilled order is not stuck on the stream's clock")
	_, err = NewDetector(e, time.Minute, Windows{}, Settings{}).Pass(ctx)
	require.NoError(t, err)
	stuck, err = e.Stuck(ctx, clock, Filter{})
	require.NoError(t, err)
	assert.Equal(t, "detector", stuck.Source)
	assert.Empty(t, stuck.Orders, "nor after a detector pass")
}
