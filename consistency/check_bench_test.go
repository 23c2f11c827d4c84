package consistency

import (
	"testing"
	"time"
)

// BenchmarkCheckOrders is the detector's CPU per order without ClickHouse:
// the chains of 2,000 demo orders (the faults included) put in causal
// order, stitched, their progress computed and every check run, as a pass
// does after reading them.
//
//	go test -run '^$' -bench CheckOrders -benchmem ./consistency/
func BenchmarkCheckOrders(b *testing.B) {
	chains, _ := planOrders(b, 1, 2000, false)
	ws := Builtin()
	win := Windows{Grace: 2 * time.Minute, Convergence: 5 * time.Minute}
	now := time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)
	ids := make([]string, 0, len(chains))
	events := 0
	for id, evs := range chains {
		ids = append(ids, id)
		events += len(evs)
	}
	ranks := stepRanks(ws)
	buf := make([]ChainEvent, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := ids[i%len(ids)]
		evs := stitch(ranks, causalOrder(append(buf[:0], chains[id]...)))
		_ = progressOf(ws, id, evs)
		_ = CheckOrder(ws, evs, now, win)
	}
	b.ReportMetric(float64(events)/float64(len(ids)), "events/order")
}
