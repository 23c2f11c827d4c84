package consistency

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Finding kinds beyond stuck (docs/consistency.md, "Finding kinds").
const (
	KindGap                = "gap"
	KindCausalityViolation = "causality_violation"
	KindOrphan             = "orphan"
	KindConcurrentConflict = "concurrent_conflict"
	KindDuplicate          = "duplicate"
	KindInvariantViolation = "invariant_violation"
	KindDivergence         = "divergence"
)

// Windows says how long the checks wait before calling something missing.
type Windows struct {
	// Grace is how long a missing cause or counter may still be in flight.
	Grace time.Duration `yaml:"grace"`
	// Convergence is how long services may disagree, and compensations may
	// lag a terminal event, before it is a finding.
	Convergence time.Duration `yaml:"convergence"`
}

// Raised is one problem the checks found with an order, with its evidence.
type Raised struct {
	Kind     string
	Workflow string
	// Subject says what in the order the finding is about (a service for a
	// gap, an invariant); with the kind, workflow and order it identifies the
	// finding. Per-event kinds are folded into one finding per order.
	Subject  string
	Summary  string
	Evidence map[string]any
}

// evidenceEvent is how an event appears in evidence.
func evidenceEvent(e ChainEvent, v Vector) map[string]any {
	return map[string]any{
		"event_id": e.EventID, "type": e.Type, "service": e.Service,
		"event_time": e.EventTime, "where": fmt.Sprintf("%s/%d@%d", e.Topic, e.Partition, e.Offset),
		"causation_id": e.CausationID, "version_vector": v,
	}
}

// CheckOrder runs every check but stuck (which is a query over all orders)
// on one order's events, given in causal order as Chain returns them, at
// stream time now.
func CheckOrder(ws []Workflow, evs []ChainEvent, now time.Time, win Windows) []Raised {
	if len(evs) == 0 {
		return nil
	}
	var out []Raised
	out = append(out, checkDuplicates(evs)...)

	// One logical event per id: identical redeliveries (and DLQ copies) are
	// the same event.
	uniq := uniqueEvents(evs)
	quiet := now.Sub(lastEventTime(uniq)) // how long nothing happened to the order
	vv := deriveVectors(uniq)
	byID := make(map[string]ChainEvent, len(uniq))
	for _, e := range uniq {
		byID[e.EventID] = e
	}

	out = append(out, checkCausality(uniq, byID)...)
	gaps := checkGaps(uniq)
	if quiet >= win.Grace {
		out = append(out, gaps...)
		if len(gaps) == 0 { // a gap already explains a missing cause
			out = append(out, checkOrphans(uniq, byID, vv)...)
		}
	}
	var latest []ChainEvent
	if quiet >= win.Convergence {
		latest = maximalEvents(uniq, vv)
	}
	for _, w := range ws {
		out = append(out, checkConflicts(w, uniq, vv)...)
		if quiet >= win.Convergence {
			out = append(out, checkInvariants(w, uniq)...)
			out = append(out, checkDivergence(w, latest, vv)...)
		}
	}
	return collapse(out)
}

// uniqueEvents keeps the first event of each id: identical redeliveries
// (and DLQ copies) are the same event.
func uniqueEvents(evs []ChainEvent) []ChainEvent {
	if !repeats(evs, func(e *ChainEvent) string { return e.EventID }) {
		return evs
	}
	var uniq []ChainEvent
	seen := map[string]bool{}
	for _, e := range evs {
		if !seen[e.EventID] {
			seen[e.EventID] = true
			uniq = append(uniq, e)
		}
	}
	return uniq
}

// lastEventTime is the latest event time of evs (not empty).
func lastEventTime(evs []ChainEvent) time.Time {
	last := evs[0].EventTime
	for _, e := range evs {
		if e.EventTime.After(last) {
			last = e.EventTime
		}
	}
	return last
}

// RecheckAt is when, on the stream's clock, CheckOrder's answer for evs can
// next change without a new event: the first of the grace and convergence
// windows (counted from the order's last event, as CheckOrder counts them)
// still running at now. Zero when both have run out.
func RecheckAt(evs []ChainEvent, now time.Time, win Windows) time.Time {
	if len(evs) == 0 {
		return time.Time{}
	}
	last := lastEventTime(uniqueEvents(evs))
	first, second := min(win.Grace, win.Convergence), max(win.Grace, win.Convergence)
	for _, w := range []time.Duration{first, second} {
		if at := last.Add(w); at.After(now) {
			return at
		}
	}
	return time.Time{}
}

// maxEvidenceItems bounds the evidence kept when one order raises a kind
// many times.
const maxEvidenceItems = 10

// collapse folds the per-event kinds (duplicate, causality violation,
// orphan, concurrent conflict) into one finding per order, kind and
// workflow, so a producer with systematically wrong headers yields one
// finding per order with the offending events as evidence, not one per event.
func collapse(rs []Raised) []Raised {
	perEvent := map[string]bool{KindDuplicate: true, KindCausalityViolation: true, KindOrphan: true, KindConcurrentConflict: true}
	type key struct{ kind, workflow string }
	groups := map[key][]Raised{}
	var out []Raised
	var order []key
	for _, r := range rs {
		if !perEvent[r.Kind] {
			out = append(out, r)
			continue
		}
		k := key{r.Kind, r.Workflow}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, k := range order {
		g := groups[k]
		items := make([]map[string]any, 0, min(len(g), maxEvidenceItems))
		for _, r := range g[:min(len(g), maxEvidenceItems)] {
			items = append(items, map[string]any{"subject": r.Subject, "summary": r.Summary, "evidence": r.Evidence})
		}
		summary := g[0].Summary
		if len(g) > 1 {
			summary = fmt.Sprintf("%d times, first: %s", len(g), g[0].Summary)
		}
		out = append(out, Raised{Kind: k.kind, Workflow: k.workflow, Subject: "", Summary: summary,
			Evidence: map[string]any{"count": len(g), "items": items}})
	}
	return out
}

// checkDuplicates: one event id or idempotency key with different payloads.
// Identical redeliveries are not findings, nor are weft's replays of a
// record present.
func checkDuplicates(evs []ChainEvent) []Raised {
	evs = withoutReplaysOfPresent(evs)
	if !repeats(evs, func(e *ChainEvent) string { return e.EventID }) &&
		!repeats(evs, func(e *ChainEvent) string { return e.IdempotencyKey }) {
		return nil // nothing delivered twice: the common case, without maps
	}
	var out []Raised
	group := func(kind string, key func(ChainEvent) string) map[string][]ChainEvent {
		m := map[string][]ChainEvent{}
		for _, e := range evs {
			if k := key(e); k != "" {
				m[k] = append(m[k], e)
			}
		}
		return m
	}
	reportedIDs := map[string]bool{}
	report := func(what, k string, es []ChainEvent) bool {
		hashes := map[string]bool{}
		for _, e := range es {
			hashes[e.PayloadHash] = true
		}
		if len(hashes) < 2 {
			return false
		}
		var where []map[string]any
		for _, e := range es {
			where = append(where, map[string]any{"event_id": e.EventID, "where": fmt.Sprintf("%s/%d@%d", e.Topic, e.Partition, e.Offset), "payload_hash": e.PayloadHash})
		}
		out = append(out, Raised{Kind: KindDuplicate, Subject: what + ":" + k,
			Summary:  fmt.Sprintf("%s %s was delivered %d times with %d different payloads", what, k, len(es), len(hashes)),
			Evidence: map[string]any{"rule": "one " + what + " must carry one payload", "records": where}})
		return true
	}
	byID := group("event id", func(e ChainEvent) string { return e.EventID })
	for _, k := range slices.Sorted(maps.Keys(byID)) {
		if report("event_id", k, byID[k]) {
			reportedIDs[k] = true
		}
	}
	byKey := group("idempotency key", func(e ChainEvent) string { return e.IdempotencyKey })
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		es := byKey[k]
		ids := map[string]bool{}
		for _, e := range es {
			ids[e.EventID] = true
		}
		if len(ids) == 1 && reportedIDs[es[0].EventID] {
			continue // the same records, already reported by event id
		}
		report("idempotency_key", k, es)
	}
	return out
}

// repeats reports whether two events share a non-empty key. Chains are
// short, so comparing every pair beats hashing every key; long ones use a set.
func repeats(evs []ChainEvent, key func(*ChainEvent) string) bool {
	if len(evs) > 32 {
		seen := make(map[string]bool, len(evs))
		for i := range evs {
			k := key(&evs[i])
			if k != "" && seen[k] {
				return true
			}
			seen[k] = true
		}
		return false
	}
	for i := range evs {
		k := key(&evs[i])
		if k == "" {
			continue
		}
		for j := i + 1; j < len(evs); j++ {
			if key(&evs[j]) == k {
				return true
			}
		}
	}
	return false
}

// checkCausality: an event must strictly dominate the vector of the event it
// names as its cause; an event must not name itself, nor close a cycle.
// Only carried vectors are compared: derived ones hold by construction.
func checkCausality(evs []ChainEvent, byID map[string]ChainEvent) []Raised {
	var out []Raised
	for _, e := range evs {
		if e.CausationID == "" {
			continue
		}
		if e.CausationID == e.EventID {
			out = append(out, Raised{Kind: KindCausalityViolation, Subject: e.EventID,
				Summary:  fmt.Sprintf("%s %s names itself as its cause", e.Type, e.EventID),
				Evidence: map[string]any{"rule": "an event cannot cause itself", "event": evidenceEvent(e, Vector(e.VersionVector))}})
			continue
		}
		if cycle := causeCycle(e, byID); cycle != nil {
			if e.EventID == slices.Min(cycle) { // report a cycle once
				out = append(out, Raised{Kind: KindCausalityViolation, Subject: "cycle:" + e.EventID,
					Summary:  fmt.Sprintf("causation ids form a cycle: %s", strings.Join(cycle, " → ")),
					Evidence: map[string]any{"rule": "causation must not be circular", "cycle": cycle}})
			}
			continue
		}
		c, ok := byID[e.CausationID]
		if !ok || len(e.VersionVector) == 0 || len(c.VersionVector) == 0 {
			continue
		}
		ev, cv := Vector(e.VersionVector), Vector(c.VersionVector)
		if !ev.StrictlyDominates(cv) {
			out = append(out, Raised{Kind: KindCausalityViolation, Subject: e.EventID,
				Summary: fmt.Sprintf("%s %s does not dominate the vector of its cause %s %s", e.Type, e.EventID, c.Type, c.EventID),
				Evidence: map[string]any{"rule": "an event's vector strictly dominates its cause's",
					"event": evidenceEvent(e, ev), "cause": evidenceEvent(c, cv)}})
		}
	}
	return out
}

// causeCycle returns the ids of a causation cycle through e, or nil.
func causeCycle(e ChainEvent, byID map[string]ChainEvent) []string {
	path := []string{e.EventID}
	on := map[string]bool{e.EventID: true}
	cur := e
	for cur.CausationID != "" {
		next, ok := byID[cur.CausationID]
		if !ok || next.EventID == cur.EventID {
			return nil
		}
		if on[next.EventID] {
			if next.EventID == e.EventID {
				return path
			}
			return nil // a cycle further up, reported from its own members
		}
		on[next.EventID] = true
		path = append(path, next.EventID)
		cur = next
	}
	return nil
}

// checkGaps: per service, the counters its own events carry must run 1..max
// of what any event's vector knows of it. A hole is a missing event.
func checkGaps(evs []ChainEvent) []Raised {
	own := map[string]map[uint64]bool{}
	known := map[string]uint64{}
	witness := map[string]ChainEvent{}
	for _, e := range evs {
		if len(e.VersionVector) == 0 {
			continue
		}
		if c, ok := e.VersionVector[e.Service]; ok {
			if own[e.Service] == nil {
				own[e.Service] = map[uint64]bool{}
			}
			own[e.Service][c] = true
		}
		for svc, c := range e.VersionVector {
			if c > known[svc] {
				known[svc], witness[svc] = c, e
			}
		}
	}
	var out []Raised
	for _, svc := range slices.Sorted(maps.Keys(known)) {
		var missing []uint64
		for c := uint64(1); c <= known[svc]; c++ {
			if !own[svc][c] {
				missing = append(missing, c)
			}
		}
		if len(missing) == 0 {
			continue
		}
		w := witness[svc]
		out = append(out, Raised{Kind: KindGap, Subject: "service:" + svc,
			Summary: fmt.Sprintf("%s's counter skips %v: %d event(s) of %s missing (known up to %d from %s %s)",
				svc, missing, len(missing), svc, known[svc], w.Type, w.EventID),
			Evidence: map[string]any{"rule": "a service's own counters run 1..max without a hole", "service": svc,
				"missing_counters": missing, "max_known": known[svc], "known_from": evidenceEvent(w, Vector(w.VersionVector))}})
	}
	return out
}

// checkOrphans: an event names a cause that never arrived.
func checkOrphans(evs []ChainEvent, byID map[string]ChainEvent, vv map[string]Vector) []Raised {
	var out []Raised
	for _, e := range evs {
		if e.CausationID == "" || e.CausationID == e.EventID {
			continue
		}
		if _, ok := byID[e.CausationID]; ok {
			continue
		}
		out = append(out, Raised{Kind: KindOrphan, Subject: e.EventID,
			Summary: fmt.Sprintf("%s %s names cause %s, which never arrived", e.Type, e.EventID, e.CausationID),
			Evidence: map[string]any{"rule": "a named cause arrives within the grace window",
				"event": evidenceEvent(e, vv[e.EventID]), "missing_cause": e.CausationID}})
	}
	return out
}

// checkConflicts: two events of the two sides of a declared race with
// incomparable vectors.
func checkConflicts(w Workflow, evs []ChainEvent, vv map[string]Vector) []Raised {
	var out []Raised
	for _, c := range w.Conflicts {
		sideA, sideB := c.sides(w)
		for _, a := range evs {
			if !slices.Contains(sideA, a.Type) {
				continue
			}
			for _, b := range evs {
				if !slices.Contains(sideB, b.Type) || !vv[a.EventID].Concurrent(vv[b.EventID]) {
					continue
				}
				out = append(out, Raised{Kind: KindConcurrentConflict, Workflow: w.Name, Subject: a.EventID + "|" + b.EventID,
					Summary: fmt.Sprintf("%s (%s) and %s (%s) happened concurrently: neither saw the other", a.Type, a.Service, b.Type, b.Service),
					Evidence: map[string]any{"rule": fmt.Sprintf("%s: %s and %s must not both happen unless one saw the other",
						c.label(), strings.Join(sideA, "|"), strings.Join(sideB, "|")), "race": c.label(),
						"a": evidenceEvent(a, vv[a.EventID]), "b": evidenceEvent(b, vv[b.EventID])}})
			}
		}
	}
	return out
}

// checkInvariants: a finished order satisfies its workflow's invariants.
func checkInvariants(w Workflow, evs []ChainEvent) []Raised {
	has := map[string]bool{}
	for _, e := range evs {
		has[e.Type] = true
	}
	anyOf := func(ts []string) bool { return slices.ContainsFunc(ts, func(t string) bool { return has[t] }) }
	var out []Raised
	for _, inv := range w.Invariants {
		if !anyOf(inv.When) || len(inv.IfAny) > 0 && !anyOf(inv.IfAny) {
			continue
		}
		var missing []string
		for _, t := range inv.RequireAll {
			if !has[t] {
				missing = append(missing, t)
			}
		}
		if len(inv.RequireAny) > 0 && !anyOf(inv.RequireAny) {
			missing = append(missing, strings.Join(inv.RequireAny, " or "))
		}
		if len(missing) == 0 {
			continue
		}
		out = append(out, Raised{Kind: KindInvariantViolation, Workflow: w.Name, Subject: inv.Name,
			Summary:  fmt.Sprintf("%s: missing %s", inv.Description, strings.Join(missing, ", ")),
			Evidence: map[string]any{"rule": inv.Name, "description": inv.Description, "missing": missing, "types_seen": slices.Sorted(maps.Keys(has))}})
	}
	return out
}

// maximalEvents returns the order's latest events: those no other event's
// vector strictly dominates.
func maximalEvents(evs []ChainEvent, vv map[string]Vector) []ChainEvent {
	vs := make([]Vector, len(evs))
	for i, e := range evs {
		vs[i] = vv[e.EventID]
	}
	var maximal []ChainEvent
	for i, e := range evs {
		dominated := false
		for j := len(evs) - 1; j >= 0; j-- { // later events dominate more often
			if j != i && vs[j].StrictlyDominates(vs[i]) {
				dominated = true
				break
			}
		}
		if !dominated {
			maximal = append(maximal, e)
		}
	}
	return maximal
}

// checkDivergence: after the convergence window, the order's latest events
// (maximalEvents) still put it in different steps of one workflow: the
// services that emitted them disagree on its state.
func checkDivergence(w Workflow, maximal []ChainEvent, vv map[string]Vector) []Raised {
	stepOf := map[string]string{}
	for _, s := range w.Steps {
		for _, t := range s.On {
			stepOf[t] = s.Name
		}
	}
	steps := map[string]ChainEvent{}
	for _, e := range maximal {
		if st, ok := stepOf[e.Type]; ok {
			steps[st] = e
		}
	}
	if len(steps) < 2 {
		return nil
	}
	var ev []map[string]any
	var names []string
	for _, st := range slices.Sorted(maps.Keys(steps)) {
		e := steps[st]
		names = append(names, fmt.Sprintf("%s says %s", e.Service, st))
		ev = append(ev, evidenceEvent(e, vv[e.EventID]))
	}
	return []Raised{{Kind: KindDivergence, Workflow: w.Name, Subject: "state",
		Summary:  "services disagree on the order's state: " + strings.Join(names, ", "),
		Evidence: map[string]any{"rule": "the latest events converge on one state within the convergence window", "latest_events": ev}}}
}
