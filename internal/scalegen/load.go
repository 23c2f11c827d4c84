package scalegen

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
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

// Load makes db hold exactly the workload: reused when a previous load
// completed (same row count), resumed after the chunks an interrupted one
// stored, else generated from nothing (anything else there is dropped
// first). db must be the workload's database (Workload.Database, or a
// test's own).
func Load(ctx context.Context, db *DB, w Workload, o Options) (LoadResult, error) {
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
	if err := db.migrate(ctx); err != nil {
		return LoadResult{}, err
	}
	if err := db.createMarkers(ctx); err != nil {
		return LoadResult{}, err
	}
	m, ok, err := db.readManifest(ctx)
	if err != nil {
		return LoadResult{}, err
	}
	if ok && m.Orders != int64(w.Orders) {
		return LoadResult{}, fmt.Errorf("scalegen: database %s holds a workload of %d orders, not %d", db.Database(), m.Orders, w.Orders)
	}
	chunks, stored, err := db.readChunks(ctx)
	if err != nil {
		return LoadResult{}, err
	}
	res := LoadResult{Manifest: m}
	if ok && len(chunks) == numChunks(w) {
		got, err := m.generatedRows(ctx, db)
		if err != nil {
			return res, err
		}
		if got == m.Rows {
			res.Reused = true
			return res, nil
		}
		fmt.Fprintf(o.Progress, "database %s holds %d generated rows, not %d: loading again\n", db.Database(), got, m.Rows)
	} else if ok {
		n, err := db.records(ctx)
		if err == nil && n == stored {
			res.Resumed = len(chunks)
		}
	}
	if res.Resumed == 0 && (ok || len(chunks) > 0 || stored > 0) {
		if err := db.reset(ctx); err != nil {
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
		if m, err = g.manifest(ctx, db); err != nil {
			return res, err
		}
		if err := db.writeManifest(ctx, m); err != nil {
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
		if err := checkDisk(ctx, db, n*m.Rows/m.Orders, o.DiskReserve); err != nil {
			return res, fmt.Errorf("scalegen: chunk %d (load resumes there): %w", c, err)
		}
		t0 := time.Now()
		rows, err := g.insert(ctx, db, g.mainRange(from, n), false)
		if err != nil {
			return res, fmt.Errorf("scalegen: chunk %d (orders %d…%d): %w", c, from, from+n-1, err)
		}
		took := time.Since(t0)
		if err := db.recordChunk(ctx, c, n, rows, took); err != nil {
			return res, err
		}
		fmt.Fprintf(o.Progress, "chunk %d/%d: %d orders, %d records in %s (%.0f records/s)\n",
			c+1, numChunks(w), n, rows, took.Round(time.Millisecond), float64(rows)/took.Seconds())
	}
	res.Took = time.Since(start)
	got, err := db.records(ctx)
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
func (g *generator) insert(ctx context.Context, db *DB, r orderRange, ingestNow bool) (int64, error) {
	before, err := db.records(ctx)
	if err != nil {
		return 0, err
	}
	base, err := db.nextOffsets(ctx)
	if err != nil {
		return 0, err
	}
	st, err := g.insertSQL(db.Database(), r, base, ingestNow)
	if err != nil {
		return 0, err
	}
	if err := db.insertRecords(ctx, st); err != nil {
		return 0, err
	}
	after, err := db.records(ctx)
	return after - before, err
}

// checkDisk fails when storing rows more rows (at the bytes per row the
// events table, with its projection, and order_state take so far; 1 KiB
// before any) would leave less than reserve free on ClickHouse's disk.
func checkDisk(ctx context.Context, db *DB, rows int64, reserve uint64) error {
	free, used, stored, err := db.diskSpace(ctx)
	if err != nil {
		return err
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
