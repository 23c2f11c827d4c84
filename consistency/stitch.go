package consistency

import (
	"sort"
)

// How an event was attached to the one it hangs under in the chain.
const (
	// ViaCausation: the event names its cause (causation-id header or extension).
	ViaCausation = "explicit"
	// ViaTrace: the event's trace parent span is another event's span.
	ViaTrace = "trace"
	// ViaWorkflow: neither exists; the workflow's step order says what came before.
	ViaWorkflow = "inferred"
)

// stitch hangs every event under a parent — its named cause, else its trace
// parent, else the event of the nearest earlier step of its workflow, by the
// workflows' step ranks (stepRanks) — and returns the events as a tree walked
// depth first, children in time order, with Parent, Via and Depth set. Edges
// that would close a cycle are dropped, so the walk always ends.
func stitch(order stepOrder, evs []ChainEvent) []ChainEvent {
	n := len(evs)
	if n == 0 {
		return evs
	}
	byID := map[string]int{}
	bySpan := map[string]int{}
	for i, e := range evs {
		if _, ok := byID[e.EventID]; !ok {
			byID[e.EventID] = i
		}
		if e.SpanID != "" {
			bySpan[e.SpanID] = i
		}
	}
	parent := make([]int, n)
	for i := range evs {
		parent[i] = -1
	}
	attach := func(child, p int, via string) bool {
		if p == child || p < 0 {
			return false
		}
		for a := p; a >= 0; a = parent[a] { // would close a cycle
			if a == child {
				return false
			}
		}
		parent[child], evs[child].Parent, evs[child].Via = p, evs[p].EventID, via
		return true
	}
	for i, e := range evs {
		if p, ok := byID[e.CausationID]; ok && e.CausationID != "" && attach(i, p, ViaCausation) {
			continue
		}
		if p, ok := bySpan[e.ParentSpanID]; ok && e.ParentSpanID != "" && attach(i, p, ViaTrace) {
			continue
		}
		if e.CausationID != "" {
			continue // names a cause that is missing: a root, not a guess
		}
		if p := inferredParent(evs, i, order); p >= 0 {
			attach(i, p, ViaWorkflow)
		}
	}
	children := make([][]int, n)
	var roots []int
	for i := range evs {
		if parent[i] < 0 {
			roots = append(roots, i)
		} else {
			children[parent[i]] = append(children[parent[i]], i)
		}
	}
	byTime := func(ix []int) {
		sort.SliceStable(ix, func(a, b int) bool { return evs[ix[a]].EventTime.Before(evs[ix[b]].EventTime) })
	}
	byTime(roots)
	out := make([]ChainEvent, 0, n)
	var walk func(i, depth int)
	walk = func(i, depth int) {
		e := evs[i]
		e.Depth = depth
		out = append(out, e)
		byTime(children[i])
		for _, c := range children[i] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return out
}

// stepOrder is what the workflows say about the order of event types: each
// type's step position (rank) in the first workflow that has it, and the
// types whose steps expect it (after): PickupExpired comes after
// CustomerNotified, not after PickedUp, although it is listed later.
type stepOrder struct {
	rank  map[string]int
	after map[string]map[string]bool
}

// stepRanks reads the step order of ws.
func stepRanks(ws []Workflow) stepOrder {
	o := stepOrder{rank: map[string]int{}, after: map[string]map[string]bool{}}
	for _, w := range ws {
		for i, s := range w.Steps {
			for _, t := range s.On {
				if _, ok := o.rank[t]; !ok {
					o.rank[t] = i + 1
				}
				for _, next := range s.Expects {
					if o.after[next] == nil {
						o.after[next] = map[string]bool{}
					}
					o.after[next][t] = true
				}
			}
		}
	}
	return o
}

// inferredParent is the event i comes after in the workflow: the latest
// event of a step that expects i's type, else the event of the highest step
// below i's step (the latest such by time), else the latest event before it
// in event time; -1 when there is none.
func inferredParent(evs []ChainEvent, i int, o stepOrder) int {
	ri, ok := o.rank[evs[i].Type]
	if !ok {
		return -1
	}
	if pred := o.after[evs[i].Type]; len(pred) > 0 {
		best := -1
		for j, e := range evs {
			if j != i && pred[e.Type] && (best < 0 || e.EventTime.After(evs[best].EventTime)) {
				best = j
			}
		}
		if best >= 0 {
			return best
		}
	}
	best, bestRank := -1, 0
	for j, e := range evs {
		rj, ok := o.rank[e.Type]
		if j == i || !ok || rj >= ri {
			continue
		}
		if rj > bestRank || rj == bestRank && e.EventTime.After(evs[best].EventTime) {
			best, bestRank = j, rj
		}
	}
	if best >= 0 {
		return best
	}
	// The first step of a workflow the order joined later (PaymentRequested
	// after InventoryReserved): the latest event before it in event time.
	for j, e := range evs {
		if j != i && e.EventTime.Before(evs[i].EventTime) && (best < 0 || e.EventTime.After(evs[best].EventTime)) {
			best = j
		}
	}
	return best
}
