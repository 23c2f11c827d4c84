package consistency

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)

// chainB builds a BOPIS chain: each event caused by the previous one, with
// carried vectors computed the way producers do.
type chainB struct {
	evs  []ChainEvent
	last map[string]Vector
}

func (c *chainB) add(typ, svc string, cause int, extra ...int) int {
	i := len(c.evs)
	e := ChainEvent{EventID: fmt.Sprintf("e%d", i), Type: typ, Service: svc, EventTime: t0.Add(time.Duration(i) * time.Minute),
		Topic: svc, Offset: int64(i), PayloadHash: fmt.Sprintf("h%d", i), IdempotencyKey: fmt.Sprintf("k%d", i)}
	v := Vector{}
	if cause >= 0 {
		e.CausationID = c.evs[cause].EventID
		v = Merge(Vector(c.evs[cause].VersionVector))
	}
	for _, x := range extra {
		v = Merge(v, Vector(c.evs[x].VersionVector))
	}
	if c.last == nil {
		c.last = map[string]Vector{}
	}
	v[svc] = max(v[svc], c.last[svc][svc]) + 1
	c.last[svc] = v
	e.VersionVector = v
	c.evs = append(c.evs, e)
	return i
}

// notified is a BOPIS chain up to CustomerNotified, and that event's index.
func notified() (*chainB, int) {
	c := &chainB{}
	i := c.add("OrderPlaced", "orders", -1)
	i = c.add("InventoryReserved", "inventory", i)
	i = c.add("PaymentAuthorized", "payments", i)
	i = c.add("FulfillmentStarted", "fulfillment", i)
	i = c.add("ReadyForPickup", "fulfillment", i)
	return c, c.add("CustomerNotified", "notifications", i)
}

func healthy() *chainB {
	c, i := notified()
	i = c.add("PickedUp", "pickup", i)
	i = c.add("PaymentCaptured", "payments", i)
	c.add("OrderCompleted", "orders", i)
	return c
}

func kinds(rs []Raised) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Kind)
	}
	return out
}

func TestCheckOrder(t *testing.T) {
	ws := Builtin()
	now := t0.Add(3 * time.Hour)
	win := Windows{Grace: 2 * time.Minute, Convergence: 5 * time.Minute}
	for _, tc := range []struct {
		name  string
		build func() []ChainEvent
		want  []string
	}{
		{"healthy", func() []ChainEvent { return healthy().evs }, nil},
		{"identical redelivery is counted, not flagged", func() []ChainEvent {
			evs := healthy().evs
			return append(evs, evs[3])
		}, nil},
		{"conflicting duplicate", func() []ChainEvent {
			evs := healthy().evs
			d := evs[2]
			d.PayloadHash, d.Offset = "other", 99
			return append(evs, d)
		}, []string{KindDuplicate}},
		{"lost event is a gap, not an orphan", func() []ChainEvent {
			evs := healthy().evs
			return append(evs[:5:5], evs[6:]...) // CustomerNotified lost
		}, []string{KindGap}},
		{"orphan", func() []ChainEvent {
			evs := healthy().evs
			evs[4].CausationID = "never-sent"
			return evs
		}, []string{KindOrphan}},
		{"causality violation", func() []ChainEvent {
			evs := healthy().evs
			v := Merge(Vector(evs[5].VersionVector))
			v["orders"] = 0
			evs[6].VersionVector = v // PickedUp forgets what it saw and does not count itself
			evs[6].VersionVector["pickup"] = evs[5].VersionVector["pickup"] + 1
			delete(evs[6].VersionVector, "orders")
			return evs
		}, []string{KindCausalityViolation}},
		{"self cause", func() []ChainEvent {
			evs := healthy().evs
			evs[3].CausationID = evs[3].EventID
			return evs
		}, []string{KindCausalityViolation}},
		{"race resolved by the next event: conflict only", func() []ChainEvent {
			c := &chainB{}
			i := c.add("OrderPlaced", "orders", -1)
			i = c.add("InventoryReserved", "inventory", i)
			i = c.add("PaymentAuthorized", "payments", i)
			i = c.add("FulfillmentStarted", "fulfillment", i)
			rfp := c.add("ReadyForPickup", "fulfillment", i)
			cn := c.add("CustomerNotified", "notifications", rfp)
			pu := c.add("PickedUp", "pickup", cn)
			pe := c.add("PickupExpired", "pickup", rfp)
			i = c.add("InventoryReleased", "inventory", pe, pu)
			i = c.add("PaymentVoided", "payments", i)
			c.add("OrderCancelled", "orders", i)
			return c.evs
		}, []string{KindConcurrentConflict}},
		{"missing compensation", func() []ChainEvent {
			c := &chainB{}
			i := c.add("OrderPlaced", "orders", -1)
			i = c.add("InventoryReserved", "inventory", i)
			i = c.add("PaymentAuthorized", "payments", i)
			i = c.add("PickupExpired", "pickup", i)
			i = c.add("InventoryReleased", "inventory", i)
			c.add("OrderCancelled", "orders", i)
			return c.evs
		}, []string{KindInvariantViolation}},
		{"divergence", func() []ChainEvent {
			c := healthy()
			c.add("InventoryReleased", "inventory", 6) // concurrent with the completion
			return c.evs
		}, []string{KindDivergence}},
		{"unknown event types are carried along, not judged", func() []ChainEvent {
			c := healthy()
			c.add("LoyaltyPointsAwarded", "loyalty", 8)
			return c.evs
		}, nil},
		{"without vectors: derived, nothing to report", func() []ChainEvent {
			evs := healthy().evs
			for i := range evs {
				evs[i].VersionVector = nil
			}
			return evs
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := causalOrder(tc.build())
			assert.Equal(t, tc.want, kinds(CheckOrder(ws, evs, now, win)))
		})
	}
}

func TestCheckOrderWaitsForWindows(t *testing.T) {
	evs := healthy().evs
	evs = append(evs[:5:5], evs[6:]...)
	justNow := evs[len(evs)-1].EventTime.Add(30 * time.Second)
	assert.Empty(t, CheckOrder(Builtin(), causalOrder(evs), justNow, Windows{Grace: 2 * time.Minute, Convergence: 5 * time.Minute}),
		"a missing event may still be in flight")
}

func TestCausationCycle(t *testing.T) {
	evs := healthy().evs[:3]
	evs[0].CausationID = evs[2].EventID
	got := CheckOrder(Builtin(), causalOrder(evs), t0.Add(time.Hour), Windows{})
	assert.Contains(t, kinds(got), KindCausalityViolation)
}

func TestOrderStates(t *testing.T) {
	c := &chainB{}
	i := c.add("OrderPlaced", "orders", -1)
	i = c.add("InventoryReserved", "inventory", i)
	i = c.add("PaymentRequested", "payments", i)
	c.add("PaymentRetryScheduled", "payments", i)
	st := OrderStates(Builtin(), c.evs)
	if assert.Len(t, st, 2) {
		assert.Equal(t, "async_payment", st[0].Workflow, "the workflow entered last comes first")
		assert.Equal(t, "payment_retry_scheduled", st[0].Step)
		assert.Equal(t, "payments", st[0].Owner)
		assert.Equal(t, "bopis", st[1].Workflow)
		assert.Equal(t, "inventory_reserved", st[1].Step)
	}
	done := OrderStates(Builtin(), healthy().evs)
	if assert.Len(t, done, 1) {
		assert.True(t, done[0].Terminal)
		assert.Equal(t, "completed", done[0].Step)
		assert.Empty(t, done[0].Expects)
	}
}

// A producer with systematically wrong vectors yields one finding per order,
// listing the events, not one per event.
func TestCheckOrderFoldsPerEventKinds(t *testing.T) {
	evs := healthy().evs
	for i := range evs {
		evs[i].VersionVector = map[string]uint64{"orders": 1} // every event claims the same vector
	}
	got := CheckOrder(Builtin(), causalOrder(evs), t0.Add(3*time.Hour), Windows{})
	var cv []Raised
	for _, r := range got {
		if r.Kind == KindCausalityViolation {
			cv = append(cv, r)
		}
	}
	if assert.Len(t, cv, 1) {
		assert.Equal(t, len(evs)-1, cv[0].Evidence["count"])
		assert.Contains(t, cv[0].Summary, "times, first:")
	}
}

// repeats finds a shared non-empty key in short chains (pairwise) and long
// ones (a set) alike; empty keys never count.
func TestRepeats(t *testing.T) {
	id := func(e *ChainEvent) string { return e.EventID }
	chain := func(n int, ids ...string) []ChainEvent {
		evs := make([]ChainEvent, n)
		for i := range evs {
			evs[i].EventID = fmt.Sprint("e", i)
		}
		for i, s := range ids {
			evs[i].EventID = s
		}
		return evs
	}
	for _, n := range []int{3, 32, 40} {
		assert.False(t, repeats(chain(n), id), "n=%d distinct", n)
		assert.False(t, repeats(chain(n, "", ""), id), "n=%d empty keys", n)
		evs := chain(n)
		evs[n-1].EventID = "e0"
		assert.True(t, repeats(evs, id), "n=%d first and last", n)
	}
	// A long chain with an event delivered twice with different payloads
	// raises its duplicate finding (the set path of checkDuplicates).
	evs := chain(40)
	evs[39].EventID, evs[39].PayloadHash = "e0", "other"
	got := checkDuplicates(evs)
	require.Len(t, got, 1)
	assert.Equal(t, "event_id:e0", got[0].Subject)
}
