package chstore

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Erasure (docs/audit.md, "Erasure"): an order's stored payloads and their
// audit salts are removed; its identifiers, leaves and proofs stay.

// OrderRecordPositions returns the records of an order weft stored —
// those with a record leaf and those in events (stored before the trail
// was on, or whose leaves are not stored yet) — each once, sorted.
func (s *Store) OrderRecordPositions(ctx context.Context, orderID string) ([]ActionTarget, error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"order": orderID}))
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT topic, partition, offset FROM (
    SELECT topic, partition, offset FROM `+s.Table("audit_leaves")+` WHERE order_id = {order:String} AND kind = 'record'
    UNION ALL
    SELECT topic, partition, offset FROM `+s.Table("events")+` WHERE order_id = {order:String}
)
ORDER BY topic, partition, offset`)
	if err != nil {
		return nil, fmt.Errorf("read the records of order %s: %w", orderID, err)
	}
	defer rows.Close()
	var out []ActionTarget
	for rows.Next() {
		var t ActionTarget
		if err := rows.Scan(&t.Topic, &t.Partition, &t.Offset); err != nil {
			return nil, fmt.Errorf("scan a record of order %s: %w", orderID, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// EraseOrder removes the personal data of an order's stored rows — the
// payload, the record key, the headers and the payload's hash — and the
// salts of its record leaves, waiting for both mutations to finish. The
// identifiers (order, event and trace ids, types, times, offsets) stay:
// they are what the chain, the findings and the logs are made of.
func (s *Store) EraseOrder(ctx context.Context, orderID string) error {
	pctx := clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"order": orderID}))
	// A Distributed table takes no mutation: on a cluster each node's
	// shard is erased (the order's rows are on one of them).
	return s.onEachNode(ctx, func(n node) error {
		if err := n.conn.Exec(pctx, `ALTER TABLE `+s.shardTable("events")+`
UPDATE payload = '', record_key = '', headers = map(), payload_hash = ''
WHERE order_id = {order:String}
SETTINGS mutations_sync = 2`); err != nil {
			return fmt.Errorf("erase the rows of order %s: %w", orderID, err)
		}
		if err := n.conn.Exec(pctx, `ALTER TABLE `+s.shardTable("audit_leaves")+`
UPDATE salt = ''
WHERE order_id = {order:String} AND kind = 'record'
SETTINGS mutations_sync = 2`); err != nil {
			return fmt.Errorf("erase the salts of order %s: %w", orderID, err)
		}
		return nil
	})
}
