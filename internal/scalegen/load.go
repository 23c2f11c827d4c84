package scalegen

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/weft-sh/weft/internal/chstore"
)

// LoadResult says how the database came to hold the workload.
type LoadResult struct {
	// Reused is true when the database already held the whole workload.
	Reused bool
	// Resumed counts the chunks a previous, interrupted load had stored.
	Resumed int
	// Took is the time spent generating and inserting (zero when reused).
	Took time.Duration
	// Manifest is what the workload holds.
	Manifest Manifest
}

// Options tunes Load.
type Options struct {
	// Progress receives one line per chunk; nil discards them.
	Progress io.Writer
	// DiskReserve is the free space a load leaves on ClickHouse's disk: a
	// chunk that would leave less (at the bytes per row stored so far) is
	// not started, and Load fails saying so. Default 15 GiB.
	DiskReserve uint64
	// Now is the wall clock, which places the watermark of a new load (the
	// minute before Now). Default time.Now.
	Now func() time.Time
}

// Load makes store's database hold exactly the workload: reused when a
// previous load completed (same row count), resumed after the chunks an
// interrupted one stored, else generated from nothing (anything else there
// is dropped first). store must be bound to the workload's database
// (Workload.Database, or a test's own).
func Load(ctx context.Context, store *chstore.Store, w Workload, o Options) (LoadResult, error) {
	if err := w.Validate(); err != nil {
		return LoadResult{}, err
	}
	w = w.withDefaults()
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.DiskReserve == 0 {
		o.DiskReserve = 15 << 30
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_execution_time": 0}))
	if err := store.Migrate(ctx); err != nil {
		return LoadResult{}, err
	}
	if err := createMarkers(ctx, store); err != nil {
		return LoadResult{}, err
	}
	m, ok, err := readManifest(ctx, store)
	if err != nil {
		return LoadResult{}, err
	}
	if ok && m.Orders != int64(w.Orders) {
		return LoadResult{}, fmt.Errorf("scalegen: database %s holds a workload of %d orders, not %d", store.Database(), m.Orders, w.Orders)
	}
	chunks, stored, err := readChunks(ctx, store)
	if err != nil {
		return LoadResult{}, err
	}
	res := LoadResult{Manifest: m}
	if ok && len(chunks) == numChunks(w) {
		got, err := m.generatedRows(ctx, store)
		if err != nil {
			return res, err
		}
		if got == m.Rows {
			res.Reused = true
			return res, nil
		}
		fmt.Fprintf(o.Progress, "database %s holds %d generated rows, not %d: loading again\n", store.Database(), got, m.Rows)
	} else if ok {
		n, err := count(ctx, store, "SELECT count() FROM "+store.Table("events"))
		if err == nil && n == stored {
			res.Resumed = len(chunks)
		}
	}
	if res.Resumed == 0 && (ok || len(chunks) > 0 || stored > 0) {
		if err := reset(ctx, store); err != nil {
			return res, err
		}
		chunks, ok = map[int]bool{}, false
	}
	if !ok {
		watermark := o.Now().UTC().Truncate(time.Minute).Add(-time.Minute)
		g, err := newGenerator(w, watermark)
		if err != nil {
			return res, err
		}
		start := time.Now()
		if m, err = g.manifest(ctx, store); err != nil {
			return res, err
		}
		if err := writeManifest(ctx, store, m); err != nil {
			return res, err
		}
		fmt.Fprintf(o.Progress, "workload: %d orders, %d records (%d stuck, %d in flight), watermark %s; manifest took %s\n",
			m.Orders, m.Rows, m.Stuck, m.InFlight, m.Watermark.Format(time.RFC3339), time.Since(start).Round(time.Millisecond))
	}
	res.Manifest = m
	g, err := newGenerator(w, m.Watermark)
	if err != nil {
		return res, err
	}
	start := time.Now()
	for c := range numChunks(w) {
		if chunks[c] {
			continue
		}
		from := int64(c) * int64(w.ChunkOrders)
		n := min(int64(w.ChunkOrders), int64(w.Orders)-from)
		if err := checkDisk(ctx, store, n*m.Rows/m.Orders, o.DiskReserve); err != nil {
			return res, fmt.Errorf("scalegen: chunk %d (load resumes there): %w", c, err)
		}
		t0 := time.Now()
		rows, err := g.insert(ctx, store, g.mainRange(from, n), false)
		if err != nil {
			return res, fmt.Errorf("scalegen: chunk %d (orders %d…%d): %w", c, from, from+n-1, err)
		}
		took := time.Since(t0)
		if err := store.Conn().Exec(ctx, "INSERT INTO "+store.Table("scale_chunks")+" (chunk, orders, rows, took_ms) VALUES (?, ?, ?, ?)",
			uint32(c), uint64(n), uint64(rows), uint64(took.Milliseconds())); err != nil {
			return res, fmt.Errorf("scalegen: record chunk %d: %w", c, err)
		}
		fmt.Fprintf(o.Progress, "chunk %d/%d: %d orders, %d records in %s (%.0f records/s)\n",
			c+1, numChunks(w), n, rows, took.Round(time.Millisecond), float64(rows)/took.Seconds())
	}
	res.Took = time.Since(start)
	got, err := count(ctx, store, "SELECT count() FROM "+store.Table("events"))
	if err != nil {
		return res, err
	}
	if got != m.Rows {
		return res, fmt.Errorf("scalegen: loaded %d records, the workload has %d", got, m.Rows)
	}
	return res, nil
}

func numChunks(w Workload) int { return (w.Orders + w.ChunkOrders - 1) / w.ChunkOrders }

// insert generates r's records into the events table, offsets continuing
// after those stored, and returns how many rows it added.
func (g *generator) insert(ctx context.Context, store *chstore.Store, r orderRange, ingestNow bool) (int64, error) {
	before, err := count(ctx, store, "SELECT count() FROM "+store.Table("events"))
	if err != nil {
		return 0, err
	}
	base := map[string]int64{}
	rows, err := store.Conn().Query(ctx, "SELECT topic, partition, max(offset) + 1 FROM "+store.Table("events")+" GROUP BY topic, partition")
	if err != nil {
		return 0, fmt.Errorf("read offsets: %w", err)
	}
	for rows.Next() {
		var (
			topic string
			part  int32
			next  int64
		)
		if err := rows.Scan(&topic, &part, &next); err != nil {
			rows.Close()
			return 0, err
		}
		base[fmt.Sprintf("%s/%d", topic, part)] = next
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	q, err := g.insertSQL(store.Database(), r, base, ingestNow)
	if err != nil {
		return 0, err
	}
	if err := store.Conn().Exec(ctx, q); err != nil {
		return 0, fmt.Errorf("insert records: %w", err)
	}
	after, err := count(ctx, store, "SELECT count() FROM "+store.Table("events"))
	return after - before, err
}

func count(ctx context.Context, store *chstore.Store, q string, args ...any) (int64, error) {
	var n uint64
	if err := store.Conn().QueryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: %w", q, err)
	}
	return int64(n), nil
}

func createMarkers(ctx context.Context, store *chstore.Store) error {
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS ` + store.Table("scale_manifest") + ` (
			orders UInt64, watermark DateTime64(3, 'UTC'), rows UInt64, stuck UInt64, in_flight UInt64,
			cut UInt64, lost UInt64, duplicated UInt64, out_of_order UInt64, dead_lettered UInt64
		) ENGINE = MergeTree ORDER BY tuple()`,
		`CREATE TABLE IF NOT EXISTS ` + store.Table("scale_chunks") + ` (
			chunk UInt32, orders UInt64, rows UInt64, took_ms UInt64, loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
		) ENGINE = MergeTree ORDER BY chunk`,
	} {
		if err := store.Conn().Exec(ctx, q); err != nil {
			return fmt.Errorf("scalegen: create marker table: %w", err)
		}
	}
	return nil
}

func readChunks(ctx context.Context, store *chstore.Store) (map[int]bool, int64, error) {
	rows, err := store.Conn().Query(ctx, "SELECT chunk, rows FROM "+store.Table("scale_chunks"))
	if err != nil {
		return nil, 0, fmt.Errorf("scalegen: read chunks: %w", err)
	}
	defer rows.Close()
	out := map[int]bool{}
	var total int64
	for rows.Next() {
		var (
			c uint32
			n uint64
		)
		if err := rows.Scan(&c, &n); err != nil {
			return nil, 0, err
		}
		out[int(c)] = true
		total += int64(n)
	}
	return out, total, rows.Err()
}

// reset empties what a previous load left: events and everything fed from
// them, and the markers.
func reset(ctx context.Context, store *chstore.Store) error {
	for _, t := range []string{"events", "order_state", "findings", "scale_manifest", "scale_chunks"} {
		if err := store.Conn().Exec(ctx, "TRUNCATE TABLE IF EXISTS "+store.Table(t)); err != nil {
			return fmt.Errorf("scalegen: truncate %s: %w", t, err)
		}
	}
	return nil
}

// checkDisk fails when storing rows more rows (at the bytes per row the
// events table, with its projection, and order_state take so far; 1 KiB
// before any) would leave less than reserve free on ClickHouse's disk.
func checkDisk(ctx context.Context, store *chstore.Store, rows int64, reserve uint64) error {
	var free, used, stored uint64
	if err := store.Conn().QueryRow(ctx, "SELECT min(free_space) FROM system.disks").Scan(&free); err != nil {
		return fmt.Errorf("free disk space: %w", err)
	}
	if err := store.Conn().QueryRow(ctx, `SELECT sum(bytes_on_disk), sumIf(rows, table = 'events') FROM system.parts
		WHERE database = ? AND active AND table IN ('events', 'order_state')`, store.Database()).Scan(&used, &stored); err != nil {
		return fmt.Errorf("stored bytes: %w", err)
	}
	perRow := uint64(1024)
	if stored > 100_000 {
		perRow = used / stored
	}
	need := uint64(rows) * perRow
	if free < need+reserve {
		return fmt.Errorf("not enough disk: %d more records need about %.1f GiB (%d bytes each), %.1f GiB is free and %.1f GiB must stay free",
			rows, float64(need)/(1<<30), perRow, float64(free)/(1<<30), float64(reserve)/(1<<30))
	}
	return nil
}
