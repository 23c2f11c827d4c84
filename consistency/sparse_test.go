package consistency

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// sparse strips c's events to the four contract fields a plain-JSON
// producer may send alone: event id, type, order id (implied) and time —
// no causation id, no version vector, no trace context.
func sparse(c *chainB) []ChainEvent {
	out := make([]ChainEvent, len(c.evs))
	for i, e := range c.evs {
		out[i] = ChainEvent{EventID: e.EventID, Type: e.Type, Service: e.Service, EventTime: e.EventTime,
			Topic: e.Topic, Offset: e.Offset, PayloadHash: e.PayloadHash}
	}
	return out
}

// TestSparseCompletedOrderIsNotDivergent: an order whose services publish
// only the contract's four fields gets its history from the workflow's
// step order (the chain's inferred edges); once the convergence window
// passed, a normal completed or cancelled order raises nothing.
func TestSparseCompletedOrderIsNotDivergent(t *testing.T) {
	ws := Builtin()
	cancelled, i := notified()
	i = cancelled.add("PickupExpired", "pickup", i)
	i = cancelled.add("InventoryReleased", "inventory", i)
	i = cancelled.add("PaymentVoided", "payments", i)
	cancelled.add("OrderCancelled", "orders", i)
	later := t0.Add(24 * time.Hour)
	for name, c := range map[string]*chainB{"completed": healthy(), "cancelled": cancelled} {
		t.Run(name, func(t *testing.T) {
			evs := stitch(stepRanks(ws), causalOrder(sparse(c)))
			assert.Empty(t, CheckOrder(ws, evs, later, Default().Windows), "a normal %s order", name)
		})
	}
}

// TestSparseRaceIsStillAConflict: with the history derived from the
// workflow (an expiry comes after the customer was notified, as a pick-up
// does — not after the pick-up, although its step is listed later), a
// pick-up and an expiry sent by two services are still concurrent.
func TestSparseRaceIsStillAConflict(t *testing.T) {
	ws := Builtin()
	c, i := notified()
	c.add("PickedUp", "pickup", i)
	c.add("PickupExpired", "scheduler", i)
	evs := stitch(stepRanks(ws), causalOrder(sparse(c)))
	assert.Contains(t, kinds(CheckOrder(ws, evs, t0.Add(time.Hour), Default().Windows)), KindConcurrentConflict)
}
