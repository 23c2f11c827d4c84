package chstore

import (
	"context"
	"fmt"
	"time"
)

// The consistency engine's reads of the events table (the inserts are in
// insert.go and eventwriter.go).

// EventRow is one stored event of an order, as the consistency engine
// reads it to rebuild the order's chain.
type EventRow struct {
	OrderID                     string
	Topic                       string
	Partition                   int32
	Offset                      int64
	EventID, Type, Service      string
	EventTime, IngestedAt       time.Time
	CausationID, TraceID        string
	SpanID, ParentSpanID        string
	VersionVector               map[string]uint64
	IdempotencyKey, PayloadHash string
}

// OrderEvents reads the events of the given orders in one query and hands
// each to each as it is read (nothing is held in between: a read may hold
// ten thousand events), by order id then event time, each record (topic,
// partition, offset) once however often it was stored.
func (s *Store) OrderEvents(ctx context.Context, orderIDs []string, each func(EventRow)) error {
	rows, err := s.conn.Query(ctx, `
SELECT order_id, topic, partition, offset, event_id, event_type, service, event_time, ingested_at,
       causation_id, trace_id, span_id, parent_span_id, version_vector, idempotency_key, payload_hash
FROM `+s.Table("events")+`
WHERE order_id IN ?
ORDER BY order_id, event_time, topic, partition, offset
LIMIT 1 BY topic, partition, offset`, orderIDs)
	if err != nil {
		return fmt.Errorf("read events of %d orders: %w", len(orderIDs), err)
	}
	defer rows.Close()
	for rows.Next() {
		var e EventRow
		if err := rows.Scan(&e.OrderID, &e.Topic, &e.Partition, &e.Offset, &e.EventID, &e.Type, &e.Service, &e.EventTime,
			&e.IngestedAt, &e.CausationID, &e.TraceID, &e.SpanID, &e.ParentSpanID, &e.VersionVector, &e.IdempotencyKey, &e.PayloadHash); err != nil {
			return fmt.Errorf("scan event: %w", err)
		}
		each(e)
	}
	return rows.Err()
}

// Watermark reads the newest event time and ingest time of the events
// ingested at or after since (of every event when since is zero).
func (s *Store) Watermark(ctx context.Context, since time.Time) (maxEvent, maxIngest time.Time, err error) {
	q := "SELECT max(event_time), max(ingested_at) FROM " + s.Table("events")
	var args []any
	if !since.IsZero() {
		q += " WHERE ingested_at >= " + msParam
		args = append(args, since.UnixMilli())
	}
	if err := s.conn.QueryRow(ctx, q, args...).Scan(&maxEvent, &maxIngest); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("read watermark: %w", err)
	}
	return maxEvent, maxIngest, nil
}

// ChangedOrders returns up to limit order ids, in order, after the id
// after, with an event ingested in [from, to); a zero from is the
// beginning of the history.
func (s *Store) ChangedOrders(ctx context.Context, from, to time.Time, after string, limit int) ([]string, error) {
	if from.IsZero() {
		from = time.Unix(0, 0)
	}
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT order_id FROM `+s.Table("events")+`
WHERE ingested_at >= `+msParam+` AND ingested_at < `+msParam+` AND order_id > ?
ORDER BY order_id
LIMIT ?`, from.UnixMilli(), to.UnixMilli(), after, limit)
	if err != nil {
		return nil, fmt.Errorf("changed orders: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan changed order: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
