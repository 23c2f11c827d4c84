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
	CausationID, CorrelationID  string
	TraceID                     string
	SpanID, ParentSpanID        string
	VersionVector               map[string]uint64
	IdempotencyKey, PayloadHash string
	// ReplayJob and ReplayOf say that the record is a replay by weft (the
	// job, and the original's topic/partition@offset), from its replay
	// headers (docs/replay.md); both "" for other records.
	ReplayJob, ReplayOf string
}

// The replay headers the detector reads (replay.Header*; the replay
// package's tests check they are the same).
const (
	HeaderReplayJob               = "weft-replay-job"
	HeaderReplayOriginalTopic     = "weft-replay-original-topic"
	HeaderReplayOriginalPartition = "weft-replay-original-partition"
	HeaderReplayOriginalOffset    = "weft-replay-original-offset"
)

// OrderEvents reads the events of the given orders in one query and hands
// each to each as it is read (nothing is held in between: a read may hold
// ten thousand events), by order id then event time, each record (topic,
// partition, offset) once however often it was stored.
func (s *Store) OrderEvents(ctx context.Context, orderIDs []string, each func(EventRow)) error {
	rows, err := s.conn.Query(ctx, `
SELECT order_id, topic, partition, offset, event_id, event_type, service, event_time, ingested_at,
       causation_id, correlation_id, trace_id, span_id, parent_span_id, version_vector, idempotency_key, payload_hash,
       headers[?] AS replay_job,
       if(replay_job = '', '', concat(headers[?], '/', headers[?], '@', headers[?]))
FROM `+s.Table("events")+`
WHERE order_id IN ?
ORDER BY order_id, event_time, topic, partition, offset
LIMIT 1 BY topic, partition, offset`, HeaderReplayJob,
		HeaderReplayOriginalTopic, HeaderReplayOriginalPartition, HeaderReplayOriginalOffset, orderIDs)
	if err != nil {
		return fmt.Errorf("read events of %d orders: %w", len(orderIDs), err)
	}
	defer rows.Close()
	for rows.Next() {
		var e EventRow
		if err := rows.Scan(&e.OrderID, &e.Topic, &e.Partition, &e.Offset, &e.EventID, &e.Type, &e.Service, &e.EventTime,
			&e.IngestedAt, &e.CausationID, &e.CorrelationID, &e.TraceID, &e.SpanID, &e.ParentSpanID, &e.VersionVector, &e.IdempotencyKey, &e.PayloadHash,
			&e.ReplayJob, &e.ReplayOf); err != nil {
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

// DeadLetterRow is a record of an order stored from a dead-letter topic,
// with its headers (where a dead-lettering service says what went wrong).
type DeadLetterRow struct {
	OrderID       string
	Topic         string
	Partition     int32
	Offset        int64
	EventID, Type string
	EventTime     time.Time
	RecordTime    time.Time
	Headers       map[string]string
}

// DeadLetters reads the records of the given orders stored from topics
// whose whole name matches topicPattern (RE2, as collector.lag.dlq_pattern),
// each record once, newest first. It reads by order id, the events table's
// key.
func (s *Store) DeadLetters(ctx context.Context, orderIDs []string, topicPattern string) ([]DeadLetterRow, error) {
	if len(orderIDs) == 0 || topicPattern == "" {
		return nil, nil
	}
	rows, err := s.conn.Query(ctx, `
SELECT order_id, topic, partition, offset, event_id, event_type, event_time, record_time, headers
FROM `+s.Table("events")+`
WHERE order_id IN ? AND match(topic, ?)
ORDER BY order_id, record_time DESC, topic, partition, offset
LIMIT 1 BY topic, partition, offset`, orderIDs, "^(?:"+topicPattern+")$")
	if err != nil {
		return nil, fmt.Errorf("read dead-lettered records of %d orders: %w", len(orderIDs), err)
	}
	defer rows.Close()
	var out []DeadLetterRow
	for rows.Next() {
		var r DeadLetterRow
		if err := rows.Scan(&r.OrderID, &r.Topic, &r.Partition, &r.Offset, &r.EventID, &r.Type, &r.EventTime, &r.RecordTime, &r.Headers); err != nil {
			return nil, fmt.Errorf("scan dead-lettered record: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// TypeTopic is how many records of one event type, from one service, were
// stored from one topic.
type TypeTopic struct {
	Type, Service, Topic string
	Records              uint64
}

// EventTypeTopics counts, for the given event types, the records stored
// from each service and topic since since (by ingested_at, which the events
// table indexes), most records first.
func (s *Store) EventTypeTopics(ctx context.Context, types []string, since time.Time) ([]TypeTopic, error) {
	if len(types) == 0 {
		return nil, nil
	}
	rows, err := s.conn.Query(ctx, `SELECT event_type, service, topic, count() AS n FROM `+s.Table("events")+`
WHERE ingested_at >= `+msParam+` AND event_type IN ?
GROUP BY event_type, service, topic
ORDER BY event_type, n DESC, service, topic`, since.UnixMilli(), types)
	if err != nil {
		return nil, fmt.Errorf("topics of event types: %w", err)
	}
	defer rows.Close()
	var out []TypeTopic
	for rows.Next() {
		var t TypeTopic
		if err := rows.Scan(&t.Type, &t.Service, &t.Topic, &t.Records); err != nil {
			return nil, fmt.Errorf("scan topic of event type: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
