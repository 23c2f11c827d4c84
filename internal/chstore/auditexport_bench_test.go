package chstore_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// BenchmarkAuditOrderLeaves: how much of audit_leaves finding one order's
// leaves reads (`weft audit export`), with idx_order_id (migration 013)
// and with skip indexes off (what a scan of the order_id column costs).
// It loads synthetic leaves into a fresh database: 3 topics of 12
// partitions, orders of 10 events keyed to one partition per topic, an
// order's events WEFT_AUDIT_SPREAD leaves apart (default 50,000: minutes
// to hours of traffic), so each lands in its own granule; the random
// parts of a leaf (its commitments, hash and salt) are random bytes. It
// prints p50 time, rows and bytes read per lookup and runs once whatever
// b.N is (use -benchtime 1x). Knobs, from the environment:
//
//	WEFT_AUDIT_LEAVES   leaves loaded (default 5000000)
//	WEFT_AUDIT_SPREAD   leaves between two events of one order (default 50000)
//	WEFT_AUDIT_RUNS     lookups per variant (default 20)
func BenchmarkAuditOrderLeaves(b *testing.B) {
	ctx := context.Background()
	n := testenv.EnvInt(b, "WEFT_AUDIT_LEAVES", 5_000_000)
	spread := testenv.EnvInt(b, "WEFT_AUDIT_SPREAD", 50_000)
	runs := testenv.EnvInt(b, "WEFT_AUDIT_RUNS", 20)
	store := testenv.Store(b)
	conn := testenv.Conn(b)
	out := os.Stdout
	// order of leaf n: within each block of 10*spread leaves, spread
	// orders of 10 events each, spread leaves apart.
	const chunk = 1_000_000
	start := time.Now()
	for from := 0; from < n; from += chunk {
		q := fmt.Sprintf(`INSERT INTO %s (topic, partition, leaf_index, kind, offset, end, order_id, leaf, leaf_hash, salt, state, stored_at)
SELECT ['orders', 'payments', 'fulfillment'][j %% 3 + 1], toInt32(cityHash64(oid) %% 12), number, 'record', toInt64(number), 0, oid,
       concat(unhex('0101'), 'orders', randomString(28), randomString(96)), randomFixedString(32), randomString(32), '', now64(3)
FROM (SELECT number, intDiv(number, %[2]d) %% 10 AS j,
             concat('ord-', toString(intDiv(number, 10 * %[2]d) * %[2]d + number %% %[2]d)) AS oid
      FROM numbers(%[3]d, %[4]d))`, store.Table("audit_leaves"), spread, from, min(chunk, n-from))
		if err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	if err := conn.Exec(ctx, "OPTIMIZE TABLE "+store.Table("audit_leaves")+" FINAL"); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(out, "\n== audit_leaves order lookup: %d leaves loaded in %s\n", n, time.Since(start).Round(time.Second))
	var parts, onDisk, column, index uint64
	db := store.Table("x")[:len(store.Table("x"))-2]
	row := conn.QueryRow(ctx, `SELECT count(), sum(bytes_on_disk) FROM system.parts WHERE database = ? AND table = 'audit_leaves' AND active`, db)
	if err := row.Scan(&parts, &onDisk); err != nil {
		b.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT data_compressed_bytes FROM system.columns WHERE database = ? AND table = 'audit_leaves' AND name = 'order_id'`, db).Scan(&column); err != nil {
		b.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT data_compressed_bytes FROM system.data_skipping_indices WHERE database = ? AND table = 'audit_leaves' AND name = 'idx_order_id'`, db).Scan(&index); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(out, "table: %d parts, %.1f MiB on disk; order_id column %.1f MiB, idx_order_id %.1f MiB compressed\n",
		parts, mib(onDisk), mib(column), mib(index))

	blocks := max(1, n/(10*spread))
	for _, v := range []struct {
		name     string
		settings clickhouse.Settings
	}{{"idx_order_id", nil}, {"no skip index", clickhouse.Settings{"use_skip_indexes": 0}}} {
		var took []time.Duration
		var rows, bytes atomic.Uint64
		for i := range runs {
			order := fmt.Sprintf("ord-%d", (i*7919)%blocks*spread+(i*104729)%spread)
			qctx := clickhouse.Context(ctx, clickhouse.WithSettings(v.settings), clickhouse.WithProgress(func(p *clickhouse.Progress) {
				rows.Add(p.Rows)
				bytes.Add(p.Bytes)
			}))
			found := 0
			t0 := time.Now()
			if err := store.AuditOrderLeaves(qctx, order, func(chstore.AuditLeafRow) error { found++; return nil }); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(t0))
			if want := min(10, n/spread); found != want && n >= 10*spread {
				b.Fatalf("order %s: %d leaves, want %d", order, found, want)
			}
		}
		p50, p95 := testenv.Percentiles(took)
		fmt.Fprintf(out, "%-14s p50 %8s  p95 %8s  read %9d rows %8.2f MiB per lookup\n", v.name, p50.Round(100*time.Microsecond),
			p95.Round(100*time.Microsecond), rows.Load()/uint64(runs), mib(bytes.Load())/float64(runs))
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
