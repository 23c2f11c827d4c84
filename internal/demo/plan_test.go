package demo

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	contract "github.com/weft-sh/weft/internal/event"
)

func TestPlanDeterministic(t *testing.T) {
	manifestJSON := func(b *Batch) []byte {
		var buf bytes.Buffer
		require.NoError(t, b.Manifest.WriteJSON(&buf))
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name  string
		seedB int64
		same  bool
	}{
		{"same seed, same run", 42, true},
		{"other seed, other run", 43, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Seed = 42
			a := mustPlan(t, cfg)
			cfg.Seed = tc.seedB
			b := mustPlan(t, cfg)
			if !tc.same {
				assert.NotEqual(t, manifestJSON(a), manifestJSON(b))
				return
			}
			assert.Equal(t, string(manifestJSON(a)), string(manifestJSON(b)))
			require.Len(t, b.Records, len(a.Records))
			for i := range a.Records {
				ra, rb := a.Records[i], b.Records[i]
				assert.Equal(t, ra.Topic, rb.Topic)
				assert.Equal(t, ra.Key, rb.Key)
				assert.Equal(t, ra.Value, rb.Value)
				assert.Equal(t, ra.Headers, rb.Headers)
				assert.True(t, ra.Timestamp.Equal(rb.Timestamp))
			}
		})
	}
}

func TestPlanManifestCounts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		orders int
		mix    func(*FaultMix)
		want   map[Kind]int
	}{
		{"default 200", 200, func(*FaultMix) {}, withZeros(map[Kind]int{
			KindStuck: 22, KindLost: 6, KindDuplicate: 8, KindOutOfOrder: 6, KindRace: 4, KindPaymentFailed: 6,
			KindOrphan: 4, KindCausalityViolation: 4, KindConflictingDuplicate: 4, KindMissingCompensation: 4, KindDivergence: 4})},
		{"exact counts", 40, func(m *FaultMix) {
			*m = FaultMix{Stuck: FaultShare{Count: 11}, Race: FaultShare{Count: 3}, Lost: FaultShare{Fraction: 0.1},
				Divergence: FaultShare{Count: 2}}
		}, withZeros(map[Kind]int{KindStuck: 11, KindLost: 4, KindRace: 3, KindDivergence: 2})},
		{"no faults", 30, func(m *FaultMix) { *m = FaultMix{} }, withZeros(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Orders = tc.orders
			tc.mix(&cfg.Faults)
			m := mustPlan(t, cfg).Manifest
			assert.Equal(t, tc.want, m.CountByKind())
			faulty := 0
			for _, n := range tc.want {
				faulty += n
			}
			assert.Len(t, m.Healthy, tc.orders-faulty)
			assert.Len(t, m.Orders, tc.orders)
			ids := map[string]bool{}
			for _, o := range m.Orders {
				assert.False(t, ids[o.ID], "duplicate order id %s", o.ID)
				ids[o.ID] = true
			}
		})
	}
}

func TestStuckStepsCovered(t *testing.T) {
	m := mustPlan(t, testConfig()).Manifest
	got := map[string]int{}
	for _, f := range m.FaultsOf(KindStuck) {
		got[f.Step]++
	}
	for _, st := range StuckSteps() {
		t.Run(st, func(t *testing.T) {
			assert.GreaterOrEqual(t, got[st], 1, "no order stuck in %s", st)
		})
	}
}

// TestOrdersEndAsPlanned checks every order against the manifest by
// reading its records back: healthy and non-stuck faulty orders end in a
// terminal event before Now, with no step outlasting its SLA; stuck
// orders end in their step, at least 2×SLA before Now.
func TestOrdersEndAsPlanned(t *testing.T) {
	b := mustPlan(t, testConfig())
	m := b.Manifest
	dlq := TopicPaymentsDLQ
	orders := byOrder(t, b.Records)
	require.Len(t, orders, len(m.Orders))
	for _, o := range m.Orders {
		evs := orders[o.ID]
		for _, e := range evs {
			require.True(t, e.at.Before(m.Now), "%s: event after Now", o.ID)
			require.False(t, e.at.Before(m.WindowStart), "%s: event before the window", o.ID)
			require.True(t, e.at.Equal(e.rec.Timestamp), "%s: record timestamp is not the event time", o.ID)
		}
		last := lastByTime(evs, dlq)
		assert.Equal(t, o.LastEventType, last.typ, o.ID)
		assert.True(t, o.LastEventAt.Equal(last.at), o.ID)
		if o.Fault == KindStuck {
			continue
		}
		t.Run("terminal/"+o.ID, func(t *testing.T) {
			assert.True(t, o.Terminal)
			if o.Fault == KindDivergence {
				// Inventory releases after the order completed.
				assert.Equal(t, InventoryReleased, last.typ)
				n := 0
				for _, e := range evs {
					if IsTerminal(e.typ) {
						n++
						assert.Equal(t, OrderCompleted, e.typ)
						assert.True(t, e.at.Before(last.at))
					}
				}
				assert.Equal(t, 1, n)
			} else {
				assert.True(t, IsTerminal(last.typ), "%s (%s, fault %q) ends with %s", o.ID, o.Path, o.Fault, last.typ)
			}
			if o.Fault == KindLost {
				return // the gap left by the lost event may outlast an SLA
			}
			// No step outlasts its SLA: weft must not find it stuck on the way.
			byTime := slices.Clone(evs)
			slices.SortStableFunc(byTime, func(a, b decoded) int { return a.at.Compare(b.at) })
			for i := 0; i+1 < len(byTime); i++ {
				cur, next := byTime[i], byTime[i+1]
				if cur.rec.Topic == dlq || next.rec.Topic == dlq || IsTerminal(cur.typ) {
					continue
				}
				st := StepOf(cur.typ)
				assert.Less(t, next.at.Sub(cur.at), sla(st), "%s stays in %s too long:%s", o.ID, st, describe(byTime))
			}
		})
	}
	for _, f := range m.FaultsOf(KindStuck) {
		t.Run("stuck/"+f.Step+"/"+f.OrderID, func(t *testing.T) {
			evs := orders[f.OrderID]
			last := lastByTime(evs, dlq)
			assert.Equal(t, f.Step, StepOf(last.typ))
			assert.Equal(t, f.LastEventType, last.typ)
			assert.Equal(t, f.EventID, last.id)
			assert.GreaterOrEqual(t, m.Now.Sub(last.at), 2*sla(f.Step), "stuck in %s only %s", f.Step, m.Now.Sub(last.at))
			for _, e := range evs {
				assert.False(t, IsTerminal(e.typ), "stuck order %s has %s", f.OrderID, e.typ)
			}
		})
	}
}

func TestVersionVectorsFollowCausation(t *testing.T) {
	b := mustPlan(t, testConfig())
	wrong := map[string]bool{} // the events whose vector is wrong on purpose
	for _, f := range b.Manifest.FaultsOf(KindCausalityViolation) {
		wrong[f.EventID] = true
	}
	require.NotEmpty(t, wrong)
	for id, evs := range byOrder(t, b.Records) {
		byID := map[string]decoded{}
		trace := evs[0].traceID
		for _, e := range evs {
			byID[e.id] = e
			assert.Equal(t, trace, e.traceID, "%s: one trace id per order", id)
		}
		for _, e := range evs {
			if e.typ == OrderPlaced {
				assert.Empty(t, e.causation, "%s: OrderPlaced has a cause", id)
				assert.Equal(t, map[string]uint64{ServiceOrders: 1}, e.vv)
				continue
			}
			require.NotEmpty(t, e.causation, "%s: %s has no causation-id", id, e.typ)
			cause, ok := byID[e.causation]
			if !ok {
				continue // the cause was lost or never existed: checked by TestLostEvents, TestOrphans
			}
			if wrong[e.id] {
				assert.False(t, dominates(e.vv, cause.vv), "%s: %s should not dominate its cause", id, e.typ)
				continue // checked by TestCausalityViolations
			}
			assert.True(t, dominates(e.vv, cause.vv), "%s: %s does not dominate its cause %s:%s", id, e.typ, cause.typ, describe(evs))
			assert.Greater(t, e.vv[e.source], cause.vv[e.source], "%s: %s did not bump %s", id, e.typ, e.source)
			assert.Less(t, cause.at, e.at, "%s: %s is not after its cause", id, e.typ)
		}
	}
}

func TestRacesAreConcurrent(t *testing.T) {
	b := mustPlan(t, testConfig())
	orders := byOrder(t, b.Records)
	races := b.Manifest.FaultsOf(KindRace)
	require.NotEmpty(t, races)
	for _, f := range races {
		t.Run(f.OrderID, func(t *testing.T) {
			var pu, pe decoded
			for _, e := range orders[f.OrderID] {
				switch e.typ {
				case PickedUp:
					pu = e
				case PickupExpired:
					pe = e
				}
			}
			require.NotNil(t, pu.rec)
			require.NotNil(t, pe.rec)
			assert.NotEqual(t, pu.id, pe.causation)
			assert.NotEqual(t, pe.id, pu.causation)
			assert.False(t, dominates(pu.vv, pe.vv), "PickedUp %v dominates PickupExpired %v", pu.vv, pe.vv)
			assert.False(t, dominates(pe.vv, pu.vv), "PickupExpired %v dominates PickedUp %v", pe.vv, pu.vv)
			assert.True(t, IsTerminal(f.LastEventType))
		})
	}
}

func TestDuplicatesAreIdentical(t *testing.T) {
	b := mustPlan(t, testConfig())
	dups := b.Manifest.FaultsOf(KindDuplicate)
	require.NotEmpty(t, dups)
	for _, f := range dups {
		t.Run(f.OrderID, func(t *testing.T) {
			var same []decoded
			for _, r := range b.Records {
				if d := decode(t, r); d.id == f.EventID {
					same = append(same, d)
				}
			}
			require.Len(t, same, 2, "event %s", f.EventID)
			a, c := same[0].rec, same[1].rec
			assert.Equal(t, a.Topic, c.Topic)
			assert.Equal(t, a.Key, c.Key)
			assert.Equal(t, a.Value, c.Value)
			assert.Equal(t, a.Headers, c.Headers)
			assert.True(t, a.Timestamp.Equal(c.Timestamp))
			assert.NotSame(t, a, c)
		})
	}
	// No other event id appears twice, DLQ copies and conflicting
	// duplicates aside.
	seen := map[string]int{}
	for _, r := range b.Records {
		if r.Topic != TopicPaymentsDLQ {
			seen[decode(t, r).id]++
		}
	}
	n := 0
	for _, c := range seen {
		if c > 1 {
			n++
		}
	}
	assert.Equal(t, len(dups)+len(b.Manifest.FaultsOf(KindConflictingDuplicate)), n)
}

func TestLostEvents(t *testing.T) {
	b := mustPlan(t, testConfig())
	orders := byOrder(t, b.Records)
	lost := b.Manifest.FaultsOf(KindLost)
	require.NotEmpty(t, lost)
	for _, f := range lost {
		t.Run(f.OrderID, func(t *testing.T) {
			named := false
			for _, e := range orders[f.OrderID] {
				assert.NotEqual(t, f.EventID, e.id, "lost event was produced")
				named = named || e.causation == f.EventID
			}
			assert.True(t, named, "nothing names the lost %s as cause", f.EventType)
			assert.NotEqual(t, OrderPlaced, f.EventType)
			assert.False(t, IsTerminal(f.EventType))
		})
	}
}

func TestOutOfOrder(t *testing.T) {
	b := mustPlan(t, testConfig())
	orders := byOrder(t, b.Records)
	ooo := b.Manifest.FaultsOf(KindOutOfOrder)
	require.NotEmpty(t, ooo)
	for _, f := range ooo {
		t.Run(f.OrderID, func(t *testing.T) {
			evs := orders[f.OrderID] // in produce order
			inverted := false
			for i := range evs {
				for j := i + 1; j < len(evs); j++ {
					inverted = inverted || evs[i].rec.Topic == evs[j].rec.Topic && evs[i].at.After(evs[j].at)
				}
			}
			assert.True(t, inverted, "no same-topic inversion:%s", describe(evs))
		})
	}
	// Orders without the fault are produced in event-time order per topic.
	for _, o := range b.Manifest.Orders {
		if o.Fault == KindOutOfOrder || o.Fault == KindDuplicate || o.Fault == KindConflictingDuplicate {
			continue
		}
		evs := orders[o.ID]
		for i := 0; i+1 < len(evs); i++ {
			if evs[i].rec.Topic == evs[i+1].rec.Topic {
				assert.False(t, evs[i].at.After(evs[i+1].at), "%s produced out of order", o.ID)
			}
		}
	}
}

func TestPaymentFailedGoesToDLQ(t *testing.T) {
	b := mustPlan(t, testConfig())
	orders := byOrder(t, b.Records)
	failed := b.Manifest.FaultsOf(KindPaymentFailed)
	require.NotEmpty(t, failed)
	for _, f := range failed {
		t.Run(f.OrderID, func(t *testing.T) {
			var orig, copy *decoded
			retries := 0
			for _, e := range orders[f.OrderID] {
				switch {
				case e.id == f.EventID && e.rec.Topic == TopicPayments:
					orig = &e
				case e.id == f.EventID && e.rec.Topic == TopicPaymentsDLQ:
					copy = &e
				case e.typ == PaymentRetryScheduled:
					retries++
				}
			}
			require.NotNil(t, orig)
			require.NotNil(t, copy)
			assert.Equal(t, maxRetries, retries)
			assert.Equal(t, orig.rec.Value, copy.rec.Value)
			assert.Equal(t, orig.rec.Key, copy.rec.Key)
			assert.Equal(t, "retries_exhausted", copy.headers[HeaderDLQReason])
			assert.Equal(t, TopicPayments, copy.headers[HeaderDLQOriginalTopic])
			assert.Equal(t, OrderCancelled, f.LastEventType)
		})
	}
}

func TestEncodingsAndHeaders(t *testing.T) {
	b := mustPlan(t, testConfig())
	formats := map[contract.Format]int{}
	for _, r := range b.Records {
		d := decode(t, r)
		formats[d.format]++
		assert.Equal(t, d.orderID, string(r.Key), "key is the order id")
		assert.Equal(t, serviceOf(d.typ), d.source)
		if r.Topic != TopicPaymentsDLQ {
			assert.Equal(t, topicOf(d.typ), r.Topic)
		}
		for _, h := range []string{contract.HeaderTraceParent, contract.HeaderCorrelationID,
			contract.HeaderVersionVector, contract.HeaderIdempotencyKey} {
			assert.NotEmpty(t, d.headers[h], "%s %s lacks %s", d.typ, d.id, h)
		}
		assert.Equal(t, d.typ == OrderPlaced, d.causation == "", "%s causation-id %q", d.typ, d.causation)
		assert.Equal(t, d.orderID, d.data["order_id"])
	}
	for _, f := range []contract.Format{contract.FormatCloudEventsStructured, contract.FormatCloudEventsBinary, contract.FormatJSON} {
		t.Run(string(f), func(t *testing.T) {
			assert.Greater(t, formats[f], len(b.Records)/20, "too few %s records: %v", f, formats)
			assert.Equal(t, b.Manifest.RecordsPerFormat[string(f)], formats[f])
		})
	}
	// Structured is the most common, JSON the least (60/30/10).
	assert.Greater(t, formats[contract.FormatCloudEventsStructured], formats[contract.FormatCloudEventsBinary])
	assert.Greater(t, formats[contract.FormatCloudEventsBinary], formats[contract.FormatJSON])
}

var cardRE = regexp.MustCompile(`"card_number":"(\d{13,19})"`)

func TestCardNumbersPresent(t *testing.T) {
	b := mustPlan(t, testConfig())
	byType := map[string]int{}
	for _, r := range b.Records {
		for _, m := range cardRE.FindAllSubmatch(r.Value, -1) {
			require.True(t, luhn(string(m[1])), "card %s fails Luhn", m[1])
			byType[decode(t, r).typ]++
		}
	}
	assert.Positive(t, byType[OrderPlaced])
	assert.Positive(t, byType[PaymentRequested])
	// Every OrderPlaced carries one.
	placed := 0
	for _, r := range b.Records {
		if decode(t, r).typ == OrderPlaced {
			placed++
		}
	}
	assert.Equal(t, placed, byType[OrderPlaced])
}

func TestRecordsPerTopicAndPrefix(t *testing.T) {
	for _, tc := range []struct{ prefix, suffix string }{{"", ""}, {"shop.", ".v1"}} {
		t.Run(tc.prefix+"orders"+tc.suffix, func(t *testing.T) {
			cfg := testConfig()
			cfg.Orders = 60
			cfg.Topics = TopicNames{Prefix: tc.prefix, Suffix: tc.suffix}
			b := mustPlan(t, cfg)
			got := map[string]int{}
			for _, r := range b.Records {
				got[r.Topic]++
				assert.Contains(t, cfg.Topics.All(), r.Topic)
			}
			assert.Equal(t, b.Manifest.RecordsPerTopic, got)
			assert.Equal(t, len(b.Records), b.Manifest.Records())
			// The DLQ copies come last.
			n := b.Manifest.RecordsPerTopic[cfg.Topics.Name(TopicPaymentsDLQ)]
			for _, r := range b.Records[len(b.Records)-n:] {
				assert.Equal(t, cfg.Topics.Name(TopicPaymentsDLQ), r.Topic)
			}
		})
	}
}

func TestManifestJSONRoundTrip(t *testing.T) {
	m := mustPlan(t, testConfig()).Manifest
	var buf bytes.Buffer
	require.NoError(t, m.WriteJSON(&buf))
	var back Manifest
	require.NoError(t, json.Unmarshal(buf.Bytes(), &back))
	assert.Equal(t, m.Summary(), back.Summary())
	assert.Equal(t, m.Faults, back.Faults)
	assert.Equal(t, m.Healthy, back.Healthy)
}
