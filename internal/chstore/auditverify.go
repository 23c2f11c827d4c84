package chstore

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/weft-sh/weft/internal/event"
)

// What `weft audit verify` reads (docs/audit.md): every stored row of a
// topic-partition, in offset order, streaming. No FINAL and no LIMIT 1 BY:
// every stored copy of a record is handed over (oldest first), so the
// verifier tells a redelivery not yet merged (an identical copy) from a
// second, different row for one record (tampering).

// AuditEventRows hands fn every events row of a topic-partition, ordered
// by offset then ingested_at, duplicates included.
func (s *Store) AuditEventRows(ctx context.Context, topic string, partition int32, fn func(event.Event) error) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
		"topic": topic, "partition": fmt.Sprint(partition),
	}))
	rows, err := s.conn.Query(ctx, `SELECT topic, partition, offset, record_key, record_time,
event_id, event_type, service, order_id, event_time, causation_id, correlation_id, trace_id, span_id, parent_span_id,
trace_state, version_vector, idempotency_key, format, headers, payload, payload_hash
FROM `+s.Table("events")+`
WHERE topic = {topic:String} AND partition = {partition:Int32}
ORDER BY offset, ingested_at`)
	if err != nil {
		return fmt.Errorf("read events of %s/%d: %w", topic, partition, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e event.Event
		var format, payload string
		if err := rows.Scan(&e.Topic, &e.Partition, &e.Offset, &e.Key, &e.RecordTime, &e.EventID, &e.Type, &e.Service,
			&e.OrderID, &e.EventTime, &e.CausationID, &e.CorrelationID, &e.TraceID, &e.SpanID, &e.ParentSpanID, &e.TraceState,
			&e.VersionVector, &e.IdempotencyKey, &format, &e.Headers, &payload, &e.PayloadHash); err != nil {
			return fmt.Errorf("scan event of %s/%d: %w", topic, partition, err)
		}
		e.Format, e.Payload = event.Format(format), []byte(payload)
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AuditQuarantineRows hands fn every quarantine row of a topic-partition,
// ordered by offset then quarantined_at, duplicates included.
func (s *Store) AuditQuarantineRows(ctx context.Context, topic string, partition int32, fn func(event.Quarantined) error) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
		"topic": topic, "partition": fmt.Sprint(partition),
	}))
	rows, err := s.conn.Query(ctx, `SELECT topic, partition, offset, record_key, record_time, value, value_size, headers, reason
FROM `+s.Table("quarantine")+`
WHERE topic = {topic:String} AND partition = {partition:Int32}
ORDER BY offset, quarantined_at`)
	if err != nil {
		return fmt.Errorf("read quarantine of %s/%d: %w", topic, partition, err)
	}
	defer rows.Close()
	for rows.Next() {
		var q event.Quarantined
		var key, value string
		var size uint64
		if err := rows.Scan(&q.Topic, &q.Partition, &q.Offset, &key, &q.RecordTime, &value, &size, &q.Headers, &q.Reason); err != nil {
			return fmt.Errorf("scan quarantined record of %s/%d: %w", topic, partition, err)
		}
		q.Key, q.Value, q.Size = []byte(key), []byte(value), int(size)
		if err := fn(q); err != nil {
			return err
		}
	}
	return rows.Err()
}
