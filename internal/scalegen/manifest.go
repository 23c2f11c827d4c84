package scalegen

import (
	"context"
	"time"
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

// manifest computes the manifest of the whole workload, by the SQL that
// generates it.
func (g *generator) manifest(ctx context.Context, db *DB) (Manifest, error) {
	q, err := g.ordersSQL(g.mainRange(0, int64(g.w.Orders)))
	if err != nil {
		return Manifest{}, err
	}
	return db.planned(ctx, q, g.watermark)
}

// ReadManifest returns the manifest of the workload loaded in db; ok is
// false when none was loaded.
func ReadManifest(ctx context.Context, db *DB) (m Manifest, ok bool, err error) {
	return db.readManifest(ctx)
}

// generatedRows counts the rows the generator wrote, leaving out what was
// ingested later (the benchmark's clock ticks and batches).
func (m Manifest) generatedRows(ctx context.Context, db *DB) (int64, error) {
	return db.recordsIngestedBy(ctx, m.Watermark.Add(ingestSlack))
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
func Sample(ctx context.Context, db *DB, w Workload, m Manifest, idx []int64) ([]SampleOrder, error) {
	g, err := newGenerator(w, m.Watermark)
	if err != nil {
		return nil, err
	}
	q, err := g.ordersSQL(g.sampleRange(idx))
	if err != nil {
		return nil, err
	}
	return db.samples(ctx, q)
}
