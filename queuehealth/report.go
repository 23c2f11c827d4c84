package queuehealth

import (
	"cmp"
	"slices"
	"time"
)

// Report is one queue-health sample: every measured consumer group's lag
// per topic, worst first, and every monitored topic's depth and produce rate.
type Report struct {
	// At is when the offsets were read.
	At time.Time `json:"at"`
	// Groups holds one entry per group and topic, worst first: highest
	// lag in seconds, then in messages.
	Groups []GroupLag `json:"groups"`
	// Topics holds the monitored topics, dead-letter topics first, then by depth.
	Topics []TopicHealth `json:"topics"`
}

// GroupLag is one consumer group's lag on one topic.
type GroupLag struct {
	Group string `json:"group"`
	// State is the group's state: Stable, Empty (no member: nobody consumes), …
	State string `json:"state"`
	// Members is how many members the group had; -1 when unknown.
	Members int32  `json:"members"`
	Topic   string `json:"topic"`
	DLQ     bool   `json:"dlq"`
	// LagMessages is the sum over partitions of end offset − committed offset
	// (− start offset where the group has not committed).
	LagMessages int64 `json:"lag_messages"`
	// LagSeconds is the largest partition lag in seconds: the age of the
	// oldest unconsumed record. -1 when it could not be read.
	LagSeconds float64 `json:"lag_seconds"`
	// CommitAgeSeconds is how long ago the group's committed offset last
	// moved on any partition of any topic (counted from weft's first sample
	// of the group when it never moved since).
	CommitAgeSeconds float64        `json:"commit_age_seconds"`
	Partitions       []PartitionLag `json:"partitions"`
}

// PartitionLag is one group's lag on one partition.
type PartitionLag struct {
	Partition   int32 `json:"partition"`
	StartOffset int64 `json:"start_offset"`
	EndOffset   int64 `json:"end_offset"`
	// CommittedOffset is -1 when the group has not committed on the partition.
	CommittedOffset  int64   `json:"committed_offset"`
	LagMessages      int64   `json:"lag_messages"`
	LagSeconds       float64 `json:"lag_seconds"`
	CommitAgeSeconds float64 `json:"commit_age_seconds"`
}

// TopicHealth is one monitored topic's depth and produce rate.
type TopicHealth struct {
	Topic string `json:"topic"`
	DLQ   bool   `json:"dlq"`
	// DepthMessages is the records retained: end offset − start offset, summed.
	DepthMessages int64 `json:"depth_messages"`
	// ProduceRate is messages per second from the end-offset change since
	// the previous sample; -1 on the first sample.
	ProduceRate float64 `json:"produce_rate"`
	// OldestAgeSeconds is the age of the oldest retained record, measured
	// on dead-letter topics only (-1 elsewhere, or when it could not be read).
	OldestAgeSeconds float64           `json:"oldest_age_seconds"`
	Partitions       []PartitionHealth `json:"partitions"`
}

// PartitionHealth is one partition of a monitored topic.
type PartitionHealth struct {
	Partition        int32   `json:"partition"`
	StartOffset      int64   `json:"start_offset"`
	EndOffset        int64   `json:"end_offset"`
	DepthMessages    int64   `json:"depth_messages"`
	ProduceRate      float64 `json:"produce_rate"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
}

// healthRow is one row of the queue_health table: a group's partition, or,
// with Group "", a topic's partition (Lag is then its depth and LagSeconds
// the age of its oldest record, on dead-letter topics).
type healthRow struct {
	Group                 string
	Topic                 string
	Partition             int32
	Start, End, Committed int64
	Lag                   int64
	LagSeconds, CommitAge float64
	ProduceRate           float64
	State                 string
	Members               int32 // -1: unknown
	DLQ                   bool
}

// ageSeconds is now − ts, never negative (a producer's clock may run ahead).
func ageSeconds(now, ts time.Time) float64 {
	return max(now.Sub(ts).Seconds(), 0)
}

// reportFromRows aggregates rows, live or read back from ClickHouse, into a report.
func reportFromRows(now time.Time, rows []healthRow) Report {
	rep := Report{At: now, Groups: []GroupLag{}, Topics: []TopicHealth{}}
	groups := map[[2]string]int{}
	topics := map[string]int{}
	commitAge := map[string]float64{} // group → youngest commit age over committed partitions
	firstSeen := map[string]float64{}
	for _, r := range rows {
		if r.Group == "" {
			i, ok := topics[r.Topic]
			if !ok {
				i = len(rep.Topics)
				topics[r.Topic] = i
				rep.Topics = append(rep.Topics, TopicHealth{Topic: r.Topic, DLQ: r.DLQ, OldestAgeSeconds: -1})
			}
			t := &rep.Topics[i]
			t.DepthMessages += r.Lag
			t.OldestAgeSeconds = max(t.OldestAgeSeconds, r.LagSeconds)
			t.Partitions = append(t.Partitions, PartitionHealth{Partition: r.Partition, StartOffset: r.Start, EndOffset: r.End,
				DepthMessages: r.Lag, ProduceRate: r.ProduceRate, OldestAgeSeconds: r.LagSeconds})
			continue
		}
		key := [2]string{r.Group, r.Topic}
		i, ok := groups[key]
		if !ok {
			i = len(rep.Groups)
			groups[key] = i
			rep.Groups = append(rep.Groups, GroupLag{Group: r.Group, State: r.State, Members: r.Members, Topic: r.Topic, DLQ: r.DLQ})
		}
		g := &rep.Groups[i]
		g.LagMessages += r.Lag
		g.Partitions = append(g.Partitions, PartitionLag{Partition: r.Partition, StartOffset: r.Start, EndOffset: r.End,
			CommittedOffset: r.Committed, LagMessages: r.Lag, LagSeconds: r.LagSeconds, CommitAgeSeconds: r.CommitAge})
		if r.Committed >= 0 {
			if a, ok := commitAge[r.Group]; !ok || r.CommitAge < a {
				commitAge[r.Group] = r.CommitAge
			}
		} else if a, ok := firstSeen[r.Group]; !ok || r.CommitAge < a {
			firstSeen[r.Group] = r.CommitAge
		}
	}
	for i := range rep.Groups {
		g := &rep.Groups[i]
		if a, ok := commitAge[g.Group]; ok {
			g.CommitAgeSeconds = a
		} else {
			g.CommitAgeSeconds = firstSeen[g.Group]
		}
		unknown := false
		for _, p := range g.Partitions {
			if p.LagSeconds < 0 {
				unknown = true
			}
			g.LagSeconds = max(g.LagSeconds, p.LagSeconds)
		}
		if unknown && g.LagSeconds == 0 {
			g.LagSeconds = -1 // lagging, but by how long could not be read
		}
		slices.SortFunc(g.Partitions, func(a, b PartitionLag) int { return cmp.Compare(a.Partition, b.Partition) })
	}
	for i := range rep.Topics {
		t := &rep.Topics[i]
		for _, p := range t.Partitions {
			if p.ProduceRate < 0 {
				t.ProduceRate = -1
				break
			}
			t.ProduceRate += p.ProduceRate
		}
		slices.SortFunc(rep.Topics[i].Partitions, func(a, b PartitionHealth) int { return cmp.Compare(a.Partition, b.Partition) })
	}
	slices.SortFunc(rep.Groups, func(a, b GroupLag) int {
		return cmp.Or(cmp.Compare(b.LagSeconds, a.LagSeconds), cmp.Compare(b.LagMessages, a.LagMessages),
			cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic))
	})
	slices.SortFunc(rep.Topics, func(a, b TopicHealth) int {
		return cmp.Or(cmpBool(b.DLQ, a.DLQ), cmp.Compare(b.DepthMessages, a.DepthMessages), cmp.Compare(a.Topic, b.Topic))
	})
	return rep
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}
