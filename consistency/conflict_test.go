package consistency

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// races returns the races CheckOrder raised.
func races(t *testing.T, c *chainB) []string {
	t.Helper()
	var out []string
	for _, r := range CheckOrder(Builtin(), c.evs, t0.Add(time.Hour), Default().Windows) {
		if r.Kind != KindConcurrentConflict {
			continue
		}
		for _, it := range r.Evidence["items"].([]map[string]any) {
			out = append(out, it["evidence"].(map[string]any)["race"].(string))
		}
	}
	return out
}

// TestBuiltinRaces: the races real shops have are declared in the
// built-in workflows, by step, and raised as concurrent conflicts.
func TestBuiltinRaces(t *testing.T) {
	t.Run("cancel while the store hands over", func(t *testing.T) {
		c, cn := notified()
		c.add("PickedUp", "pickup", cn)
		c.add("OrderCancelled", "orders", cn) // did not see the pick-up
		assert.Equal(t, []string{"cancel_vs_pickup"}, races(t, c))
	})
	t.Run("cancel after seeing the pick-up is no race", func(t *testing.T) {
		c, cn := notified()
		pu := c.add("PickedUp", "pickup", cn)
		c.add("OrderCancelled", "orders", pu)
		assert.Empty(t, races(t, c))
	})
	t.Run("refund without seeing the capture", func(t *testing.T) {
		c, cn := notified()
		pu := c.add("PickedUp", "pickup", cn)
		c.add("PaymentCaptured", "payments", pu)
		c.add("PaymentRefunded", "refunds", pu)
		assert.Equal(t, []string{"void_or_refund_vs_capture"}, races(t, c))
	})
	t.Run("expiry while picked up", func(t *testing.T) {
		c, cn := notified()
		c.add("PickedUp", "pickup", cn)
		c.add("PickupExpired", "expiry", cn)
		assert.Equal(t, []string{"pickup_vs_expiry"}, races(t, c))
	})
}

func TestConflictYAML(t *testing.T) {
	const base = `
name: w
steps:
  - {name: a, on: [A], sla: 1m, owner: x, expects: [B, C]}
  - {name: b, on: [B], terminal: true}
  - {name: c, on: [C, C2], terminal: true}
`
	w, err := ParseWorkflow([]byte(base + `
conflicts:
  - [B, C]
  - name: b_vs_c
    steps: [b, c]
  - types: [B, C2]
`))
	require.NoError(t, err)
	require.Len(t, w.Conflicts, 3)
	assert.Equal(t, Conflict{Types: []string{"B", "C"}}, w.Conflicts[0])
	a, b := w.Conflicts[1].sides(w)
	assert.Equal(t, []string{"B"}, a)
	assert.Equal(t, []string{"C", "C2"}, b, "a step stands for every event type it is entered on")
	assert.Equal(t, "B ∥ C2", w.Conflicts[2].label())

	for _, tc := range []struct{ yaml, err string }{
		{"conflicts:\n  - steps: [b, nope]\n", "conflicts[0].steps: no step nope"},
		{"conflicts:\n  - steps: [b]\n", "conflicts[0].steps: want a pair of two different steps"},
		{"conflicts:\n  - {steps: [b, c], types: [B, C]}\n", "conflicts[0]: set types or steps, not both"},
		{"conflicts:\n  - [B, B]\n", "conflicts[0]: want a pair of two different event types"},
		{"conflicts:\n  - {name: Bad-Name, steps: [b, c]}\n", "conflicts[0].name"},
		{"conflicts:\n  - {stepz: [b, c]}\n", "stepz"},
	} {
		_, err := ParseWorkflow([]byte(base + tc.yaml))
		assert.ErrorContains(t, err, tc.err, tc.yaml)
	}
}
