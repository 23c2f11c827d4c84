package queuehealth

import (
	"context"
	"time"

	"github.com/weft-sh/weft/internal/chstore"
)

// commitsKept is how far back a starting monitor looks in queue_health for
// where each group's commits stood.
const commitsKept = 24 * time.Hour

// LatestStored reads back the newest sample stored in queue_health, as
// `weft lag --stored` shows it. A database without samples gives a report
// with no groups and no topics.
func LatestStored(ctx context.Context, s *chstore.Store) (Report, error) {
	ts, stored, err := s.LatestQueueHealth(ctx)
	if err != nil {
		return Report{}, err
	}
	rows := make([]healthRow, len(stored))
	for i, r := range stored {
		rows[i] = healthRow{Group: r.Group, Topic: r.Topic, Partition: r.Partition,
			Start: r.StartOffset, End: r.EndOffset, Committed: r.CommittedOffset, Lag: r.LagMessages,
			LagSeconds: r.LagSeconds, CommitAge: r.CommitAgeSeconds, ProduceRate: r.ProduceRate,
			State: r.GroupState, Members: r.Members, DLQ: r.DLQ}
	}
	return reportFromRows(ts, rows), nil
}

// store appends one sample to queue_health. A failure is retryable; the
// monitor does not retry it (the next sample follows within an interval)
// but counts it.
func store(ctx context.Context, s *chstore.Store, at time.Time, rows []healthRow) error {
	out := make([]chstore.QueueHealthRow, len(rows))
	for i, r := range rows {
		out[i] = chstore.QueueHealthRow{Group: r.Group, Topic: r.Topic, Partition: r.Partition,
			StartOffset: r.Start, EndOffset: r.End, CommittedOffset: r.Committed, LagMessages: r.Lag,
			LagSeconds: r.LagSeconds, CommitAgeSeconds: r.CommitAge, ProduceRate: r.ProduceRate,
			GroupState: r.State, Members: r.Members, DLQ: r.DLQ}
	}
	return s.InsertQueueHealth(ctx, at, out)
}

// storedCommits reads, for every group partition sampled in the last day,
// its newest committed offset and since when it stood there.
func storedCommits(ctx context.Context, s *chstore.Store) (map[groupTP]commitSeen, error) {
	stored, err := s.QueueHealthCommits(ctx, commitsKept)
	if err != nil {
		return nil, err
	}
	out := make(map[groupTP]commitSeen, len(stored))
	for _, c := range stored {
		k := groupTP{c.Group, tp{c.Topic, c.Partition}}
		out[k] = commitSeen{offset: c.CommittedOffset,
			since: c.SampledAt.Add(-time.Duration(c.CommitAgeSeconds * float64(time.Second)))}
	}
	return out, nil
}
