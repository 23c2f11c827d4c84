package scalegen

import (
	"context"
	"fmt"
	"time"
)

// Clock ticks: weft measures stuck time on the stream's clock, the newest
// event time advanced by the wall time since the newest ingest. A history
// loaded an hour (or a week) ago would therefore look an hour (a week) older
// than its watermark, and every order in flight would turn stuck. Tick
// stores one record at the watermark, ingested now, which holds the clock at
// the watermark as if the stream were live: call it before each measured
// call whose answer depends on the clock.
const (
	clockTopic = "weft.scale.clock"
	clockOrder = "scale-clock"
	clockType  = "ClockTick"
)

// Tick stores a clock record (its own topic and order, an event type no
// workflow knows) with event time m.Watermark, ingested now.
func Tick(ctx context.Context, db *DB, m Manifest) error {
	if err := db.insertTick(ctx, m.Watermark, time.Now().UTC()); err != nil {
		return fmt.Errorf("scalegen: clock tick: %w", err)
	}
	return nil
}

// BatchResult is what AddBatch stored.
type BatchResult struct {
	Orders int
	Rows   int64
	Took   time.Duration
	// FirstIndex is the index of the batch's first order.
	FirstIndex int64
}

// AddBatch stores the records of n new orders of the workload's kind that
// ran 3–4 hours before the watermark and finished (none is cut short),
// ingested now: a burst of late records, as after a consumer catches up.
// The orders' indexes lie past the workload's and differ from call to call.
func AddBatch(ctx context.Context, db *DB, w Workload, m Manifest, n int) (BatchResult, error) {
	g, err := newGenerator(w, m.Watermark)
	if err != nil {
		return BatchResult{}, err
	}
	first := int64(1)<<40 + time.Now().UnixMilli()%(1<<30)*1024
	r := orderRange{From: first, Count: int64(n), First: first, Spread: int64(n),
		SpanStart: m.Watermark.Add(-4 * time.Hour), SpanEnd: m.Watermark.Add(-3 * time.Hour)}
	t0 := time.Now()
	rows, err := g.insert(ctx, db, r, true)
	if err != nil {
		return BatchResult{}, fmt.Errorf("scalegen: batch: %w", err)
	}
	return BatchResult{Orders: n, Rows: rows, Took: time.Since(t0), FirstIndex: first}, nil
}
