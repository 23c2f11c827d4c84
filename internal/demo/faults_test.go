package demo

import (
	"bytes"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	contract "github.com/weft-sh/weft/internal/event"
)

// These tests prove, on the records alone, that each fault has exactly the
// properties its finding needs, and no other finding's.

// findingsOf is a reference reading of the finding kinds
// (docs/consistency.md) over one order's records, as weft would see them
// once the order has settled:
//
//   - stuck: no terminal event (history stuck orders are ≥ 2×SLA old).
//   - gap: for some service, the counters on its own events are not exactly
//     1..M, M being the largest entry for it in any event's vector.
//   - causality_violation: an event's vector does not strictly dominate the
//     vector of the (present) event it names as cause.
//   - orphan: an event names a cause no event has, unless a gap explains it.
//   - concurrent_conflict: PickedUp ∥ PickupExpired, PickedUp ∥
//     OrderCancelled or OrderCompleted ∥ OrderCancelled (incomparable
//     vectors).
//   - duplicate: one event id or idempotency key with different values.
//   - invariant_violation: a cancelled order with InventoryReserved but no
//     InventoryReleased, or with PaymentAuthorized but no PaymentVoided or
//     PaymentRefunded; a completed order without PickedUp and PaymentCaptured.
//   - divergence: more than one maximal event (no other event's vector
//     strictly dominates it), at least two of them on different steps.
func findingsOf(evs []decoded) map[string]bool {
	out := map[string]bool{}
	byID := map[string]decoded{}
	var uniq []decoded // one per event id, first record wins
	values := map[string][][]byte{}
	types := map[string]bool{}
	for _, e := range evs {
		for _, key := range []string{"id:" + e.id, "key:" + e.headers[contract.HeaderIdempotencyKey]} {
			if !slices.ContainsFunc(values[key], func(v []byte) bool { return bytes.Equal(v, e.rec.Value) }) {
				values[key] = append(values[key], e.rec.Value)
			}
		}
		if _, ok := byID[e.id]; !ok {
			byID[e.id] = e
			uniq = append(uniq, e)
			types[e.typ] = true
		}
	}
	for _, vs := range values {
		if len(vs) > 1 {
			out["duplicate"] = true
		}
	}
	if !types[OrderCompleted] && !types[OrderCancelled] {
		out["stuck"] = true
	}
	// gap
	own, top := map[string]map[uint64]bool{}, map[string]uint64{}
	for _, e := range uniq {
		if own[e.source] == nil {
			own[e.source] = map[uint64]bool{}
		}
		own[e.source][e.vv[e.source]] = true
		for s, v := range e.vv {
			top[s] = max(top[s], v)
		}
	}
	for s, m := range top {
		if len(own[s]) != int(m) {
			out["gap"] = true
		}
		for c := range own[s] {
			if c < 1 || c > m {
				out["gap"] = true
			}
		}
	}
	// causality_violation, orphan
	for _, e := range uniq {
		if e.causation == "" {
			continue
		}
		c, ok := byID[e.causation]
		switch {
		case !ok && !out["gap"]:
			out["orphan"] = true
		case ok && !strictlyDominates(e.vv, c.vv):
			out["causality_violation"] = true
		}
	}
	// concurrent_conflict
	for _, pair := range [][2]string{{PickedUp, PickupExpired}, {PickedUp, OrderCancelled}, {OrderCompleted, OrderCancelled}} {
		for _, a := range uniq {
			for _, b := range uniq {
				if a.typ == pair[0] && b.typ == pair[1] && !dominates(a.vv, b.vv) && !dominates(b.vv, a.vv) {
					out["concurrent_conflict"] = true
				}
			}
		}
	}
	// invariant_violation
	if types[OrderCancelled] && (types[InventoryReserved] && !types[InventoryReleased] ||
		types[PaymentAuthorized] && !types[PaymentVoided]) ||
		types[OrderCompleted] && !(types[PickedUp] && types[PaymentCaptured]) {
		out["invariant_violation"] = true
	}
	// divergence
	steps := map[string]bool{}
	nmax := 0
	for _, e := range uniq {
		if !slices.ContainsFunc(uniq, func(x decoded) bool { return strictlyDominates(x.vv, e.vv) }) {
			nmax++
			steps[StepOf(e.typ)] = true
		}
	}
	if nmax > 1 && len(steps) > 1 {
		out["divergence"] = true
	}
	return out
}

func strictlyDominates(a, b map[string]uint64) bool {
	return dominates(a, b) && !maps.Equal(a, b)
}

// planVariety is a run with many orders of every kind, to reach every
// workflow variant a fault can land on.
func planVariety(t *testing.T, seed int64) *Batch {
	cfg := testConfig()
	cfg.Seed = seed
	cfg.Orders = 400
	for _, k := range Kinds() {
		require.True(t, cfg.Faults.Set(k, FaultShare{Count: 25}))
	}
	cfg.Faults.Stuck = FaultShare{Count: 33}
	return mustPlan(t, cfg)
}

// TestEachFaultRaisesExactlyItsFinding: every order raises exactly
// ExpectedFinding of its fault, and healthy orders nothing.
func TestEachFaultRaisesExactlyItsFinding(t *testing.T) {
	seeds := []int64{1, 7, 42, 2026, 31337, 5}
	if testing.Short() {
		seeds = seeds[:2]
	}
	for _, seed := range seeds {
		for name, b := range map[string]*Batch{"default": mustPlan(t, func() Config { c := testConfig(); c.Seed = seed; return c }()),
			"variety": planVariety(t, seed)} {
			orders := byOrder(t, b.Records)
			seen := map[Kind]int{}
			for _, o := range b.Manifest.Orders {
				want := map[string]bool{}
				if f := ExpectedFinding(o.Fault); f != "" {
					want[f] = true
				}
				got := findingsOf(orders[o.ID])
				if !assert.Equal(t, want, got, "seed %d %s: %s (%s, fault %q):%s", seed, name, o.ID, o.Path, o.Fault, describe(orders[o.ID])) {
					continue
				}
				seen[o.Fault]++
			}
			for _, k := range Kinds() {
				if name == "default" && DefaultConfig().Faults.Share(k) == (FaultShare{}) {
					continue // not in the default mix
				}
				assert.Positive(t, seen[k], "seed %d %s: no %s order checked", seed, name, k)
			}
		}
	}
}

func TestExpectedFindingTable(t *testing.T) {
	want := map[Kind]string{
		"":                       "",
		KindStuck:                "stuck",
		KindLost:                 "gap",
		KindDuplicate:            "",
		KindOutOfOrder:           "",
		KindRace:                 "concurrent_conflict",
		KindPaymentFailed:        "",
		KindOrphan:               "orphan",
		KindCausalityViolation:   "causality_violation",
		KindConflictingDuplicate: "duplicate",
		KindMissingCompensation:  "invariant_violation",
		KindDivergence:           "divergence",
		KindCancelRace:           "concurrent_conflict",
	}
	assert.Len(t, want, len(Kinds())+1, "every kind is in the table")
	for k, f := range want {
		assert.Equal(t, f, ExpectedFinding(k), "kind %q", k)
	}
}

// faultEvents returns the fault's order, and its events by type (first
// record of each event id).
func faultEvents(t *testing.T, orders map[string][]decoded, f Fault) ([]decoded, map[string]decoded) {
	t.Helper()
	evs := orders[f.OrderID]
	require.NotEmpty(t, evs)
	byType := map[string]decoded{}
	for _, e := range evs {
		if _, ok := byType[e.typ]; !ok {
			byType[e.typ] = e
		}
	}
	return evs, byType
}

func eventByID(evs []decoded, id string) (decoded, bool) {
	for _, e := range evs {
		if e.id == id {
			return e, true
		}
	}
	return decoded{}, false
}

// merged is the pointwise max of vectors.
func merged(vvs ...map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for _, vv := range vvs {
		for k, v := range vv {
			out[k] = max(out[k], v)
		}
	}
	return out
}

func TestRacesResolve(t *testing.T) {
	b := planVariety(t, 3)
	orders := byOrder(t, b.Records)
	races := b.Manifest.FaultsOf(KindRace)
	require.NotEmpty(t, races)
	paths := map[string]int{}
	for _, f := range races {
		evs, by := faultEvents(t, orders, f)
		o, _ := b.Manifest.Order(f.OrderID)
		paths[o.Path[len(o.Path)-len("race-cancelled"):]]++
		pu, pe := by[PickedUp], by[PickupExpired]
		follower, racer := by[PaymentCaptured], pu
		if f.LastEventType == OrderCancelled {
			follower, racer = by[InventoryReleased], pe
		}
		require.NotNil(t, follower.rec, f.OrderID)
		// Causation names the racer it follows; the vector merges both.
		assert.Equal(t, racer.id, follower.causation)
		want := merged(pu.vv, pe.vv)
		want[follower.source]++
		assert.Equal(t, want, follower.vv, "%s:%s", f.OrderID, describe(evs))
		assert.True(t, strictlyDominates(follower.vv, pu.vv))
		assert.True(t, strictlyDominates(follower.vv, pe.vv))
	}
	assert.Len(t, paths, 2, "both race outcomes: %v", paths)
}

// TestCancelRaces: the customer's OrderCancelled and the store's PickedUp
// both follow CustomerNotified, neither seeing the other; InventoryReleased
// follows the cancellation having seen both, and the order ends with
// PaymentVoided, which dominates every event.
func TestCancelRaces(t *testing.T) {
	b := planVariety(t, 3)
	orders := byOrder(t, b.Records)
	races := b.Manifest.FaultsOf(KindCancelRace)
	require.NotEmpty(t, races)
	for _, f := range races {
		evs, by := faultEvents(t, orders, f)
		cn, pu, oc, ir, pv := by[CustomerNotified], by[PickedUp], by[OrderCancelled], by[InventoryReleased], by[PaymentVoided]
		for _, e := range []decoded{cn, pu, oc, ir, pv} {
			require.NotNil(t, e.rec, "%s:%s", f.OrderID, describe(evs))
		}
		assert.Equal(t, oc.id, f.EventID)
		assert.Equal(t, cn.id, pu.causation)
		assert.Equal(t, cn.id, oc.causation)
		assert.False(t, dominates(pu.vv, oc.vv) || dominates(oc.vv, pu.vv), "%s: racers comparable:%s", f.OrderID, describe(evs))
		assert.Equal(t, oc.id, ir.causation)
		want := merged(pu.vv, oc.vv)
		want[ir.source]++
		assert.Equal(t, want, ir.vv)
		for _, e := range evs {
			if e.id != pv.id {
				assert.True(t, strictlyDominates(pv.vv, e.vv), "%s: PaymentVoided does not dominate %s", f.OrderID, e.typ)
			}
		}
		assert.Equal(t, PaymentVoided, f.LastEventType)
		o, _ := b.Manifest.Order(f.OrderID)
		assert.True(t, o.Terminal)
	}
}

func TestLostLeavesVisibleGap(t *testing.T) {
	b := planVariety(t, 4)
	orders := byOrder(t, b.Records)
	lost := b.Manifest.FaultsOf(KindLost)
	require.NotEmpty(t, lost)
	types := map[string]bool{}
	for _, f := range lost {
		evs := orders[f.OrderID]
		svc := serviceOf(f.EventType)
		types[f.EventType] = true
		// The event naming the lost one as cause carries the lost counter
		// for svc (in its vector, or one below its own counter when it is
		// of svc too), which none of svc's own events carry.
		var child *decoded
		for i := range evs {
			if evs[i].causation == f.EventID {
				child = &evs[i]
			}
		}
		require.NotNil(t, child, "%s: nothing names the lost %s", f.OrderID, f.EventType)
		k := child.vv[svc]
		if child.source == svc {
			k--
		}
		require.Positive(t, k)
		for _, e := range evs {
			if e.source == svc {
				assert.NotEqual(t, k, e.vv[svc], "%s: counter %s:%d is carried", f.OrderID, svc, k)
			}
		}
		assert.NotContains(t, []string{PickedUp, PaymentCaptured, InventoryReleased, PaymentVoided}, f.EventType)
	}
	assert.GreaterOrEqual(t, len(types), 4, "lost types vary: %v", types)
}

func TestOrphans(t *testing.T) {
	b := planVariety(t, 5)
	orders := byOrder(t, b.Records)
	all := map[string]bool{}
	for _, r := range b.Records {
		all[decode(t, r).id] = true
	}
	faults := b.Manifest.FaultsOf(KindOrphan)
	require.NotEmpty(t, faults)
	for _, f := range faults {
		evs := orders[f.OrderID]
		e, ok := eventByID(evs, f.EventID)
		require.True(t, ok)
		assert.Equal(t, f.EventType, e.typ)
		assert.NotEqual(t, OrderPlaced, e.typ)
		assert.Equal(t, f.CausationID, e.causation)
		assert.NotEmpty(t, e.causation)
		assert.False(t, all[e.causation], "%s: the orphan's cause %s exists", f.OrderID, e.causation)
		// Its vector is its real predecessor's with its own entry bumped.
		pred := false
		for _, p := range evs {
			if p.id == e.id || !strictlyDominates(e.vv, p.vv) {
				continue
			}
			same := true
			for k := range merged(e.vv, p.vv) {
				same = same && (k == e.source || e.vv[k] == p.vv[k])
			}
			pred = pred || same && e.vv[e.source] > p.vv[e.source]
		}
		assert.True(t, pred, "%s: no predecessor explains %s's vector:%s", f.OrderID, e.typ, describe(evs))
		// Every other event names a cause that exists.
		for _, x := range evs {
			if x.id != e.id && x.causation != "" {
				assert.True(t, all[x.causation], "%s: %s names a missing cause", f.OrderID, x.typ)
			}
		}
	}
}

func TestCausalityViolations(t *testing.T) {
	b := planVariety(t, 6)
	orders := byOrder(t, b.Records)
	faults := b.Manifest.FaultsOf(KindCausalityViolation)
	require.NotEmpty(t, faults)
	pairs := map[string]bool{}
	for _, f := range faults {
		evs := orders[f.OrderID]
		e, ok := eventByID(evs, f.EventID)
		require.True(t, ok)
		c, ok := eventByID(evs, f.CausationID)
		require.True(t, ok)
		assert.Equal(t, c.id, e.causation)
		pairs[c.typ+"→"+e.typ] = true
		// The exact mutation: c's vector, c's service entry lowered by one
		// (still a real counter), e's own entry bumped.
		require.NotEqual(t, c.source, e.source)
		require.GreaterOrEqual(t, c.vv[c.source], uint64(2))
		want := maps.Clone(c.vv)
		want[c.source]--
		want[e.source] = e.vv[e.source]
		assert.Equal(t, want, e.vv, "%s:%s", f.OrderID, describe(evs))
		assert.Greater(t, e.vv[e.source], c.vv[e.source])
		assert.False(t, dominates(e.vv, c.vv))
		// The event after e names it and dominates both.
		next := false
		for _, x := range evs {
			if x.causation == e.id {
				next = true
				assert.True(t, strictlyDominates(x.vv, e.vv))
				assert.True(t, strictlyDominates(x.vv, c.vv))
			}
		}
		assert.True(t, next, "%s: nothing follows %s", f.OrderID, e.typ)
		// (c, e) is the order's only incomparable pair.
		for i, a := range evs {
			for _, x := range evs[i+1:] {
				if a.id != x.id && !dominates(a.vv, x.vv) && !dominates(x.vv, a.vv) {
					assert.ElementsMatch(t, []string{c.id, e.id}, []string{a.id, x.id}, "%s: %s ∥ %s", f.OrderID, a.typ, x.typ)
				}
			}
		}
	}
	assert.GreaterOrEqual(t, len(pairs), 2, "mutated pairs vary: %v", pairs)
}

func TestConflictingDuplicates(t *testing.T) {
	b := planVariety(t, 8)
	faults := b.Manifest.FaultsOf(KindConflictingDuplicate)
	require.NotEmpty(t, faults)
	byID := map[string][]decoded{}
	for _, r := range b.Records {
		d := decode(t, r)
		byID[d.id] = append(byID[d.id], d)
	}
	formats := map[contract.Format]bool{}
	for _, f := range faults {
		same := byID[f.EventID]
		require.Len(t, same, 2, "event %s", f.EventID)
		a, c := same[0], same[1]
		formats[a.format] = true
		assert.Equal(t, f.EventType, a.typ)
		assert.False(t, IsTerminal(a.typ))
		assert.Equal(t, a.rec.Topic, c.rec.Topic)
		assert.Equal(t, a.rec.Key, c.rec.Key)
		assert.Equal(t, a.rec.Headers, c.rec.Headers, "same id, idempotency key, vector, causation")
		assert.True(t, a.rec.Timestamp.Equal(c.rec.Timestamp))
		assert.NotEqual(t, a.rec.Value, c.rec.Value)
		// The payloads differ in the amount only.
		assert.NotEqual(t, a.data["amount"], c.data["amount"])
		delete(a.data, "amount")
		delete(c.data, "amount")
		assert.Equal(t, a.data, c.data)
	}
	assert.NotEmpty(t, formats)
}

func TestMissingCompensation(t *testing.T) {
	b := planVariety(t, 9)
	orders := byOrder(t, b.Records)
	faults := b.Manifest.FaultsOf(KindMissingCompensation)
	require.NotEmpty(t, faults)
	for _, f := range faults {
		evs, by := faultEvents(t, orders, f)
		for _, typ := range []string{PaymentAuthorized, PickupExpired, InventoryReleased, OrderCancelled} {
			require.Contains(t, by, typ, "%s:%s", f.OrderID, describe(evs))
		}
		assert.NotContains(t, by, PaymentVoided)
		assert.NotContains(t, by, PickedUp)
		canc := by[OrderCancelled]
		assert.Equal(t, f.EventID, canc.id)
		assert.Equal(t, OrderCancelled, f.EventType)
		assert.Equal(t, by[InventoryReleased].id, canc.causation)
		assert.True(t, strictlyDominates(canc.vv, by[InventoryReleased].vv))
		// Payments' counters have no hole: the void was never counted.
		var pay []uint64
		for _, e := range evs {
			if e.source == ServicePayments {
				pay = append(pay, e.vv[ServicePayments])
			}
		}
		slices.Sort(pay)
		for i, c := range pay {
			assert.Equal(t, uint64(i+1), c)
		}
		assert.Equal(t, pay[len(pay)-1], canc.vv[ServicePayments])
	}
}

func TestDivergence(t *testing.T) {
	b := planVariety(t, 10)
	orders := byOrder(t, b.Records)
	faults := b.Manifest.FaultsOf(KindDivergence)
	require.NotEmpty(t, faults)
	for _, f := range faults {
		evs, by := faultEvents(t, orders, f)
		ir, oc, pu := by[InventoryReleased], by[OrderCompleted], by[PickedUp]
		require.NotNil(t, ir.rec)
		require.NotNil(t, oc.rec)
		assert.Equal(t, f.EventID, ir.id)
		assert.Equal(t, pu.id, ir.causation)
		assert.True(t, ir.at.After(oc.at), "released after the completion")
		assert.Equal(t, InventoryReleased, f.LastEventType)
		assert.False(t, dominates(ir.vv, oc.vv))
		assert.False(t, dominates(oc.vv, ir.vv))
		assert.Equal(t, uint64(2), ir.vv[ServiceInventory])
		assert.Equal(t, uint64(1), by[InventoryReserved].vv[ServiceInventory])
		want := maps.Clone(pu.vv)
		want[ServiceInventory] = 2
		assert.Equal(t, want, ir.vv)
		// Exactly two maximal events: the completion and the release.
		var maxima []string
		for _, e := range evs {
			if !slices.ContainsFunc(evs, func(x decoded) bool { return strictlyDominates(x.vv, e.vv) }) {
				maxima = append(maxima, e.typ)
			}
		}
		assert.ElementsMatch(t, []string{OrderCompleted, InventoryReleased}, maxima, "%s:%s", f.OrderID, describe(evs))
		o, _ := b.Manifest.Order(f.OrderID)
		assert.True(t, o.Terminal)
	}
}

// TestNewFaultsDeterministic: the same seed gives the same faults, byte
// for byte, and another seed other ones.
func TestNewFaultsDeterministic(t *testing.T) {
	a, b, c := planVariety(t, 11), planVariety(t, 11), planVariety(t, 12)
	require.Equal(t, len(a.Records), len(b.Records))
	for i := range a.Records {
		assert.Equal(t, a.Records[i].Value, b.Records[i].Value)
		assert.Equal(t, a.Records[i].Headers, b.Records[i].Headers)
	}
	for _, k := range []Kind{KindOrphan, KindCausalityViolation, KindConflictingDuplicate, KindMissingCompensation, KindDivergence} {
		assert.Equal(t, a.Manifest.FaultsOf(k), b.Manifest.FaultsOf(k), k)
		assert.NotEqual(t, a.Manifest.FaultsOf(k), c.Manifest.FaultsOf(k), k)
	}
}
