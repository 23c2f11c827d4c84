package chstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// What the tap reads of a topic-partition's log to resume it and to check,
// before it stores a batch's leaves, that no other tap moved the log on
// (docs/audit.md, "How the tap keeps the logs whole"). Each read is of one
// log and of its end: the table's key, descending, with a limit.

// AuditHead is the end of one topic-partition's stored log.
type AuditHead struct {
	// Size is the highest stored leaf index + 1; 0 when the log has no leaf.
	Size uint64
	// States are the distinct states stored on that leaf, empty ones
	// included: one non-empty state for a whole log (the last leaf of every
	// insert carries one), an empty one when the log's end was cut, several
	// when two writers forked the log.
	States [][]byte
}

// AuditHead reads the end of a topic-partition's log: its highest leaf
// index and the states stored on it. Leaves below from are not read (a
// caller that knows the log reaches from passes it, and the read stays one
// granule per part, whatever the log's size); with none at or above from,
// the head is the zero AuditHead.
func (s *Store) AuditHead(ctx context.Context, topic string, partition int32, from uint64) (AuditHead, error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
		"topic": topic, "partition": strconv.FormatInt(int64(partition), 10), "from": strconv.FormatUint(from, 10),
	}))
	rows, err := s.conn.Query(ctx, `SELECT leaf_index, state FROM `+s.Table("audit_leaves")+`
WHERE topic = {topic:String} AND partition = {partition:Int32} AND leaf_index >= {from:UInt64}
ORDER BY leaf_index DESC
LIMIT 1 WITH TIES`)
	if err != nil {
		return AuditHead{}, fmt.Errorf("read the audit log head of %s/%d: %w", topic, partition, err)
	}
	defer rows.Close()
	var h AuditHead
	for rows.Next() {
		var index uint64
		var state string
		if err := rows.Scan(&index, &state); err != nil {
			return AuditHead{}, fmt.Errorf("scan audit log head: %w", err)
		}
		h.Size = index + 1
		h.States = appendDistinct(h.States, []byte(state))
	}
	return h, rows.Err()
}

// AuditLogEnd names a topic-partition's log and an index its caller knows
// the log reaches: where AuditHeads starts reading it.
type AuditLogEnd struct {
	Topic     string
	Partition int32
	From      uint64
}

// AuditHeads reads the ends of several logs, of distinct partitions, in
// one query: for each of logs, in order, what AuditHead(ctx, l.Topic,
// l.Partition, l.From) reads.
// It is what the tap asks before it stores a batch's leaves.
func (s *Store) AuditHeads(ctx context.Context, logs []AuditLogEnd) ([]AuditHead, error) {
	if len(logs) == 0 {
		return nil, nil
	}
	params := clickhouse.Parameters{}
	where := make([]string, len(logs))
	index := map[[2]string]int{}
	for i, l := range logs {
		n := strconv.Itoa(i)
		params["t"+n], params["p"+n] = l.Topic, strconv.FormatInt(int64(l.Partition), 10)
		params["f"+n] = strconv.FormatUint(l.From, 10)
		where[i] = "(topic = {t" + n + ":String} AND partition = {p" + n + ":Int32} AND leaf_index >= {f" + n + ":UInt64})"
		index[[2]string{l.Topic, params["p"+n]}] = i
	}
	// One row per distinct state of each log, the highest-indexed: the
	// newest leaf's states are among them, and a whole log's end has one.
	rows, err := s.conn.Query(clickhouse.Context(ctx, clickhouse.WithParameters(params)),
		`SELECT topic, partition, leaf_index, state FROM `+s.Table("audit_leaves")+`
WHERE `+strings.Join(where, "\n   OR ")+`
ORDER BY topic, partition, leaf_index DESC
LIMIT 1 BY topic, partition, state`)
	if err != nil {
		return nil, fmt.Errorf("read the ends of %d audit logs: %w", len(logs), err)
	}
	defer rows.Close()
	out := make([]AuditHead, len(logs))
	for rows.Next() {
		var topic, state string
		var partition int32
		var idx uint64
		if err := rows.Scan(&topic, &partition, &idx, &state); err != nil {
			return nil, fmt.Errorf("scan audit log end: %w", err)
		}
		i, ok := index[[2]string{topic, strconv.FormatInt(int64(partition), 10)}]
		if !ok {
			continue
		}
		switch h := &out[i]; {
		case idx+1 > h.Size:
			h.Size, h.States = idx+1, [][]byte{[]byte(state)}
		case idx+1 == h.Size:
			h.States = appendDistinct(h.States, []byte(state))
		}
	}
	return out, rows.Err()
}

// AuditStatesAt returns the distinct non-empty states stored on the leaf
// at index of a topic-partition's log: the log's state at index+1 leaves,
// when an insert ended there.
func (s *Store) AuditStatesAt(ctx context.Context, topic string, partition int32, index uint64) ([][]byte, error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
		"topic": topic, "partition": strconv.FormatInt(int64(partition), 10), "index": strconv.FormatUint(index, 10),
	}))
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT state FROM `+s.Table("audit_leaves")+`
WHERE topic = {topic:String} AND partition = {partition:Int32} AND leaf_index = {index:UInt64} AND state != ''`)
	if err != nil {
		return nil, fmt.Errorf("read the audit state of %s/%d at leaf %d: %w", topic, partition, index, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var state string
		if err := rows.Scan(&state); err != nil {
			return nil, fmt.Errorf("scan audit state: %w", err)
		}
		out = append(out, []byte(state))
	}
	return out, rows.Err()
}

// LastCheckpoint returns the stored checkpoint of the log origin with the
// largest size (the newest of that size); false when there is none.
func (s *Store) LastCheckpoint(ctx context.Context, origin string) (CheckpointRow, bool, error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"origin": origin}))
	rows, err := s.conn.Query(ctx, `SELECT origin, size, root, note, signed, created_at
FROM `+s.Table("audit_checkpoints")+`
WHERE origin = {origin:String}
ORDER BY size DESC, created_at DESC
LIMIT 1`)
	if err != nil {
		return CheckpointRow{}, false, fmt.Errorf("read the last checkpoint of %s: %w", origin, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return CheckpointRow{}, false, rows.Err()
	}
	var c CheckpointRow
	var root, note string
	if err := rows.Scan(&c.Origin, &c.Size, &root, &note, &c.Signed, &c.CreatedAt); err != nil {
		return CheckpointRow{}, false, fmt.Errorf("scan checkpoint: %w", err)
	}
	c.Root, c.Note = [32]byte([]byte(root)), []byte(note)
	return c, true, rows.Err()
}

func appendDistinct(list [][]byte, b []byte) [][]byte {
	for _, x := range list {
		if string(x) == string(b) {
			return list
		}
	}
	return append(list, b)
}
