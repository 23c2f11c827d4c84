package chstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// QueueHealthRow is one row of queue_health (migrations 005 and 006): a
// consumer group's partition or, with Group "", a monitored topic's
// partition, whose LagMessages is then the partition's depth and LagSeconds
// the age of its oldest record (on dead-letter topics).
type QueueHealthRow struct {
	Group            string
	Topic            string
	Partition        int32
	StartOffset      int64
	EndOffset        int64
	CommittedOffset  int64 // -1: never committed
	LagMessages      int64
	LagSeconds       float64 // -1: unknown
	CommitAgeSeconds float64
	ProduceRate      float64 // -1: unknown
	GroupState       string
	// Members is how many members the group had; -1: unknown (topic rows,
	// a group not described, rows stored before migration 015).
	Members int32
	DLQ     bool
}

// QueueHealthCommit is where a group's committed offset on one partition
// stood at the newest sample that measured it.
type QueueHealthCommit struct {
	Group     string
	Topic     string
	Partition int32
	// CommittedOffset is the committed offset at the newest sample; -1: never committed.
	CommittedOffset int64
	// SampledAt is when that sample was taken.
	SampledAt time.Time
	// CommitAgeSeconds is how long the offset had stood still by then.
	CommitAgeSeconds float64
}

const queueHealthColumns = `ts, group_id, topic, partition, start_offset, end_offset, committed_offset,
	lag_messages, lag_seconds, commit_age_seconds, produce_rate, group_state, members, is_dlq`

// InsertQueueHealth appends one queue-health sample, taken at ts. A failure
// is retryable.
func (s *Store) InsertQueueHealth(ctx context.Context, ts time.Time, rows []QueueHealthRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.Table("queue_health")+" ("+queueHealthColumns+")")
	if err != nil {
		return fmt.Errorf("prepare queue_health batch: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	ts = ts.UTC()
	for _, r := range rows {
		if err := b.Append(ts, r.Group, r.Topic, r.Partition, r.StartOffset, r.EndOffset, r.CommittedOffset,
			r.LagMessages, r.LagSeconds, r.CommitAgeSeconds, r.ProduceRate, r.GroupState, r.Members, r.DLQ); err != nil {
			return fmt.Errorf("append queue_health row: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d queue_health rows: %w", len(rows), err)
	}
	return nil
}

// LatestQueueHealth reads back the newest stored sample: when it was taken
// and every row carrying that time. A table without samples gives the zero
// time and no rows.
func (s *Store) LatestQueueHealth(ctx context.Context) (time.Time, []QueueHealthRow, error) {
	tbl := s.Table("queue_health")
	rows, err := s.conn.Query(ctx, "SELECT "+queueHealthColumns+" FROM "+tbl+
		" WHERE ts = (SELECT max(ts) FROM "+tbl+")")
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("read queue_health: %w", err)
	}
	defer rows.Close()
	var (
		out []QueueHealthRow
		ts  time.Time
	)
	for rows.Next() {
		var r QueueHealthRow
		if err := rows.Scan(&ts, &r.Group, &r.Topic, &r.Partition, &r.StartOffset, &r.EndOffset, &r.CommittedOffset,
			&r.LagMessages, &r.LagSeconds, &r.CommitAgeSeconds, &r.ProduceRate, &r.GroupState, &r.Members, &r.DLQ); err != nil {
			return time.Time{}, nil, fmt.Errorf("read queue_health: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return time.Time{}, nil, fmt.Errorf("read queue_health: %w", err)
	}
	return ts, out, nil
}

// QueueHealthCommits reads, for every group partition sampled within the
// last `within` (by the server's clock), its committed offset and commit
// age at the newest sample.
func (s *Store) QueueHealthCommits(ctx context.Context, within time.Duration) ([]QueueHealthCommit, error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
		"within_ms": strconv.FormatInt(within.Milliseconds(), 10),
	}))
	rows, err := s.conn.Query(ctx, `
		SELECT group_id, topic, partition,
		       argMax(committed_offset, ts)   AS committed,
		       max(ts)                        AS last_ts,
		       argMax(commit_age_seconds, ts) AS age
		FROM `+s.Table("queue_health")+`
		WHERE group_id != '' AND ts > now64(3) - toIntervalMillisecond({within_ms:Int64})
		GROUP BY group_id, topic, partition`)
	if err != nil {
		return nil, fmt.Errorf("read stored commits: %w", err)
	}
	defer rows.Close()
	var out []QueueHealthCommit
	for rows.Next() {
		var c QueueHealthCommit
		if err := rows.Scan(&c.Group, &c.Topic, &c.Partition, &c.CommittedOffset, &c.SampledAt, &c.CommitAgeSeconds); err != nil {
			return nil, fmt.Errorf("read stored commits: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read stored commits: %w", err)
	}
	return out, nil
}

// QueueHealthGroupSeen is the last sample in which a group was seen on a topic.
type QueueHealthGroupSeen struct {
	Group, Topic string
	// LastSeen is the time of that sample; State the group's state then.
	LastSeen time.Time
	State    string
}

// QueueHealthGroupsSeen reads, for each group sampled on one of topics
// within the last `within` (by the server's clock), the last sample that
// saw it there: a group missing from the newest sample is gone since.
func (s *Store) QueueHealthGroupsSeen(ctx context.Context, topics []string, within time.Duration) ([]QueueHealthGroupSeen, error) {
	if len(topics) == 0 {
		return nil, nil
	}
	rows, err := s.conn.Query(ctx, `
		SELECT group_id, topic, max(ts) AS last_ts, argMax(group_state, ts) AS state
		FROM `+s.Table("queue_health")+`
		WHERE group_id != '' AND topic IN ? AND ts > now64(3) - toIntervalMillisecond(?)
		GROUP BY group_id, topic
		ORDER BY group_id, topic`, topics, within.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("read groups seen on %d topics: %w", len(topics), err)
	}
	defer rows.Close()
	var out []QueueHealthGroupSeen
	for rows.Next() {
		var g QueueHealthGroupSeen
		if err := rows.Scan(&g.Group, &g.Topic, &g.LastSeen, &g.State); err != nil {
			return nil, fmt.Errorf("read groups seen: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
