package collector

import (
	"context"
	"fmt"
	"time"

	"github.com/weft-sh/weft/internal/chstore"
)

const queueHealthColumns = `ts, group_id, topic, partition, start_offset, end_offset, committed_offset,
	lag_messages, lag_seconds, commit_age_seconds, produce_rate, group_state, is_dlq`

// insertQueueHealth stores one sample in the queue_health time series.
// A failure is retryable; the monitor does not retry it (the next sample
// follows within an interval) but counts it.
func insertQueueHealth(ctx context.Context, s *chstore.Store, ts time.Time, rows []healthRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := s.Conn().PrepareBatch(ctx, "INSERT INTO "+s.Table("queue_health")+" ("+queueHealthColumns+")")
	if err != nil {
		return fmt.Errorf("prepare queue_health batch: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	ts = ts.UTC()
	for _, r := range rows {
		if err := b.Append(ts, r.Group, r.Topic, r.Partition, r.Start, r.End, r.Committed,
			r.Lag, r.LagSeconds, r.CommitAge, r.ProduceRate, r.State, r.DLQ); err != nil {
			return fmt.Errorf("append queue_health row: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d queue_health rows: %w", len(rows), err)
	}
	return nil
}

// LatestQueueHealth reads back the newest stored sample (all rows carrying
// the newest ts), as `weft lag --stored` shows it. A database without
// samples gives a report with no groups and no topics.
func LatestQueueHealth(ctx context.Context, s *chstore.Store) (LagReport, error) {
	tbl := s.Table("queue_health")
	rows, err := s.Conn().Query(ctx, "SELECT "+queueHealthColumns+" FROM "+tbl+
		" WHERE ts = (SELECT max(ts) FROM "+tbl+")")
	if err != nil {
		return LagReport{}, fmt.Errorf("read queue_health: %w", err)
	}
	defer rows.Close()
	var (
		out []healthRow
		ts  time.Time
	)
	for rows.Next() {
		var r healthRow
		if err := rows.Scan(&ts, &r.Group, &r.Topic, &r.Partition, &r.Start, &r.End, &r.Committed,
			&r.Lag, &r.LagSeconds, &r.CommitAge, &r.ProduceRate, &r.State, &r.DLQ); err != nil {
			return LagReport{}, fmt.Errorf("read queue_health: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return LagReport{}, fmt.Errorf("read queue_health: %w", err)
	}
	return reportFromRows(ts, out), nil
}

// storedCommits reads, for every group partition sampled in the last day,
// its newest committed offset and since when it stood there.
func storedCommits(ctx context.Context, s *chstore.Store) (map[groupTP]commitSeen, error) {
	rows, err := s.Conn().Query(ctx, `
		SELECT group_id, topic, partition,
		       argMax(committed_offset, ts)   AS committed,
		       max(ts)                        AS last_ts,
		       argMax(commit_age_seconds, ts) AS age
		FROM `+s.Table("queue_health")+`
		WHERE group_id != '' AND ts > now64(3) - INTERVAL 1 DAY
		GROUP BY group_id, topic, partition`)
	if err != nil {
		return nil, fmt.Errorf("read stored commits: %w", err)
	}
	defer rows.Close()
	out := map[groupTP]commitSeen{}
	for rows.Next() {
		var (
			k      groupTP
			off    int64
			last   time.Time
			ageSec float64
		)
		if err := rows.Scan(&k.group, &k.topic, &k.partition, &off, &last, &ageSec); err != nil {
			return nil, fmt.Errorf("read stored commits: %w", err)
		}
		out[k] = commitSeen{offset: off, since: last.Add(-time.Duration(ageSec * float64(time.Second)))}
	}
	return out, rows.Err()
}
