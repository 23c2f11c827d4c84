package queuehealth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLagRows: lag in messages and seconds per partition from offsets and
// record timestamps, the edge cases of committed offsets, produce rates and
// commit ages across samples, and the report's worst-first order.
func TestLagRows(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p0, p1, d0 := tp{"orders", 0}, tp{"orders", 1}, tp{"orders.dlq", 0}
	read := func(at time.Time, ends map[tp]int64, commits map[tp]int64) *offsets {
		return &offsets{
			at:    at,
			dlq:   map[string]bool{"orders": false, "orders.dlq": true},
			start: map[tp]int64{p0: 10, p1: 0, d0: 0},
			end:   ends,
			groups: map[string]*groupOffsets{
				"billing":  {state: "Empty", committed: commits, topics: map[string]bool{"orders": true}},
				"shipping": {state: "Stable", committed: map[tp]int64{p0: 100, p1: 50}, topics: map[string]bool{"orders": true}},
			},
		}
	}
	h := newHistory()
	// billing committed below the start offset on p0 (retention deleted
	// what it had not read) and never on p1.
	pr := h.rows(read(t0, map[tp]int64{p0: 100, p1: 50, d0: 2}, map[tp]int64{p0: 5}))
	assert.ElementsMatch(t, []at{{p0, 10}, {p1, 0}, {d0, 0}}, pr.want(), "shipping is caught up; billing reads from the start on both")
	ts := map[at]time.Time{{p0, 10}: t0.Add(-time.Minute), {d0, 0}: t0.Add(-time.Hour)} // p1's record not read in time
	rep := reportFromRows(t0, pr.fill(ts))

	require.Len(t, rep.Groups, 2)
	b := rep.Groups[0]
	assert.Equal(t, "billing", b.Group, "worst first")
	assert.Equal(t, int64(90+50), b.LagMessages)
	assert.Equal(t, 60.0, b.LagSeconds)
	assert.Equal(t, []PartitionLag{
		{Partition: 0, StartOffset: 10, EndOffset: 100, CommittedOffset: 5, LagMessages: 90, LagSeconds: 60},
		{Partition: 1, StartOffset: 0, EndOffset: 50, CommittedOffset: -1, LagMessages: 50, LagSeconds: -1},
	}, b.Partitions)
	s := rep.Groups[1]
	assert.Equal(t, GroupLag{Group: "shipping", State: "Stable", Topic: "orders", Partitions: s.Partitions}, s)
	require.Len(t, rep.Topics, 2)
	assert.Equal(t, TopicHealth{Topic: "orders.dlq", DLQ: true, DepthMessages: 2, ProduceRate: -1, OldestAgeSeconds: 3600,
		Partitions: []PartitionHealth{{Partition: 0, EndOffset: 2, DepthMessages: 2, ProduceRate: -1, OldestAgeSeconds: 3600}}}, rep.Topics[0])
	assert.Equal(t, int64(140), rep.Topics[1].DepthMessages)
	assert.Equal(t, -1.0, rep.Topics[1].OldestAgeSeconds, "measured on dead-letter topics only")

	// Ten seconds later: 20 more records on p0; billing still stuck, shipping
	// moved on p0 only; a committed offset past the end counts as no lag.
	t1 := t0.Add(10 * time.Second)
	o := read(t1, map[tp]int64{p0: 120, p1: 50, d0: 2}, map[tp]int64{p0: 5})
	o.groups["shipping"].committed = map[tp]int64{p0: 130, p1: 50}
	pr = h.rows(o)
	rep = reportFromRows(t1, pr.fill(map[at]time.Time{{p0, 10}: t0.Add(-time.Minute), {p1, 0}: t0.Add(-2 * time.Minute), {d0, 0}: t0.Add(-time.Hour)}))
	b, s = rep.Groups[0], rep.Groups[1]
	assert.Equal(t, "billing", b.Group)
	assert.Equal(t, 130.0, b.LagSeconds, "p1's oldest unconsumed record, two minutes and ten seconds old")
	assert.Equal(t, 70.0, b.Partitions[0].LagSeconds, "stuck: ten seconds older than before")
	assert.Equal(t, 10.0, b.CommitAgeSeconds, "its commit did not move since the first sample")
	assert.Equal(t, "Empty", b.State)
	assert.Equal(t, int64(0), s.LagMessages)
	assert.Equal(t, 0.0, s.CommitAgeSeconds, "moved on p0")
	assert.Equal(t, 10.0, s.Partitions[1].CommitAgeSeconds)
	assert.Equal(t, 2.0, rep.Topics[1].ProduceRate, "20 records in 10 s")
	assert.Equal(t, 0.0, rep.Topics[0].ProduceRate)
}

// A restarted monitor continues a commit age from the stored samples when
// the committed offset is still the stored one, and restarts it otherwise.
func TestLagRowsSeededCommitAge(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p0, p1 := tp{"orders", 0}, tp{"orders", 1}
	h := newHistory()
	h.seeded = map[groupTP]commitSeen{
		{"billing", p0}: {offset: 7, since: t0.Add(-time.Hour)},
		{"billing", p1}: {offset: 3, since: t0.Add(-time.Hour)},
	}
	pr := h.rows(&offsets{at: t0, dlq: map[string]bool{"orders": false},
		start: map[tp]int64{p0: 0, p1: 0}, end: map[tp]int64{p0: 10, p1: 10},
		groups: map[string]*groupOffsets{"billing": {state: "Empty", committed: map[tp]int64{p0: 7, p1: 4}, topics: map[string]bool{"orders": true}}}})
	rows := pr.fill(nil)
	require.Len(t, rows, 4)
	assert.Equal(t, 3600.0, rows[2].CommitAge)
	assert.Equal(t, 0.0, rows[3].CommitAge, "p1 moved while weft was down")
	assert.Equal(t, -1.0, rows[2].LagSeconds, "timestamps not read")
}

// Two groups standing at the same position need its record once: the
// sample counts the timestamps it read against distinct records.
func TestLagRowsSharedPosition(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p0 := tp{"orders", 0}
	at0 := at{p0, 7}
	pr := newHistory().rows(&offsets{at: t0, dlq: map[string]bool{"orders": false},
		start: map[tp]int64{p0: 0}, end: map[tp]int64{p0: 10},
		groups: map[string]*groupOffsets{
			"billing":  {state: "Stable", committed: map[tp]int64{p0: 7}, topics: map[string]bool{"orders": true}},
			"shipping": {state: "Stable", committed: map[tp]int64{p0: 7}, topics: map[string]bool{"orders": true}},
		}})
	assert.Equal(t, []at{at0}, pr.want())
	rows := pr.fill(map[at]time.Time{at0: t0.Add(-time.Second)})
	require.Len(t, rows, 3)
	assert.Equal(t, []float64{1, 1}, []float64{rows[1].LagSeconds, rows[2].LagSeconds})
}
