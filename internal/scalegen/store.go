package scalegen

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/weft-sh/weft/internal/chstore"
)

// DB is the database a workload is loaded into, and every statement
// scalegen runs on it, here in one file (the generator's own SQL, rendered
// from orders.sql, events.sql and payload.sql, is run from here too).
//
// It has a connection of its own (chstore.Dial), not weft's store: its
// statements are the generator's — INSERT … SELECT of whole histories into
// weft's events table, the marker tables of a resumable load, ClickHouse's
// system tables — not what weft itself asks of its tables. Only weft's
// schema comes from the store (chstore.Store.Migrate). Every value is bound
// (clickhouse-go's positional ? or {name:Type} parameters); the database's
// name, which cannot be bound, is checked when the DB is opened.
type DB struct {
	conn driver.Conn
	cfg  chstore.Config // weft's migrations run with it (migrate)
}

// Open connects to cfg's server for the database cfg.Database (the
// workload's, Workload.Database, or a test's own), which must be a plain
// identifier. It creates nothing: Load does.
func Open(ctx context.Context, cfg chstore.Config) (*DB, error) {
	if err := chstore.CheckIdentifier(cfg.Database); err != nil {
		return nil, fmt.Errorf("scalegen: database: %w", err)
	}
	conn, err := chstore.Dial(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("scalegen: %w", err)
	}
	return &DB{conn: conn, cfg: cfg}, nil
}

// Close closes the connection.
func (d *DB) Close() error { return d.conn.Close() }

// Database is the database's name.
func (d *DB) Database() string { return d.cfg.Database }

// table is the qualified name of one of the database's tables.
func (d *DB) table(name string) string { return d.cfg.Database + "." + name }

// migrate creates weft's schema (the events table and the views it feeds).
func (d *DB) migrate(ctx context.Context) error {
	s, err := chstore.Open(ctx, d.cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Migrate(ctx)
}

// createMarkers creates the tables a load records its progress in: the
// manifest of the workload and the chunks stored so far.
func (d *DB) createMarkers(ctx context.Context) error {
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS ` + d.table("scale_manifest") + ` (
			orders UInt64, watermark DateTime64(3, 'UTC'), rows UInt64, stuck UInt64, in_flight UInt64,
			cut UInt64, lost UInt64, duplicated UInt64, out_of_order UInt64, dead_lettered UInt64
		) ENGINE = MergeTree ORDER BY tuple()`,
		`CREATE TABLE IF NOT EXISTS ` + d.table("scale_chunks") + ` (
			chunk UInt32, orders UInt64, rows UInt64, took_ms UInt64, loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
		) ENGINE = MergeTree ORDER BY chunk`,
	} {
		if err := d.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("scalegen: create marker table: %w", err)
		}
	}
	return nil
}

// readChunks returns the chunks stored so far and their rows in all.
func (d *DB) readChunks(ctx context.Context) (map[int]bool, int64, error) {
	rows, err := d.conn.Query(ctx, "SELECT chunk, rows FROM "+d.table("scale_chunks"))
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

// recordChunk records that chunk c (orders orders, rows rows) is stored.
func (d *DB) recordChunk(ctx context.Context, c int, orders, rows int64, took time.Duration) error {
	if err := d.conn.Exec(ctx, "INSERT INTO "+d.table("scale_chunks")+" (chunk, orders, rows, took_ms) VALUES (?, ?, ?, ?)",
		uint32(c), uint64(orders), uint64(rows), uint64(took.Milliseconds())); err != nil {
		return fmt.Errorf("scalegen: record chunk %d: %w", c, err)
	}
	return nil
}

// reset empties what a previous load left: events and everything fed from
// them, and the markers.
func (d *DB) reset(ctx context.Context) error {
	for _, t := range []string{"events", "order_state", "findings", "scale_manifest", "scale_chunks"} {
		if err := d.conn.Exec(ctx, "TRUNCATE TABLE IF EXISTS "+d.table(t)); err != nil {
			return fmt.Errorf("scalegen: truncate %s: %w", t, err)
		}
	}
	return nil
}

// count runs a query of one count.
func (d *DB) count(ctx context.Context, q string, args ...any) (int64, error) {
	var n uint64
	if err := d.conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: %w", q, err)
	}
	return int64(n), nil
}

// records is the number of rows of the events table.
func (d *DB) records(ctx context.Context) (int64, error) {
	return d.count(ctx, "SELECT count() FROM "+d.table("events"))
}

// recordsIngestedBy is the number of rows of the events table ingested at
// or before t.
func (d *DB) recordsIngestedBy(ctx context.Context, t time.Time) (int64, error) {
	return d.count(ctx, "SELECT count() FROM "+d.table("events")+" WHERE ingested_at <= ?", t)
}

// nextOffsets returns, per "topic/partition", the offset after the highest
// stored.
func (d *DB) nextOffsets(ctx context.Context) (map[string]int64, error) {
	base := map[string]int64{}
	rows, err := d.conn.Query(ctx, "SELECT topic, partition, max(offset) + 1 FROM "+d.table("events")+" GROUP BY topic, partition")
	if err != nil {
		return nil, fmt.Errorf("read offsets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			topic string
			part  int32
			next  int64
		)
		if err := rows.Scan(&topic, &part, &next); err != nil {
			return nil, err
		}
		base[fmt.Sprintf("%s/%d", topic, part)] = next
	}
	return base, rows.Err()
}

// insertRecords runs a generated INSERT … SELECT (generator.insertSQL).
func (d *DB) insertRecords(ctx context.Context, st stmt) error {
	if err := d.conn.Exec(ctx, st.sql, st.args...); err != nil {
		return fmt.Errorf("insert records: %w", err)
	}
	return nil
}

// diskSpace returns the free space of ClickHouse's fullest disk, and the
// bytes the events table (with its projection) and order_state take with
// the events' row count.
func (d *DB) diskSpace(ctx context.Context) (free, used, events uint64, err error) {
	if err := d.conn.QueryRow(ctx, "SELECT min(free_space) FROM system.disks").Scan(&free); err != nil {
		return 0, 0, 0, fmt.Errorf("free disk space: %w", err)
	}
	if err := d.conn.QueryRow(ctx, `SELECT sum(bytes_on_disk), sumIf(rows, table = 'events') FROM system.parts
		WHERE database = ? AND active AND table IN ('events', 'order_state')`, d.Database()).Scan(&used, &events); err != nil {
		return 0, 0, 0, fmt.Errorf("stored bytes: %w", err)
	}
	return free, used, events, nil
}

// planned sums the per-order query of the whole workload (generator.ordersSQL)
// into its manifest.
func (d *DB) planned(ctx context.Context, orders stmt, watermark time.Time) (Manifest, error) {
	m := Manifest{Watermark: watermark}
	var n, rows, stuck, inFlight, cut, lost, dup, ooo, dlq uint64
	err := d.conn.QueryRow(ctx, `SELECT count(), sum(n_records), countIf(stuck), countIf(in_flight), countIf(cut),
       countIf(lost > 0), countIf(dup > 0), countIf(fault = 3), countIf(arrayExists(r -> r.2 = 2, records))
FROM (`+orders.sql+`) SETTINGS max_execution_time = 0, max_expanded_ast_elements = 10000000`, orders.args...).
		Scan(&n, &rows, &stuck, &inFlight, &cut, &lost, &dup, &ooo, &dlq)
	if err != nil {
		return m, fmt.Errorf("scalegen: manifest: %w", err)
	}
	m.Orders, m.Rows, m.Stuck, m.InFlight, m.Cut = int64(n), int64(rows), int64(stuck), int64(inFlight), int64(cut)
	m.Lost, m.Duplicated, m.OutOfOrder, m.DeadLettered = int64(lost), int64(dup), int64(ooo), int64(dlq)
	return m, nil
}

// writeManifest stores the manifest of the workload being loaded.
func (d *DB) writeManifest(ctx context.Context, m Manifest) error {
	err := d.conn.Exec(ctx, "INSERT INTO "+d.table("scale_manifest")+
		" (orders, watermark, rows, stuck, in_flight, cut, lost, duplicated, out_of_order, dead_lettered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		uint64(m.Orders), m.Watermark, uint64(m.Rows), uint64(m.Stuck), uint64(m.InFlight), uint64(m.Cut),
		uint64(m.Lost), uint64(m.Duplicated), uint64(m.OutOfOrder), uint64(m.DeadLettered))
	if err != nil {
		return fmt.Errorf("scalegen: write manifest: %w", err)
	}
	return nil
}

// readManifest returns the stored manifest; ok is false when there is none.
func (d *DB) readManifest(ctx context.Context) (Manifest, bool, error) {
	rows, err := d.conn.Query(ctx, "SELECT orders, watermark, rows, stuck, in_flight, cut, lost, duplicated, out_of_order, dead_lettered FROM "+
		d.table("scale_manifest")+" LIMIT 1")
	if err != nil {
		return Manifest{}, false, fmt.Errorf("scalegen: read manifest: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return Manifest{}, false, rows.Err()
	}
	var m Manifest
	var orders, n, stuck, inFlight, cut, lost, dup, ooo, dlq uint64
	if err := rows.Scan(&orders, &m.Watermark, &n, &stuck, &inFlight, &cut, &lost, &dup, &ooo, &dlq); err != nil {
		return Manifest{}, false, err
	}
	m.Orders, m.Rows, m.Stuck, m.InFlight, m.Cut = int64(orders), int64(n), int64(stuck), int64(inFlight), int64(cut)
	m.Lost, m.Duplicated, m.OutOfOrder, m.DeadLettered = int64(lost), int64(dup), int64(ooo), int64(dlq)
	m.Watermark = m.Watermark.UTC()
	return m, true, nil
}

// samples runs the per-order query of some orders (generator.ordersSQL).
func (d *DB) samples(ctx context.Context, orders stmt) ([]SampleOrder, error) {
	rows, err := d.conn.Query(ctx, "SELECT toUInt64(i), order_id, toUInt64(n_records), stuck, in_flight, toUInt8(fault) FROM ("+
		orders.sql+") SETTINGS max_expanded_ast_elements = 10000000", orders.args...)
	if err != nil {
		return nil, fmt.Errorf("scalegen: sample: %w", err)
	}
	defer rows.Close()
	var out []SampleOrder
	for rows.Next() {
		var (
			s        SampleOrder
			i        uint64
			n        uint64
			fault    uint8
			stuck, f bool
		)
		if err := rows.Scan(&i, &s.OrderID, &n, &stuck, &f, &fault); err != nil {
			return nil, err
		}
		s.Index, s.Records, s.Stuck, s.InFlight, s.Fault = int64(i), int(n), stuck, f, int(fault)
		out = append(out, s)
	}
	return out, rows.Err()
}

// insertTick stores one clock record (Tick) with event time at, ingested now.
func (d *DB) insertTick(ctx context.Context, at, now time.Time) error {
	return d.conn.Exec(ctx, "INSERT INTO "+d.table("events")+` (topic, partition, offset, record_key, record_time,
		event_id, event_type, service, order_id, event_time, format, payload_hash, ingested_at)
		VALUES (?, 0, ?, ?, ?, ?, ?, 'scale', ?, ?, 'json', ?, ?)`,
		clockTopic, now.UnixMilli(), clockOrder, now, fmt.Sprintf("tick-%d", now.UnixNano()), clockType, clockOrder,
		at, fmt.Sprintf("%064d", 0), now)
}

// What the scale benchmark reports about the server besides its timings.

// RunningMerges is the number of background merges running in the database.
func (d *DB) RunningMerges(ctx context.Context) (int, error) {
	n, err := d.count(ctx, "SELECT count() FROM system.merges WHERE database = ?", d.Database())
	return int(n), err
}

// TableSize is what one table of the database takes.
type TableSize struct {
	Table                                         string
	Rows, Parts                                   uint64
	CompressedBytes, UncompressedBytes, DiskBytes uint64
}

// TableSizes returns the database's tables, largest on disk first.
func (d *DB) TableSizes(ctx context.Context) ([]TableSize, error) {
	rows, err := d.conn.Query(ctx, `
SELECT table, sum(rows), count(), sum(data_compressed_bytes), sum(data_uncompressed_bytes), sum(bytes_on_disk)
FROM system.parts WHERE database = ? AND active GROUP BY table ORDER BY sum(bytes_on_disk) DESC`, d.Database())
	if err != nil {
		return nil, fmt.Errorf("table sizes: %w", err)
	}
	defer rows.Close()
	var out []TableSize
	for rows.Next() {
		var s TableSize
		if err := rows.Scan(&s.Table, &s.Rows, &s.Parts, &s.CompressedBytes, &s.UncompressedBytes, &s.DiskBytes); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// ProjectionBytes is what the projections of the database's tables take on
// disk (part of their TableSize.DiskBytes).
func (d *DB) ProjectionBytes(ctx context.Context) (uint64, error) {
	var n uint64
	err := d.conn.QueryRow(ctx, "SELECT sum(bytes_on_disk) FROM system.projection_parts WHERE database = ? AND active",
		d.Database()).Scan(&n)
	return n, err
}

// ServerMemory is the memory ClickHouse's allocator tracks now
// (system.metrics MemoryTracking): the embedded engine has no
// system.asynchronous_metrics, so no resident set.
func (d *DB) ServerMemory(ctx context.Context) (int64, error) {
	var v int64
	if err := d.conn.QueryRow(ctx, "SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'").Scan(&v); err != nil {
		return 0, err
	}
	return v, nil
}
