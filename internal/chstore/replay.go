package chstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Replay jobs and their items (migrations/016_replay.sql, docs/replay.md).

// ReplayJobRow is one version of a replay job.
type ReplayJobRow struct {
	JobID, Kind, Resource, Actor, Origin string
	CreatedAt, UpdatedAt                 time.Time
	Status                               string
	Planned, Cursor, Produced, Missing   uint64
	Rate                                 uint32
	// ScanFrom maps a target "topic/partition" to the offset a resume
	// reads it from.
	ScanFrom map[string]int64
	Detail   string
	// Version orders the versions of a job: the highest is the job.
	Version uint64
}

// ReplayItemRow is one record of a job's plan.
type ReplayItemRow struct {
	Seq       uint64
	Topic     string
	Partition int32
	Offset    int64
	Target    string
}

// InsertReplayJob stores a version of a job.
func (s *Store) InsertReplayJob(ctx context.Context, j ReplayJobRow) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.Table("replay_jobs")+
		" (job_id, kind, resource, actor, origin, created_at, updated_at, status, planned, cursor, produced, missing, rate, scan_from, detail, version)")
	if err != nil {
		return fmt.Errorf("prepare replay job insert: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	scan := j.ScanFrom
	if scan == nil {
		scan = map[string]int64{}
	}
	if err := b.Append(j.JobID, j.Kind, j.Resource, j.Actor, j.Origin, j.CreatedAt, j.UpdatedAt, j.Status, j.Planned,
		j.Cursor, j.Produced, j.Missing, j.Rate, scan, j.Detail, j.Version); err != nil {
		return fmt.Errorf("append replay job %s: %w", j.JobID, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("store replay job %s: %w", j.JobID, err)
	}
	return nil
}

// ReplayJob reads the newest version of a job; found is false when no
// job has that id.
func (s *Store) ReplayJob(ctx context.Context, id string) (j ReplayJobRow, found bool, err error) {
	rows, err := s.conn.Query(ctx, `SELECT job_id, kind, resource, actor, origin, created_at, updated_at, status, planned,
       cursor, produced, missing, rate, scan_from, detail, version
FROM `+s.Table("replay_jobs")+` FINAL WHERE job_id = ? ORDER BY version DESC LIMIT 1`, id)
	if err != nil {
		return j, false, fmt.Errorf("read replay job %s: %w", id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return j, false, rows.Err()
	}
	if err := rows.Scan(&j.JobID, &j.Kind, &j.Resource, &j.Actor, &j.Origin, &j.CreatedAt, &j.UpdatedAt, &j.Status, &j.Planned,
		&j.Cursor, &j.Produced, &j.Missing, &j.Rate, &j.ScanFrom, &j.Detail, &j.Version); err != nil {
		return j, false, fmt.Errorf("scan replay job %s: %w", id, err)
	}
	return j, true, rows.Err()
}

// KnownReplayJobs returns which of ids are replay jobs weft planned.
func (s *Store) KnownReplayJobs(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT job_id FROM "+s.Table("replay_jobs")+" WHERE job_id IN ?", ids)
	if err != nil {
		return nil, fmt.Errorf("read replay jobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan replay job: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// replayItemsBatch bounds one insert of a job's items.
const replayItemsBatch = 50_000

// InsertReplayItems stores a job's plan, in bounded batches, each with a
// deduplication token of its own so a retried insert stores it once.
func (s *Store) InsertReplayItems(ctx context.Context, jobID string, items []ReplayItemRow) error {
	for start := 0; start < len(items); start += replayItemsBatch {
		part := items[start:min(start+replayItemsBatch, len(items))]
		token := fmt.Sprintf("replay:%s:%d", jobID, part[0].Seq)
		b, err := s.conn.PrepareBatch(dedupContext(ctx, token), "INSERT INTO "+s.Table("replay_items")+
			" (job_id, seq, topic, partition, offset, target)")
		if err != nil {
			return fmt.Errorf("prepare replay items insert: %w", err)
		}
		for _, it := range part {
			if err := b.Append(jobID, it.Seq, it.Topic, it.Partition, it.Offset, it.Target); err != nil {
				_ = b.Abort()
				return fmt.Errorf("append replay item %d of %s: %w", it.Seq, jobID, err)
			}
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("store replay items of %s: %w", jobID, err)
		}
	}
	return nil
}

// ReplayItems reads up to limit of a job's items from seq from on, in
// seq order: a page, so no query stays open while a job produces.
func (s *Store) ReplayItems(ctx context.Context, jobID string, from uint64, limit int) ([]ReplayItemRow, error) {
	rows, err := s.conn.Query(ctx, `SELECT seq, topic, partition, offset, target FROM `+s.Table("replay_items")+`
WHERE job_id = ? AND seq >= ? ORDER BY seq LIMIT 1 BY seq LIMIT ?`, jobID, from, limit)
	if err != nil {
		return nil, fmt.Errorf("read replay items of %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []ReplayItemRow
	for rows.Next() {
		var it ReplayItemRow
		if err := rows.Scan(&it.Seq, &it.Topic, &it.Partition, &it.Offset, &it.Target); err != nil {
			return nil, fmt.Errorf("scan replay item: %w", err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// OrderRecord is where one stored event of an order was read.
type OrderRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Type      string
	EventTime time.Time
}

// OrderRecords reads where each stored event of an order was read, each
// record once, oldest event first.
func (s *Store) OrderRecords(ctx context.Context, orderID string) ([]OrderRecord, error) {
	rows, err := s.conn.Query(ctx, `SELECT topic, partition, offset, event_type, event_time FROM `+s.Table("events")+`
WHERE order_id = ?
ORDER BY event_time, topic, partition, offset
LIMIT 1 BY topic, partition, offset`, orderID)
	if err != nil {
		return nil, fmt.Errorf("read the records of order %s: %w", orderID, err)
	}
	defer rows.Close()
	var out []OrderRecord
	for rows.Next() {
		var r OrderRecord
		if err := rows.Scan(&r.Topic, &r.Partition, &r.Offset, &r.Type, &r.EventTime); err != nil {
			return nil, fmt.Errorf("scan record of order %s: %w", orderID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReplayTargets returns the topics a job's items go to, sorted.
func (s *Store) ReplayTargets(ctx context.Context, jobID string) ([]string, error) {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT target FROM "+s.Table("replay_items")+" WHERE job_id = ? ORDER BY target", jobID)
	if err != nil {
		return nil, fmt.Errorf("read the targets of %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("scan target of %s: %w", jobID, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RangeQuery selects a topic's stored records by the time Kafka stamped
// them, for a replay of a time range (docs/replay.md).
type RangeQuery struct {
	Topic string
	// From and To bound the records' Kafka timestamps: From ≤ t < To.
	From, To time.Time
	// Types, Services and OrderIDs keep the records of these event types,
	// emitting services and orders; none keeps every one.
	Types, Services, OrderIDs []string
	// Limit keeps the oldest Limit records (0: all).
	Limit int
}

// RangeRecord is one stored record of a range.
type RangeRecord struct {
	Partition  int32
	Offset     int64
	Type       string
	RecordTime time.Time
}

// rangeOrderChunk bounds the order ids one query names, so its text stays
// well under ClickHouse's max_query_size.
const rangeOrderChunk = 2000

// RangeRecords reads where each stored record of q.Topic in the range
// was read, each record once, oldest first (then by partition and
// offset).
func (s *Store) RangeRecords(ctx context.Context, q RangeQuery) ([]RangeRecord, error) {
	where := "topic = ? AND record_time >= ? AND record_time < ?"
	args := []any{q.Topic, q.From, q.To}
	if len(q.Types) > 0 {
		where += " AND event_type IN ?"
		args = append(args, q.Types)
	}
	if len(q.Services) > 0 {
		where += " AND service IN ?"
		args = append(args, q.Services)
	}
	limit := ""
	if q.Limit > 0 {
		limit = fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	query := func(where string, args []any) ([]RangeRecord, error) {
		rows, err := s.conn.Query(ctx, `SELECT partition, offset, any(event_type), any(record_time) FROM `+s.Table("events")+`
WHERE `+where+`
GROUP BY partition, offset
ORDER BY any(record_time), partition, offset`+limit, args...)
		if err != nil {
			return nil, fmt.Errorf("read the records of %s from %s to %s: %w", q.Topic, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), err)
		}
		defer rows.Close()
		var out []RangeRecord
		for rows.Next() {
			var r RangeRecord
			if err := rows.Scan(&r.Partition, &r.Offset, &r.Type, &r.RecordTime); err != nil {
				return nil, fmt.Errorf("scan record of %s: %w", q.Topic, err)
			}
			out = append(out, r)
		}
		return out, rows.Err()
	}
	if len(q.OrderIDs) == 0 {
		return query(where, args)
	}
	// Many order ids: a query per chunk, merged. A record of two orders
	// (a batch event) may come back from two chunks: kept once.
	seen := map[[2]int64]bool{}
	var out []RangeRecord
	for start := 0; start < len(q.OrderIDs); start += rangeOrderChunk {
		ids := q.OrderIDs[start:min(start+rangeOrderChunk, len(q.OrderIDs))]
		got, err := query(where+" AND order_id IN ?", append(slices.Clone(args), ids))
		if err != nil {
			return nil, err
		}
		for _, r := range got {
			if k := [2]int64{int64(r.Partition), r.Offset}; !seen[k] {
				seen[k] = true
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b RangeRecord) int {
		return cmp.Or(a.RecordTime.Compare(b.RecordTime), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// ReplayJobStates counts the replay jobs by their status now (each job's
// newest version).
func (s *Store) ReplayJobStates(ctx context.Context) (map[string]uint64, error) {
	rows, err := s.conn.Query(ctx, `SELECT status, count() FROM (
    SELECT job_id, argMax(status, version) AS status FROM `+s.Table("replay_jobs")+` GROUP BY job_id
) GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count replay jobs by status: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var status string
		var n uint64
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("scan replay job count: %w", err)
		}
		out[status] = n
	}
	return out, rows.Err()
}
