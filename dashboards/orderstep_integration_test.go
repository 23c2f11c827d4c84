package dashboards

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestOrderStepRulesAgree proves that the three places that say which step
// an order is in agree on every order of a varied set: the detector's Go
// rule (consistency.OrderStates, over the chain read from ClickHouse), the
// live stuck-orders query (Engine.StuckLive, SQL built in chstore from the
// workflows) and the dashboards' state SQL (stateSQL, which Grafana runs).
// The orders reach every step of every built-in workflow, have events out
// of order in event time and arriving late, a retried record, a step
// entered twice, belong to two workflows (entered last in either, or both
// at once), or end in a terminal step with later events of other steps.
//
// What each rule says is compared as follows:
//   - per order and workflow, Go's step is the dashboards' state, and both
//     place the order in the same workflows;
//   - the stuck query, at a clock far past every SLA, lists exactly the
//     orders whose workflow entered last (Go's first state) is not
//     terminal, in that workflow and step.
func TestOrderStepRulesAgree(t *testing.T) {
	store, cfg := testStore(t)
	ctx := context.Background()
	ws := consistency.Builtin()
	t0 := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Millisecond)

	type ev struct {
		typ string
		at  time.Duration // after t0
	}
	orders := map[string][]ev{}
	// Every step of every workflow, by each event type that enters it,
	// after the workflow's first step.
	for _, w := range ws {
		for _, st := range w.Steps {
			for _, typ := range st.On {
				id := fmt.Sprintf("%s-%s-%s", w.Name, st.Name, typ)
				orders[id] = []ev{{w.Steps[0].On[0], 0}, {typ, time.Minute}}
			}
		}
	}
	for id, evs := range map[string][]ev{
		// Lost events between: the furthest step wins.
		"skipped": {{"OrderPlaced", 0}, {"CustomerNotified", time.Hour}},
		// A later step happened earlier in event time: still the furthest step.
		"out-of-order": {{"PickedUp", 0}, {"OrderPlaced", time.Hour}, {"InventoryReserved", 2 * time.Hour}},
		// A step entered twice (a retry loop): entered at the later one.
		"retrying": {{"PaymentRequested", 0}, {"PaymentRetryScheduled", time.Minute}, {"PaymentRetryScheduled", time.Hour}},
		// A terminal step, then a late event of a further, unfinished step.
		"completed-then-expired": {{"OrderPlaced", 0}, {"OrderCompleted", time.Hour}, {"PickupExpired", 2 * time.Hour}},
		// A terminal step, then a late event of an earlier step.
		"declined-then-retry": {{"PaymentRequested", 0}, {"PaymentDeclined", time.Hour}, {"PaymentRetryScheduled", 2 * time.Hour}},
		// Both workflows: BOPIS entered last.
		"both-bopis-last": {{"OrderPlaced", 0}, {"PaymentRequested", time.Minute}, {"InventoryReserved", time.Hour}},
		// Both workflows: the payment entered last.
		"both-payment-last": {{"OrderPlaced", 0}, {"InventoryReserved", time.Minute}, {"PaymentRequested", time.Hour}},
		// Both: the payment retried last, BOPIS done.
		"both-bopis-done": {{"OrderPlaced", 0}, {"OrderCompleted", time.Minute}, {"PaymentRetryScheduled", time.Hour}},
		// Both: the payment done last, BOPIS waiting.
		"both-payment-done": {{"OrderPlaced", 0}, {"PaymentRequested", time.Minute}, {"PaymentFailed", time.Hour}},
		// PaymentAuthorized ends the payment and moves BOPIS on at the same
		// instant: on the tie, the unfinished workflow is where it waits.
		"both-same-instant": {{"OrderPlaced", 0}, {"InventoryReserved", time.Minute}, {"PaymentRequested", 2 * time.Minute},
			{"PaymentAuthorized", time.Hour}},
		// Both finished.
		"both-finished": {{"OrderPlaced", 0}, {"PaymentRequested", time.Minute}, {"PaymentAuthorized", time.Hour},
			{"OrderCancelled", 2 * time.Hour}},
		// Two terminal steps of one workflow (completed and cancelled, the
		// race of the talk), in either order of event time: the furthest
		// terminal step in the workflow's list.
		"completed-then-cancelled": {{"OrderPlaced", 0}, {"OrderCompleted", time.Minute}, {"OrderCancelled", time.Hour}},
		"cancelled-then-completed": {{"OrderPlaced", 0}, {"OrderCancelled", time.Minute}, {"OrderCompleted", time.Hour}},
		// No workflow knows its events.
		"unknown": {{"SomethingElse", 0}},
		// PaymentAuthorized alone identifies neither workflow.
		"unidentified": {{"PaymentAuthorized", 0}},
	} {
		orders[id] = evs
	}
	// Stored in two batches, the second ingested later: half the orders'
	// last events arrive late, and one record is stored twice.
	var early, late []event.Event
	off := int64(0)
	for _, id := range slices.Sorted(maps.Keys(orders)) {
		evs := orders[id]
		for i, e := range evs {
			off++
			rec := event.Event{Topic: "orders", Offset: off, EventID: fmt.Sprintf("%s-%d", id, i), Type: e.typ, Service: "svc",
				OrderID: id, EventTime: t0.Add(e.at), RecordTime: t0, PayloadHash: fmt.Sprintf("%064d", off)}
			if i == len(evs)-1 && off%2 == 0 {
				late = append(late, rec)
			} else {
				early = append(early, rec)
			}
		}
	}
	late = append(late, late[0])
	require.NoError(t, store.InsertEvents(ctx, early, t0.Add(time.Hour), ""))
	require.NoError(t, store.InsertEvents(ctx, late, time.Now().UTC(), ""))

	// The Go rule, over each order's chain as the detector reads it.
	e := consistency.NewEngine(store, ws)
	goSteps := map[string]map[string]string{} // order → workflow → step
	waiting := map[string][2]string{}         // order → the unfinished (workflow, step) it waits in
	for id := range orders {
		chain, err := e.Chain(ctx, id)
		require.NoError(t, err)
		states := consistency.OrderStates(ws, chain)
		for _, s := range states {
			if goSteps[id] == nil {
				goSteps[id] = map[string]string{}
			}
			goSteps[id][s.Workflow] = s.Step
		}
		if len(states) > 0 && !states[0].Terminal {
			waiting[id] = [2]string{states[0].Workflow, states[0].Step}
		}
	}

	// The dashboards' state SQL, one query per workflow.
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: testenv.ClickHouseAddr(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	opts := DefaultOptions()
	opts.Database, opts.Workflows = cfg.Database, ws
	g := &generator{opts: opts}
	dashSteps := map[string]map[string]string{}
	for _, w := range ws {
		rows, err := conn.Query(ctx, "SELECT order_id, state FROM ("+g.stateSQL(w)+")")
		require.NoError(t, err)
		for rows.Next() {
			var id, state string
			require.NoError(t, rows.Scan(&id, &state))
			if dashSteps[id] == nil {
				dashSteps[id] = map[string]string{}
			}
			dashSteps[id][w.Name] = state
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}

	// The stuck query, at a clock past every SLA: every unfinished order.
	live, err := e.StuckLive(ctx, consistency.Clock{Now: t0.Add(365 * 24 * time.Hour)}, consistency.Filter{})
	require.NoError(t, err)
	stuckSteps := map[string][2]string{}
	for _, s := range live {
		stuckSteps[s.OrderID] = [2]string{s.Workflow, s.Step}
	}

	// Every step of every workflow is covered, as the one an order waits in
	// or a terminal one.
	for _, w := range ws {
		for _, st := range w.Steps {
			assert.True(t, slices.ContainsFunc(slices.Collect(maps.Values(goSteps)), func(m map[string]string) bool { return m[w.Name] == st.Name }),
				"no order in %s/%s", w.Name, st.Name)
		}
	}
	assert.Equal(t, goSteps, dashSteps, "Go (OrderStates) and the dashboards' state SQL place orders differently")
	assert.Equal(t, waiting, stuckSteps, "Go (OrderStates) and the stuck query place unfinished orders differently")
	assert.Contains(t, waiting, "both-same-instant")
	assert.NotContains(t, goSteps, "unknown")

}

// testStore is testenv.Store, with the config that names the test's
// database.
func testStore(t *testing.T) (*chstore.Store, chstore.Config) {
	t.Helper()
	cfg := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := chstore.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	require.NoError(t, store.Migrate(ctx))
	return store, cfg
}
