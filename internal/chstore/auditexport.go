package chstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/weft-sh/weft/internal/event"
)

// What `weft audit export` reads (docs/audit.md, "Evidence bundle"): one
// order's record leaves, its stored rows, and the actions log's leaf
// hashes for its proofs.

// AuditOrderLeaves hands fn the record leaves whose order_id is orderID,
// of every topic-partition, ordered by topic, partition and leaf index,
// streaming, duplicates included (a leaf stored twice by a retried insert
// is handed twice). The table is sorted by (topic, partition, leaf_index),
// so the order id is no key prefix: idx_order_id (migration 013), a bloom
// filter per granule, lets ClickHouse read only the granules that may hold
// the order, and PREWHERE reads the other columns of those rows alone.
func (s *Store) AuditOrderLeaves(ctx context.Context, orderID string, fn func(AuditLeafRow) error) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"order": orderID}))
	rows, err := s.conn.Query(ctx, `SELECT topic, partition, leaf_index, kind, offset, end, order_id, leaf, leaf_hash, salt
FROM `+s.Table("audit_leaves")+`
PREWHERE order_id = {order:String}
WHERE kind = 'record'
ORDER BY topic, partition, leaf_index`)
	if err != nil {
		return fmt.Errorf("read the audit leaves of order %q: %w", orderID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r AuditLeafRow
		var leaf, hash, salt string
		if err := rows.Scan(&r.Topic, &r.Partition, &r.LeafIndex, &r.Kind, &r.Offset, &r.End, &r.OrderID,
			&leaf, &hash, &salt); err != nil {
			return fmt.Errorf("scan audit leaf: %w", err)
		}
		r.Leaf, r.LeafHash, r.Salt = []byte(leaf), [32]byte([]byte(hash)), []byte(salt)
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AuditOrderEventRows hands fn every events row of the order, ordered by
// topic, partition, offset then ingested_at, duplicates included (no
// FINAL: a second, different row for one record must be seen). The
// sorting key leads with order_id, so this is a primary-key range.
func (s *Store) AuditOrderEventRows(ctx context.Context, orderID string, fn func(event.Event) error) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"order": orderID}))
	rows, err := s.conn.Query(ctx, auditEventColumns+`
FROM `+s.Table("events")+`
WHERE order_id = {order:String}
ORDER BY topic, partition, offset, ingested_at`)
	if err != nil {
		return fmt.Errorf("read the events of order %q: %w", orderID, err)
	}
	return scanAuditEvents(rows, fmt.Sprintf("order %q", orderID), fn)
}

// scanAuditEvents hands fn each events row of rows, whose columns are
// auditEventColumns; of names what was read, for errors.
func scanAuditEvents(rows driver.Rows, of string, fn func(event.Event) error) error {
	defer rows.Close()
	for rows.Next() {
		var e event.Event
		var format, payload string
		if err := rows.Scan(&e.Topic, &e.Partition, &e.Offset, &e.Key, &e.RecordTime, &e.EventID, &e.Type, &e.Service,
			&e.OrderID, &e.EventTime, &e.CausationID, &e.CorrelationID, &e.TraceID, &e.SpanID, &e.ParentSpanID, &e.TraceState,
			&e.VersionVector, &e.IdempotencyKey, &format, &e.Headers, &payload, &e.PayloadHash); err != nil {
			return fmt.Errorf("scan event of %s: %w", of, err)
		}
		e.Format, e.Payload = event.Format(format), []byte(payload)
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ActionLeafHashes hands fn the leaf hashes of the actions log with
// indices in [begin, end), in index order, streaming: the actions log's
// auditor.LeafSource. A leaf stored twice is handed once.
func (s *Store) ActionLeafHashes(ctx context.Context, begin, end uint64, fn func([32]byte) error) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
		"begin": strconv.FormatUint(begin, 10), "end": strconv.FormatUint(end, 10),
	}))
	rows, err := s.conn.Query(ctx, `SELECT leaf_hash FROM `+s.Table("audit_actions")+`
WHERE leaf_index >= {begin:UInt64} AND leaf_index < {end:UInt64}
ORDER BY leaf_index
LIMIT 1 BY leaf_index`)
	if err != nil {
		return fmt.Errorf("read the actions log's leaf hashes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return fmt.Errorf("scan action leaf hash: %w", err)
		}
		if err := fn([32]byte([]byte(h))); err != nil {
			return err
		}
	}
	return rows.Err()
}
