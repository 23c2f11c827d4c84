package chstore

import (
	"context"
	"fmt"
	"time"
)

// The tracing component's reads of the events table and its writes to
// otel_traces (migration 017, docs/tracing.md).

// TraceEventRow is one stored record as a span is made of it: each record
// (topic, partition, offset) once, however often it was stored, with the
// time it was first stored.
type TraceEventRow struct {
	OrderID                string
	Topic                  string
	Partition              int32
	Offset                 int64
	Key                    string
	EventID, Type, Service string
	EventTime, RecordTime  time.Time
	// FirstIngestedAt is the earliest ingested_at of the record's stored
	// copies: a redelivery stored again keeps the first copy's time while
	// that copy is unmerged.
	FirstIngestedAt            time.Time
	CausationID, CorrelationID string
	TraceID, SpanID            string
	ParentSpanID, TraceState   string
}

const traceEventColumns = `order_id, topic, partition, offset,
       any(record_key), any(event_id), any(event_type), any(service), any(event_time), any(record_time),
       min(ingested_at) AS first_ingested,
       any(causation_id), any(correlation_id), any(trace_id), any(span_id), any(parent_span_id), any(trace_state)`

// OrderTraceEvents reads every record of one order, by event time.
func (s *Store) OrderTraceEvents(ctx context.Context, orderID string) ([]TraceEventRow, error) {
	return s.traceEvents(ctx, `SELECT `+traceEventColumns+`
FROM `+s.Table("events")+`
WHERE order_id = ?
GROUP BY order_id, topic, partition, offset
ORDER BY any(event_time), topic, partition, offset`, orderID)
}

// TraceWindowEnd bounds a window of NewTraceEvents starting at from to
// about limit stored rows: it ends after the millisecond of the limit-th
// row stored in [from, to) (a millisecond's rows are never split), or at
// to when there are fewer. It reads only ingested_at, so a Tracer behind a
// large backlog does not aggregate the whole backlog for each page it
// takes (docs/tracing.md).
func (s *Store) TraceWindowEnd(ctx context.Context, from, to time.Time, limit int) (time.Time, error) {
	rows, err := s.conn.Query(ctx, `SELECT ingested_at FROM `+s.Table("events")+`
WHERE ingested_at >= `+msParam+` AND ingested_at < `+msParam+`
ORDER BY ingested_at
LIMIT 1 OFFSET ?`, from.UnixMilli(), to.UnixMilli(), max(limit-1, 0))
	if err != nil {
		return time.Time{}, fmt.Errorf("bound the trace window: %w", err)
	}
	defer rows.Close()
	end := to
	if rows.Next() {
		var last time.Time
		if err := rows.Scan(&last); err != nil {
			return time.Time{}, fmt.Errorf("bound the trace window: %w", err)
		}
		if e := last.UTC().Truncate(time.Millisecond).Add(time.Millisecond); e.Before(to) {
			end = e
		}
	}
	return end, rows.Err()
}

// NewTraceEvents reads up to limit records first stored in [from, to),
// oldest first: the spans a pass of the tracing component exports. A
// record stored again (a redelivery) is not new while its first copy is
// still there.
func (s *Store) NewTraceEvents(ctx context.Context, from, to time.Time, limit int) ([]TraceEventRow, error) {
	tbl := s.Table("events")
	return s.traceEvents(ctx, `SELECT `+traceEventColumns+`
FROM `+tbl+`
WHERE order_id IN (SELECT DISTINCT order_id FROM `+tbl+` WHERE ingested_at >= `+msParam+` AND ingested_at < `+msParam+`)
GROUP BY order_id, topic, partition, offset
HAVING first_ingested >= `+msParam+` AND first_ingested < `+msParam+`
ORDER BY first_ingested, topic, partition, offset
LIMIT ?`, from.UnixMilli(), to.UnixMilli(), from.UnixMilli(), to.UnixMilli(), limit)
}

func (s *Store) traceEvents(ctx context.Context, q string, args ...any) ([]TraceEventRow, error) {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read events for traces: %w", err)
	}
	defer rows.Close()
	var out []TraceEventRow
	for rows.Next() {
		var r TraceEventRow
		if err := rows.Scan(&r.OrderID, &r.Topic, &r.Partition, &r.Offset, &r.Key, &r.EventID, &r.Type, &r.Service,
			&r.EventTime, &r.RecordTime, &r.FirstIngestedAt, &r.CausationID, &r.CorrelationID, &r.TraceID, &r.SpanID,
			&r.ParentSpanID, &r.TraceState); err != nil {
			return nil, fmt.Errorf("scan event for traces: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SpanRow is one otel_traces row, in the OpenTelemetry Collector
// ClickHouse exporter's columns.
type SpanRow struct {
	Timestamp          time.Time
	TraceID, SpanID    string
	ParentSpanID       string
	TraceState         string
	SpanName, SpanKind string
	ServiceName        string
	ResourceAttributes map[string]string
	ScopeName          string
	ScopeVersion       string
	SpanAttributes     map[string]string
	Duration           time.Duration
	StatusCode         string
	StatusMessage      string
	Events             []SpanEventRow
	Links              []SpanLinkRow
}

// SpanEventRow is one element of otel_traces' Events.
type SpanEventRow struct {
	Timestamp  time.Time
	Name       string
	Attributes map[string]string
}

// SpanLinkRow is one element of otel_traces' Links.
type SpanLinkRow struct {
	TraceID, SpanID, TraceState string
	Attributes                  map[string]string
}

// InsertSpans appends spans to otel_traces in one insert.
func (s *Store) InsertSpans(ctx context.Context, spans []SpanRow) error {
	if len(spans) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.Table("otel_traces")+` (Timestamp, TraceId, SpanId, ParentSpanId,
TraceState, SpanName, SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration,
StatusCode, StatusMessage, `+"`Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`, `Links.SpanId`, `Links.TraceState`, `Links.Attributes`)")
	if err != nil {
		return fmt.Errorf("prepare otel_traces batch: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	for _, r := range spans {
		evTimes, evNames, evAttrs := make([]time.Time, len(r.Events)), make([]string, len(r.Events)), make([]map[string]string, len(r.Events))
		for i, e := range r.Events {
			evTimes[i], evNames[i], evAttrs[i] = e.Timestamp.UTC(), e.Name, nonNilMap(e.Attributes)
		}
		lTrace, lSpan, lState, lAttrs := make([]string, len(r.Links)), make([]string, len(r.Links)), make([]string, len(r.Links)), make([]map[string]string, len(r.Links))
		for i, l := range r.Links {
			lTrace[i], lSpan[i], lState[i], lAttrs[i] = l.TraceID, l.SpanID, l.TraceState, nonNilMap(l.Attributes)
		}
		if err := b.Append(r.Timestamp.UTC(), r.TraceID, r.SpanID, r.ParentSpanID, r.TraceState, r.SpanName, r.SpanKind,
			r.ServiceName, nonNilMap(r.ResourceAttributes), r.ScopeName, r.ScopeVersion, nonNilMap(r.SpanAttributes),
			uint64(max(r.Duration, 0)), r.StatusCode, r.StatusMessage, evTimes, evNames, evAttrs, lTrace, lSpan, lState, lAttrs); err != nil {
			return fmt.Errorf("append otel_traces row (trace %s span %s): %w", r.TraceID, r.SpanID, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d otel_traces rows: %w", len(spans), err)
	}
	return nil
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// StoredSpans returns which of the spans (trace id → span ids, hex) are
// already in otel_traces, as "traceid/spanid": the tracing component does
// not store or export a span twice, also for a record stored again after
// its first copy was merged away.
func (s *Store) StoredSpans(ctx context.Context, spans map[string][]string) (map[string]bool, error) {
	out := map[string]bool{}
	// The ids go into the query's text: a tap batch is stamped with one
	// millisecond, so a pass may hold 10,000 spans and more, past
	// ClickHouse's max_query_size (256 KiB) in one query. A few thousand
	// ids a query.
	var traces, ids []string
	flush := func() error {
		if len(traces) == 0 {
			return nil
		}
		err := s.storedSpans(ctx, traces, ids, out)
		traces, ids = traces[:0], ids[:0]
		return err
	}
	for t, ss := range spans {
		traces = append(traces, t)
		ids = append(ids, ss...)
		if len(traces)+len(ids) >= storedSpansPerQuery {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// storedSpansPerQuery bounds the ids (trace and span, 16 and 32 hex
// characters) in one StoredSpans query: about 120 KB of text.
const storedSpansPerQuery = 4000

func (s *Store) storedSpans(ctx context.Context, traces, ids []string, out map[string]bool) error {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT TraceId, SpanId FROM "+s.Table("otel_traces")+
		" WHERE TraceId IN ? AND SpanId IN ?", traces, ids)
	if err != nil {
		return fmt.Errorf("read stored spans: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t, id string
		if err := rows.Scan(&t, &id); err != nil {
			return fmt.Errorf("scan stored span: %w", err)
		}
		out[t+"/"+id] = true
	}
	return rows.Err()
}
