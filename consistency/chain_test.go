package consistency

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestCausalOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(id, cause string, sec int) ChainEvent {
		return ChainEvent{EventID: id, CausationID: cause, EventTime: t0.Add(time.Duration(sec) * time.Second)}
	}
	ids := func(evs []ChainEvent) (out []string) {
		for _, e := range evs {
			out = append(out, e.EventID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []ChainEvent
		want []string
	}{
		{"time order when no causes", []ChainEvent{ev("b", "", 2), ev("a", "", 1)}, []string{"a", "b"}},
		{"cause first despite clock skew", []ChainEvent{ev("child", "root", 1), ev("root", "", 5)}, []string{"root", "child"}},
		{"missing cause is a root", []ChainEvent{ev("x", "gone", 3), ev("a", "", 1)}, []string{"a", "x"}},
		{"self cause", []ChainEvent{ev("s", "s", 1)}, []string{"s"}},
		{"cycle released in time order", []ChainEvent{ev("p", "q", 1), ev("q", "p", 2)}, []string{"p", "q"}},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, ids(causalOrder(tc.in))) })
	}
	out := causalOrder([]ChainEvent{ev("a", "", 1), ev("b", "a", 2), ev("c", "b", 3)})
	assert.Equal(t, []int{0, 1, 2}, []int{out[0].Depth, out[1].Depth, out[2].Depth})
}

func TestBuiltinWorkflowsValid(t *testing.T) {
	ws := Builtin()
	assert.Len(t, ws, 2)
	for _, w := range ws {
		assert.NoError(t, w.Validate(), w.Name)
	}
}

func TestWorkflowValidateNamesProblems(t *testing.T) {
	_, err := ParseWorkflow([]byte(`
name: Bad Name
steps:
  - name: a
    on: [A]
  - name: a
    on: [A]
    expects: [Z]
identified_by: [Q]
`))
	if assert.Error(t, err) {
		for _, want := range []string{"name:", "steps[0].sla:", "steps[1].name:", "steps[1].on:", "steps[1].expects:", "identified_by[0]:", "no terminal step"} {
			assert.Contains(t, err.Error(), want)
		}
	}
	_, err = ParseWorkflow([]byte("name: x\nsteps: []\nbogus: 1\n"))
	assert.ErrorContains(t, err, "bogus")
}

func TestStitch(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	evs := []ChainEvent{
		{EventID: "placed", Type: "OrderPlaced", EventTime: at(0), SpanID: "s0"},
		{EventID: "reserved", Type: "InventoryReserved", EventTime: at(1), CausationID: "placed", SpanID: "s1"},
		{EventID: "authorized", Type: "PaymentAuthorized", EventTime: at(2), ParentSpanID: "s1"}, // trace only
		{EventID: "started", Type: "FulfillmentStarted", EventTime: at(3)},                       // nothing: inferred
		{EventID: "orphan", Type: "ReadyForPickup", EventTime: at(4), CausationID: "gone"},       // missing cause: root
	}
	out := stitch(stepRanks(Builtin()), causalOrder(evs))
	got := map[string][3]any{}
	var order []string
	for _, e := range out {
		got[e.EventID] = [3]any{e.Parent, e.Via, e.Depth}
		order = append(order, e.EventID)
	}
	assert.Equal(t, [3]any{"", "", 0}, got["placed"])
	assert.Equal(t, [3]any{"placed", ViaCausation, 1}, got["reserved"])
	assert.Equal(t, [3]any{"reserved", ViaTrace, 2}, got["authorized"])
	assert.Equal(t, [3]any{"authorized", ViaWorkflow, 3}, got["started"])
	assert.Equal(t, [3]any{"", "", 0}, got["orphan"])
	assert.Equal(t, []string{"placed", "reserved", "authorized", "started", "orphan"}, order)
}

func TestWorkflowReachability(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unreachable terminal", `
name: w
steps:
  - {name: a, on: [A], sla: 1m, owner: s, expects: [B]}
  - {name: b, on: [B], terminal: true}
  - {name: c, on: [C], terminal: true}
`, `terminal step "c" is unreachable`},
		{"cycle without exit", `
name: w
steps:
  - {name: a, on: [A], sla: 1m, owner: s, expects: [B, D]}
  - {name: b, on: [B], sla: 1m, owner: s, expects: [C]}
  - {name: c, on: [C], sla: 1m, owner: s, expects: [B]}
  - {name: d, on: [D], terminal: true}
`, `step "b" cannot reach a terminal step`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseWorkflow([]byte(tc.yaml))
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// TestChainSizer: chain reads are sized by events, so an order with
// thousands of events shrinks the next read instead of multiplying it.
func TestChainSizer(t *testing.T) {
	ids := make([]string, 5000)
	s := newChainSizer()
	read, rest := s.take(ids)
	assert.Len(t, read, firstChainOrders)
	assert.Len(t, rest, 5000-firstChainOrders)

	s.saw(250, 2_500) // 10 events an order: 1,000 orders make chainEvents
	read, _ = s.take(ids)
	assert.Len(t, read, 1000)

	s.saw(1000, 135_000) // 135 an order
	read, _ = s.take(ids)
	assert.Len(t, read, chainEvents*1000/135_000)

	s.saw(1, 50_000) // one huge order: still one order a read
	read, _ = s.take(ids)
	assert.Len(t, read, 1)

	s.saw(100, 100) // tiny orders: capped by checkBatch
	read, _ = s.take(ids)
	assert.Len(t, read, checkBatch)
	read, rest = s.take(ids[:3])
	assert.Len(t, read, 3)
	assert.Empty(t, rest)

	s.saw(0, 0) // an empty read changes nothing
	read, _ = s.take(ids)
	assert.Len(t, read, checkBatch)
}
