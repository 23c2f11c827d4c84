package scalegen

import (
	"context"
	"fmt"
	"time"

	"github.com/weft-sh/weft/internal/chstore"
)

// Manifest is what a loaded workload holds, computed by the same SQL that
// generated it.
type Manifest struct {
	Orders int64
	// Watermark is the newest event time: the present of the history.
	Watermark time.Time
	// Rows is the number of records (rows of the events table).
	Rows int64
	// Stuck orders are past their step's SLA at the watermark.
	Stuck int64
	// InFlight orders are unfinished but within their SLA at the watermark.
	InFlight int64
	// Cut orders stop after one of their events (stuck, or in flight and
	// to become stuck).
	Cut int64
	// Orders with a fault: a lost event, a redelivered record, records
	// produced out of order; DeadLettered orders failed payment and have a
	// copy of PaymentFailed on the dead-letter topic.
	Lost, Duplicated, OutOfOrder, DeadLettered int64
}

// ingestSlack bounds how long after the watermark a generated record may be
// ingested (produce lag plus ingest lag, about 3 s): rows ingested later
// were added afterwards (by the benchmark).
const ingestSlack = 10 * time.Second

func (g *generator) manifest(ctx context.Context, store *chstore.Store) (Manifest, error) {
	q, err := g.ordersSQL(g.mainRange(0, int64(g.w.Orders)))
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{Watermark: g.watermark}
	var orders, rows, stuck, inFlight, cut, lost, dup, ooo, dlq uint64
	err = store.Conn().QueryRow(ctx, `SELECT count(), sum(n_records), countIf(stuck), countIf(in_flight), countIf(cut),
       countIf(lost > 0), countIf(dup > 0), countIf(fault = 3), countIf(arrayExists(r -> r.2 = 2, records))
FROM (`+q+`) SETTINGS max_execution_time = 0, max_expanded_ast_elements = 10000000`).
		Scan(&orders, &rows, &stuck, &inFlight, &cut, &lost, &dup, &ooo, &dlq)
	if err != nil {
		return m, fmt.Errorf("scalegen: manifest: %w", err)
	}
	m.Orders, m.Rows, m.Stuck, m.InFlight, m.Cut = int64(orders), int64(rows), int64(stuck), int64(inFlight), int64(cut)
	m.Lost, m.Duplicated, m.OutOfOrder, m.DeadLettered = int64(lost), int64(dup), int64(ooo), int64(dlq)
	return m, nil
}

func writeManifest(ctx context.Context, store *chstore.Store, m Manifest) error {
	err := store.Conn().Exec(ctx, "INSERT INTO "+store.Table("scale_manifest")+
		" (orders, watermark, rows, stuck, in_flight, cut, lost, duplicated, out_of_order, dead_lettered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		uint64(m.Orders), m.Watermark, uint64(m.Rows), uint64(m.Stuck), uint64(m.InFlight), uint64(m.Cut),
		uint64(m.Lost), uint64(m.Duplicated), uint64(m.OutOfOrder), uint64(m.DeadLettered))
	if err != nil {
		return fmt.Errorf("scalegen: write manifest: %w", err)
	}
	return nil
}

// ReadManifest returns the manifest of the workload loaded in store's
// database; ok is false when none was loaded.
func ReadManifest(ctx context.Context, store *chstore.Store) (m Manifest, ok bool, err error) {
	return readManifest(ctx, store)
}

func readManifest(ctx context.Context, store *chstore.Store) (Manifest, bool, error) {
	rows, err := store.Conn().Query(ctx, "SELECT orders, watermark, rows, stuck, in_flight, cut, lost, duplicated, out_of_order, dead_lettered FROM "+
		store.Table("scale_manifest")+" LIMIT 1")
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

// generatedRows counts the rows the generator wrote, leaving out what was
// ingested later (the benchmark's clock ticks and batches).
func (m Manifest) generatedRows(ctx context.Context, store *chstore.Store) (int64, error) {
	return count(ctx, store, "SELECT count() FROM "+store.Table("events")+" WHERE ingested_at <= ?", m.Watermark.Add(ingestSlack))
}

// SampleOrder is one generated order, as the generator planned it.
type SampleOrder struct {
	Index   int64
	OrderID string
	// Records is how many rows the order has in the events table.
	Records int
	Stuck   bool
	// InFlight: unfinished, within its SLA at the watermark.
	InFlight bool
	// Fault: 0 none, 1 lost event, 2 redelivered duplicate, 3 out of order.
	Fault int
}

// Sample returns the orders of the workload at the given indexes.
func Sample(ctx context.Context, store *chstore.Store, w Workload, m Manifest, idx []int64) ([]SampleOrder, error) {
	g, err := newGenerator(w, m.Watermark)
	if err != nil {
		return nil, err
	}
	q, err := g.ordersSQL(g.sampleRange(idx))
	if err != nil {
		return nil, err
	}
	rows, err := store.Conn().Query(ctx, "SELECT toUInt64(i), order_id, toUInt64(n_records), stuck, in_flight, toUInt8(fault) FROM ("+q+") SETTINGS max_expanded_ast_elements = 10000000")
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
