package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/weft-sh/weft/internal/event"
)

// What `weft audit verify` reads (docs/audit.md): every stored row of a
// topic-partition from an offset on, in offset order, streaming. No FINAL
// and no LIMIT 1 BY: every stored copy of a record is handed over (oldest
// first), so the verifier tells a redelivery not yet merged (an identical
// copy) from a second, different row for one record (tampering).

// AuditEventRows hands fn every events row of a topic-partition, ordered
// by offset then ingested_at, duplicates included.
func (s *Store) AuditEventRows(ctx context.Context, topic string, partition int32, fn func(event.Event) error) error {
	return s.AuditEventRowsFrom(ctx, topic, partition, 0, fn)
}

// AuditEventRowsFrom is AuditEventRows from offset from on.
func (s *Store) AuditEventRowsFrom(ctx context.Context, topic string, partition int32, from int64, fn func(event.Event) error) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
		"topic": topic, "partition": fmt.Sprint(partition), "from": fmt.Sprint(from),
	}))
	rows, err := s.conn.Query(ctx, auditEventColumns+`
FROM `+s.Table("events")+`
WHERE topic = {topic:String} AND partition = {partition:Int32} AND offset >= {from:Int64}
ORDER BY offset, ingested_at`)
	if err != nil {
		return fmt.Errorf("read events of %s/%d: %w", topic, partition, err)
	}
	return scanAuditEvents(rows, fmt.Sprintf("%s/%d", topic, partition), fn)
}

// AuditStart is a log state stored with one leaf: where `weft audit verify
// --since` starts.
type AuditStart struct {
	// LeafIndex is the leaf the state was stored with: the state covers
	// leaves 0 to LeafIndex.
	LeafIndex uint64
	State     []byte
	StoredAt  time.Time
}

// AuditStateBefore returns the state stored with the highest leaf of a
// topic-partition's log that was stored before before; ok is false when
// no leaf stored before it carries a state.
func (s *Store) AuditStateBefore(ctx context.Context, topic string, partition int32, before time.Time) (st AuditStart, ok bool, err error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
		"topic": topic, "partition": fmt.Sprint(partition), "before": fmt.Sprint(before.UnixMilli()),
	}))
	rows, err := s.conn.Query(ctx, `SELECT leaf_index, state, stored_at
FROM `+s.Table("audit_leaves")+`
WHERE topic = {topic:String} AND partition = {partition:Int32} AND state != ''
  AND stored_at < fromUnixTimestamp64Milli({before:Int64}, 'UTC')
ORDER BY leaf_index DESC
LIMIT 1`)
	if err != nil {
		return st, false, fmt.Errorf("read the audit state of %s/%d before %s: %w", topic, partition, before.Format(time.RFC3339), err)
	}
	defer rows.Close()
	if rows.Next() {
		var state string
		if err := rows.Scan(&st.LeafIndex, &state, &st.StoredAt); err != nil {
			return st, false, fmt.Errorf("scan audit state: %w", err)
		}
		st.State, ok = []byte(state), true
	}
	return st, ok, rows.Err()
}

// AuditEventStream hands fn every events row of topic (of every topic when
// topic is empty), ordered by partition, offset then ingested_at (topic
// first), duplicates included: what AuditEventRows returns for each
// partition, in one read. `weft audit verify` reads this way: the table is
// ordered by order id, so a read of one partition scans the whole table,
// and a read per partition scans it once per partition. ClickHouse sorts
// the rows, spilling to disk past its memory limit
// (max_bytes_ratio_before_external_sort).
func (s *Store) AuditEventStream(ctx context.Context, topic string, fn func(event.Event) error) error {
	ctx = streamContext(ctx, clickhouse.Parameters{"topic": topic})
	rows, err := s.conn.Query(ctx, auditEventColumns+`
FROM `+s.Table("events")+`
WHERE {topic:String} = '' OR topic = {topic:String}
ORDER BY topic, partition, offset, ingested_at`)
	if err != nil {
		return fmt.Errorf("read events of %q: %w", topic, err)
	}
	return scanAuditEvents(rows, fmt.Sprintf("topic %q", topic), fn)
}

// AuditQuarantineStream is AuditEventStream for the quarantine table:
// ordered by topic, partition, offset then quarantined_at.
func (s *Store) AuditQuarantineStream(ctx context.Context, topic string, fn func(event.Quarantined) error) error {
	ctx = streamContext(ctx, clickhouse.Parameters{"topic": topic})
	rows, err := s.conn.Query(ctx, `SELECT topic, partition, offset, record_key, record_time, value, value_size, headers, reason
FROM `+s.Table("quarantine")+`
WHERE {topic:String} = '' OR topic = {topic:String}
ORDER BY topic, partition, offset, quarantined_at`)
	if err != nil {
		return fmt.Errorf("read quarantine of %q: %w", topic, err)
	}
	defer rows.Close()
	for rows.Next() {
		var q event.Quarantined
		var key, value string
		var size uint64
		if err := rows.Scan(&q.Topic, &q.Partition, &q.Offset, &key, &q.RecordTime, &value, &size, &q.Headers, &q.Reason); err != nil {
			return fmt.Errorf("scan quarantined record: %w", err)
		}
		q.Key, q.Value, q.Size = []byte(key), []byte(value), int(size)
		if err := fn(q); err != nil {
			return err
		}
	}
	return rows.Err()
}

// streamContext binds params for a long sorted read, whose pace is its
// reader's: no max_execution_time (the connection's 120 s would end a
// read of a large table half-way), and result blocks of 2,048 rows (a
// sort's are 65,409 rows: 80 MB of 1 KB payloads, each held whole by the
// client while it is read).
func streamContext(ctx context.Context, params clickhouse.Parameters) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithParameters(params),
		clickhouse.WithSettings(clickhouse.Settings{"max_execution_time": 0, "max_block_size": 2048}))
}

// auditEventColumns are the events columns verify and export read, in the
// order scanAuditEvents scans them.
const auditEventColumns = `SELECT topic, partition, offset, record_key, record_time,
event_id, event_type, service, order_id, event_time, causation_id, correlation_id, trace_id, span_id, parent_span_id,
trace_state, version_vector, idempotency_key, format, headers, payload, payload_hash`
