package chstore_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/weft-sh/weft/internal/benchkit"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// BenchmarkInsertEvents stores batches of 10,000 decoded `make bench`
// workload events with InsertEvents into the real ClickHouse, sent as blocks
// of 10,000 (one block), 2,000 (the default) and 1,000 rows, and reports the
// client's CPU per row beside the time per batch, and the heap the insert
// keeps between batches (its columns and ch-go's buffers, after a GC), and
// the server's CPU per row for the inserts themselves (not the merges that
// follow):
//
//	scripts/with-servers.sh go test -run '^$' -bench InsertEvents -benchtime 20x ./internal/chstore/
func BenchmarkInsertEvents(b *testing.B) {
	for _, rows := range []int{10_000, 2_000, 1_000} {
		b.Run(fmt.Sprintf("block=%d", rows), func(b *testing.B) { benchInsertEvents(b, rows) })
	}
}

func benchInsertEvents(b *testing.B, blockRows int) {
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	store := testenv.Store(b) // a connection of its own: its buffers are counted below
	chstore.SetInsertBlocks(store, blockRows, nil)
	w := benchkit.DefaultWorkload()
	w.Now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	pool, _, err := benchkit.DecodePool(w, 10_000)
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]event.Event, len(pool))
	ctx := context.Background()
	var cpu, server time.Duration
	chstore.ServerCPU(store, &server)
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
	b.ReportMetric(float64(server.Microseconds())/float64(b.N*len(batch)), "server-µs/row")
	b.StopTimer()
	clear(batch)
	pool = nil
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "kept-MB")
	runtime.KeepAlive(store)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkInsertAuditLeaves stores batches of 10,000 audit leaves shaped
// like the tap's (a 138-byte record leaf, its hash, a salt, an order id,
// a state on the last) with InsertAuditLeaves, and reports the client's CPU
// per row beside the time per batch and the server's CPU per row for the
// inserts: what the audit trail adds to each batch's inserts.
func BenchmarkInsertAuditLeaves(b *testing.B) {
	store := testenv.Store(b)
	rows := make([]chstore.AuditLeafRow, 10_000)
	for i := range rows {
		leaf := make([]byte, 138)
		_, _ = rand.Read(leaf)
		salt := make([]byte, 32)
		_, _ = rand.Read(salt)
		rows[i] = chstore.AuditLeafRow{Topic: "orders", Partition: int32(i % 12), Kind: "record",
			OrderID: fmt.Sprintf("ORD-%08d", i/4), Leaf: leaf, LeafHash: sha256.Sum256(leaf), Salt: salt}
	}
	rows[len(rows)-1].State = make([]byte, 600)
	ctx := context.Background()
	var cpu, server time.Duration
	chstore.ServerCPU(store, &server)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range rows {
			rows[j].LeafIndex = uint64(i*len(rows)+j) / 12
			rows[j].Offset = int64(rows[j].LeafIndex)
		}
		before := cpuTime()
		b.StartTimer()
		if err := store.InsertAuditLeaves(ctx, rows, time.Now(), fmt.Sprintf("bench-%d", i)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += cpuTime() - before
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*len(rows)), "client-µs/row")
	b.ReportMetric(float64(server.Microseconds())/float64(b.N*len(rows)), "server-µs/row")
}
