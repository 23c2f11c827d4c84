package consistency

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/demo"
)

// planOrders builds a demo history for seed, decodes every record the way
// the tap does (offsets assigned in produce order, per topic), optionally
// shuffles and redelivers records, and returns each order's events.
func planOrders(t testing.TB, seed int64, orders int, shuffle bool) (map[string][]ChainEvent, *demo.Manifest) {
	t.Helper()
	cfg := demo.DefaultConfig()
	cfg.Seed, cfg.Orders = seed, orders
	cfg.Now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	b, err := demo.Plan(cfg)
	require.NoError(t, err)
	dec, err := collector.NewDecoder(collector.Default())
	require.NoError(t, err)
	recs := b.Records
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	if shuffle {
		recs = append(recs[:0:0], recs...)
		r.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
		// Redeliver a tenth of the records, byte for byte.
		for i := 0; i < len(b.Records)/10; i++ {
			recs = append(recs, recs[r.IntN(len(recs))])
		}
	}
	offsets := map[string]int64{}
	out := map[string][]ChainEvent{}
	for _, rec := range recs {
		rc := *rec
		rc.Offset = offsets[rc.Topic]
		offsets[rc.Topic]++
		e, err := dec.Decode(&rc)
		require.NoError(t, err, "demo records all decode")
		out[e.OrderID] = append(out[e.OrderID], ChainEvent{
			Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, EventID: e.EventID, Type: e.Type, Service: e.Service,
			EventTime: e.EventTime, CausationID: e.CausationID, TraceID: e.TraceID, SpanID: e.SpanID,
			ParentSpanID: e.ParentSpanID, VersionVector: e.VersionVector, IdempotencyKey: e.IdempotencyKey, PayloadHash: e.PayloadHash,
		})
	}
	return out, b.Manifest
}

// TestPropertyFaultsRaiseExactlyTheirFinding: over random seeds, with records
// shuffled and redelivered, every order raises exactly the finding its
// injected fault calls for (demo.ExpectedFinding) and nothing else; correct
// workflows raise nothing. Stuck is a query over all orders, tested with
// ClickHouse; here it must be the only thing a stuck order raises.
func TestPropertyFaultsRaiseExactlyTheirFinding(t *testing.T) {
	seeds := []int64{1, 2, 3, 42, 20261124}
	if testing.Short() {
		seeds = seeds[:2]
	}
	ws := Builtin()
	win := Windows{Grace: 2 * time.Minute, Convergence: 5 * time.Minute}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).Add(time.Hour)
	for _, seed := range seeds {
		for _, shuffle := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/shuffled=%v", seed, shuffle), func(t *testing.T) {
				orders, m := planOrders(t, seed, 300, shuffle)
				want := map[string]string{}
				for _, id := range m.Healthy {
					want[id] = ""
				}
				for _, f := range m.Faults {
					k := demo.ExpectedFinding(f.Kind)
					if k == KindStuck {
						k = ""
					}
					want[f.OrderID] = k
				}
				require.Len(t, want, len(orders), "every order is in the manifest")
				var wrong []string
				for id, evs := range orders {
					got := CheckOrder(ws, stitch(stepRanks(ws), causalOrder(evs)), now, win)
					var kinds []string
					for _, r := range got {
						kinds = append(kinds, r.Kind)
					}
					sort.Strings(kinds)
					exp := []string(nil)
					if want[id] != "" {
						exp = []string{want[id]}
					}
					if !assert.ObjectsAreEqual(exp, kinds) {
						wrong = append(wrong, fmt.Sprintf("%s (fault %s): want %v, got %v", id, faultOf(m, id), exp, kinds))
					}
				}
				sort.Strings(wrong)
				assert.Empty(t, wrong)
			})
		}
	}
}

func faultOf(m *demo.Manifest, id string) string {
	for _, f := range m.Faults {
		if f.OrderID == id {
			return string(f.Kind)
		}
	}
	return "none"
}
