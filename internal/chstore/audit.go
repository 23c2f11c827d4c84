package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// The audit trail's tables (migrations/011_audit.sql, docs/audit.md): the
// leaves of each topic-partition's Merkle log and the logs' checkpoints.

// AuditLeafRow is one leaf of a topic-partition's log as stored.
type AuditLeafRow struct {
	Topic     string
	Partition int32
	LeafIndex uint64
	// Kind is the leaf's kind as text: record, gap, truncation.
	Kind string
	// Offset is the record's offset (a gap's first); End is a gap's end.
	Offset, End int64
	// OrderID is the record's order id, empty for other leaves.
	OrderID string
	// Leaf is the leaf's canonical bytes, LeafHash its RFC 6962 hash.
	Leaf     []byte
	LeafHash [32]byte
	// Salt is the record's C_stored salt (empty for other leaves and once
	// erased).
	Salt []byte
	// State is the partition log's state after this leaf, on the last leaf
	// of the partition in an insert; empty otherwise.
	State []byte
}

// InsertAuditLeaves writes leaves in one insert over the insert
// connection, as InsertEvents writes events, deduplicated by token the
// same way: a retry with the same token is dropped whole.
func (s *Store) InsertAuditLeaves(ctx context.Context, rows []AuditLeafRow, at time.Time, token string) error {
	if len(rows) == 0 {
		return nil
	}
	fill := func(i, j int) { s.leaves.fill(rows[i:j], at) }
	if err := s.ins.insert(ctx, s.Table("audit_leaves"), s.leaves.input, len(rows), fill, dedupSettings(token)); err != nil {
		return fmt.Errorf("insert %d audit leaves: %w", len(rows), err)
	}
	return nil
}

// AuditState names one topic-partition's log, as AuditLogs lists them
// (State is left empty there).
type AuditState struct {
	Topic     string
	Partition int32
	State     []byte
	// Size is the log's leaves when AuditLogs listed it.
	Size uint64
}

// AuditLeafHashes hands fn the leaf hashes of a topic-partition's log with
// indices in [begin, end), in index order, streaming. A leaf stored twice
// (an insert retried outside the deduplication window) is handed once.
func (s *Store) AuditLeafHashes(ctx context.Context, topic string, partition int32, begin, end uint64, fn func([32]byte) error) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
		"topic": topic, "partition": fmt.Sprint(partition), "begin": fmt.Sprint(begin), "end": fmt.Sprint(end),
	}))
	rows, err := s.conn.Query(ctx, `SELECT leaf_hash FROM `+s.Table("audit_leaves")+`
WHERE topic = {topic:String} AND partition = {partition:Int32}
  AND leaf_index >= {begin:UInt64} AND leaf_index < {end:UInt64}
ORDER BY leaf_index
LIMIT 1 BY leaf_index`)
	if err != nil {
		return fmt.Errorf("read audit leaf hashes of %s/%d: %w", topic, partition, err)
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return fmt.Errorf("scan audit leaf hash: %w", err)
		}
		if err := fn([32]byte([]byte(h))); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AuditLeaves hands fn every stored leaf row of a topic-partition's log in
// index order, streaming, duplicates included (a verifier reports them).
func (s *Store) AuditLeaves(ctx context.Context, topic string, partition int32, fn func(AuditLeafRow) error) error {
	return s.AuditLeavesFrom(ctx, topic, partition, 0, fn)
}

// AuditLeavesFrom is AuditLeaves from leaf index from on.
func (s *Store) AuditLeavesFrom(ctx context.Context, topic string, partition int32, from uint64, fn func(AuditLeafRow) error) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
		"topic": topic, "partition": fmt.Sprint(partition), "from": fmt.Sprint(from),
	}))
	rows, err := s.conn.Query(ctx, `SELECT topic, partition, leaf_index, kind, offset, end, order_id, leaf, leaf_hash, salt, state
FROM `+s.Table("audit_leaves")+`
WHERE topic = {topic:String} AND partition = {partition:Int32} AND leaf_index >= {from:UInt64}
ORDER BY leaf_index`)
	if err != nil {
		return fmt.Errorf("read audit leaves of %s/%d: %w", topic, partition, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r AuditLeafRow
		var leaf, hash, salt, state string
		if err := rows.Scan(&r.Topic, &r.Partition, &r.LeafIndex, &r.Kind, &r.Offset, &r.End, &r.OrderID,
			&leaf, &hash, &salt, &state); err != nil {
			return fmt.Errorf("scan audit leaf: %w", err)
		}
		r.Leaf, r.LeafHash, r.Salt, r.State = []byte(leaf), [32]byte([]byte(hash)), []byte(salt), []byte(state)
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AuditLogs lists the topic-partitions that have leaves.
func (s *Store) AuditLogs(ctx context.Context) ([]AuditState, error) {
	rows, err := s.conn.Query(ctx, `SELECT topic, partition, max(leaf_index) + 1 FROM `+s.Table("audit_leaves")+`
GROUP BY topic, partition ORDER BY topic, partition`)
	if err != nil {
		return nil, fmt.Errorf("list audit logs: %w", err)
	}
	defer rows.Close()
	var out []AuditState
	for rows.Next() {
		var st AuditState
		if err := rows.Scan(&st.Topic, &st.Partition, &st.Size); err != nil {
			return nil, fmt.Errorf("scan audit log: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// CheckpointRow is one stored checkpoint of an audit log.
type CheckpointRow struct {
	Origin string
	Size   uint64
	Root   [32]byte
	// Note is the signed note, or the bare checkpoint text when unsigned.
	Note      []byte
	Signed    bool
	CreatedAt time.Time
}

// InsertCheckpoint stores one checkpoint.
func (s *Store) InsertCheckpoint(ctx context.Context, c CheckpointRow) error {
	if err := s.conn.Exec(ctx, "INSERT INTO "+s.Table("audit_checkpoints")+
		" (origin, size, root, note, signed, created_at) VALUES (?, ?, ?, ?, ?, "+msParam+")",
		c.Origin, c.Size, string(c.Root[:]), string(c.Note), c.Signed, c.CreatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("insert checkpoint of %s at size %d: %w", c.Origin, c.Size, err)
	}
	return nil
}

// Checkpoints returns the stored checkpoints of the log origin, by size
// then time.
func (s *Store) Checkpoints(ctx context.Context, origin string) ([]CheckpointRow, error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"origin": origin}))
	rows, err := s.conn.Query(ctx, `SELECT origin, size, root, note, signed, created_at
FROM `+s.Table("audit_checkpoints")+`
WHERE origin = {origin:String}
ORDER BY size, created_at`)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints of %s: %w", origin, err)
	}
	defer rows.Close()
	var out []CheckpointRow
	for rows.Next() {
		var c CheckpointRow
		var root, note string
		if err := rows.Scan(&c.Origin, &c.Size, &root, &note, &c.Signed, &c.CreatedAt); err != nil {
			return nil, fmt.Errorf("scan checkpoint: %w", err)
		}
		c.Root, c.Note = [32]byte([]byte(root)), []byte(note)
		out = append(out, c)
	}
	return out, rows.Err()
}

// CheckpointHead is the newest checkpoint of one audit log.
type CheckpointHead struct {
	Origin    string
	Size      uint64
	Signed    bool
	CreatedAt time.Time
}

// LatestCheckpoints returns each log's newest checkpoint (the largest,
// then the latest), by origin: the console's audit status.
func (s *Store) LatestCheckpoints(ctx context.Context) ([]CheckpointHead, error) {
	rows, err := s.conn.Query(ctx, `SELECT origin, max(size), argMax(signed, (size, created_at)), max(created_at)
FROM `+s.Table("audit_checkpoints")+`
GROUP BY origin
ORDER BY origin`)
	if err != nil {
		return nil, fmt.Errorf("read latest checkpoints: %w", err)
	}
	defer rows.Close()
	var out []CheckpointHead
	for rows.Next() {
		var c CheckpointHead
		if err := rows.Scan(&c.Origin, &c.Size, &c.Signed, &c.CreatedAt); err != nil {
			return nil, fmt.Errorf("scan checkpoint: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
