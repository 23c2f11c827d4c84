package chstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// The operator-actions log (migrations/012_audit_actions.sql,
// docs/audit.md "Operator actions"): one row per leaf.

// ActionTarget is one record an action acted on.
type ActionTarget struct {
	Topic     string `ch:"topic"`
	Partition int32  `ch:"partition"`
	Offset    int64  `ch:"offset"`
}

// ActionRow is one leaf of the actions log as stored.
type ActionRow struct {
	LeafIndex uint64
	Time      time.Time
	Actor     string
	Origin    string
	Verb      string
	Resource  string
	// Outcome is the action's outcome as text: success, failure, denied.
	Outcome string
	Detail  string
	OrderID string
	Targets []ActionTarget
	// Leaf is the action's canonical bytes, LeafHash its RFC 6962 hash.
	Leaf     []byte
	LeafHash [32]byte
	// State is the log's state after this leaf.
	State    []byte
	StoredAt time.Time
}

// ActionToken is the deduplication token of the insert of the action leaf
// at index: every writer appending at one index uses the same one, so
// ClickHouse stores the first and drops the others.
func ActionToken(index uint64) string { return "action:" + strconv.FormatUint(index, 10) }

// InsertAction stores one action leaf with ActionToken(r.LeafIndex). A
// nil error does not mean this row won the index: read it back with
// ActionLeavesAt.
func (s *Store) InsertAction(ctx context.Context, r ActionRow) error {
	b, err := s.conn.PrepareBatch(dedupContext(ctx, ActionToken(r.LeafIndex)), "INSERT INTO "+s.Table("audit_actions")+
		` (leaf_index, time, actor, origin, verb, resource, outcome, detail, order_id, targets, leaf, leaf_hash, state, stored_at)`)
	if err != nil {
		return fmt.Errorf("prepare audit action insert: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	targets := make([][]any, len(r.Targets))
	for i, t := range r.Targets {
		targets[i] = []any{t.Topic, t.Partition, t.Offset}
	}
	if err := b.Append(r.LeafIndex, r.Time, r.Actor, r.Origin, r.Verb, r.Resource, r.Outcome, r.Detail, r.OrderID,
		targets, string(r.Leaf), string(r.LeafHash[:]), string(r.State), r.StoredAt); err != nil {
		return fmt.Errorf("append audit action #%d: %w", r.LeafIndex, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert audit action #%d: %w", r.LeafIndex, err)
	}
	return nil
}

// ActionLeavesAt returns the leaf bytes stored at index (more than one
// only when the log was tampered with or written outside weft).
func (s *Store) ActionLeavesAt(ctx context.Context, index uint64) ([][]byte, error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"index": strconv.FormatUint(index, 10)}))
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT leaf FROM `+s.Table("audit_actions")+` WHERE leaf_index = {index:UInt64}`)
	if err != nil {
		return nil, fmt.Errorf("read audit action #%d: %w", index, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var leaf string
		if err := rows.Scan(&leaf); err != nil {
			return nil, fmt.Errorf("scan audit action: %w", err)
		}
		out = append(out, []byte(leaf))
	}
	return out, rows.Err()
}

// LatestActionState returns the actions log's size (the highest stored
// index + 1) and the state stored with that leaf; 0 and nil for an empty
// log.
func (s *Store) LatestActionState(ctx context.Context) (uint64, []byte, error) {
	rows, err := s.conn.Query(ctx, `SELECT leaf_index, state FROM `+s.Table("audit_actions")+`
ORDER BY leaf_index DESC LIMIT 1`)
	if err != nil {
		return 0, nil, fmt.Errorf("read the actions log's state: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return 0, nil, rows.Err()
	}
	var index uint64
	var state string
	if err := rows.Scan(&index, &state); err != nil {
		return 0, nil, fmt.Errorf("scan the actions log's state: %w", err)
	}
	return index + 1, []byte(state), rows.Err()
}

// ActionRows hands fn every stored action row in index order, streaming,
// duplicates included (a verifier reports them). A non-empty orderID keeps
// the actions on that order.
func (s *Store) ActionRows(ctx context.Context, orderID string, fn func(ActionRow) error) error {
	where := ""
	if orderID != "" {
		ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"order": orderID}))
		where = "WHERE order_id = {order:String}\n"
	}
	rows, err := s.conn.Query(ctx, `SELECT leaf_index, time, actor, origin, verb, resource, outcome, detail, order_id,
targets, leaf, leaf_hash, state, stored_at
FROM `+s.Table("audit_actions")+`
`+where+`ORDER BY leaf_index, stored_at`)
	if err != nil {
		return fmt.Errorf("read audit actions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r ActionRow
		var leaf, hash, state string
		if err := rows.Scan(&r.LeafIndex, &r.Time, &r.Actor, &r.Origin, &r.Verb, &r.Resource, &r.Outcome, &r.Detail,
			&r.OrderID, &r.Targets, &leaf, &hash, &state, &r.StoredAt); err != nil {
			return fmt.Errorf("scan audit action: %w", err)
		}
		r.Leaf, r.LeafHash, r.State = []byte(leaf), [32]byte([]byte(hash)), []byte(state)
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}
