package chstore_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/weft-sh/weft/internal/benchkit"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// BenchmarkInsertEvents stores batches of 10,000 decoded `make bench`
// workload events with InsertEvents into the real ClickHouse, and reports
// the client's CPU per row beside the time per batch:
//
//	scripts/with-servers.sh go test -run '^$' -bench InsertEvents -benchtime 20x ./internal/chstore/
func BenchmarkInsertEvents(b *testing.B) {
	store := testenv.Store(b)
	w := benchkit.DefaultWorkload()
	w.Now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	pool, _, err := benchkit.DecodePool(w, 10_000)
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]event.Event, len(pool))
	ctx := context.Background()
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		copy(batch, pool)
		for j := range batch {
			batch[j].Offset = int64(i*len(batch) + j)
		}
		before := cpuTime()
		b.StartTimer()
		if err := store.InsertEvents(ctx, batch, time.Now(), ""); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += cpuTime() - before
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*len(batch)), "client-µs/row")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
