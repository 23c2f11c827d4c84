package queuehealth

import (
	"maps"
	"slices"
	"time"
)

// history is what the monitor remembers between samples: end offsets for
// produce rates, and when each group's committed offsets last moved.
type history struct {
	ends    map[tp]endSeen
	commits map[groupTP]commitSeen
	// seeded are commit positions read back from ClickHouse at start, so a
	// restart of weft does not make a stalled group look freshly committed.
	seeded map[groupTP]commitSeen
}

type groupTP struct {
	group string
	tp
}

type endSeen struct {
	offset int64
	at     time.Time
}

type commitSeen struct {
	offset int64 // -1: never committed
	since  time.Time
}

func newHistory() *history {
	return &history{ends: map[tp]endSeen{}, commits: map[groupTP]commitSeen{}, seeded: map[groupTP]commitSeen{}}
}

// pendingRows are the rows of a sample before the timestamps are read:
// pos[i] is the record whose age is rows[i].LagSeconds (offset -1: none).
type pendingRows struct {
	at    time.Time
	rows  []healthRow
	pos   []at
	bound map[tp]int64 // where reading stops: the last stable offset
}

// rows turns one read of the cluster into table rows, and updates the
// history with it.
func (h *history) rows(o *offsets) *pendingRows {
	pr := &pendingRows{at: o.at, bound: map[tp]int64{}}
	parts := map[string][]int32{}
	for p := range o.end {
		if _, ok := o.start[p]; ok {
			parts[p.topic] = append(parts[p.topic], p.partition)
		}
	}
	for _, ps := range parts {
		slices.Sort(ps)
	}
	rates := map[tp]float64{}
	ends := make(map[tp]endSeen, len(o.end))
	for _, topic := range slices.Sorted(maps.Keys(parts)) {
		for _, part := range parts[topic] {
			p := tp{topic, part}
			start, end := o.start[p], o.end[p]
			rate := -1.0
			if prev, ok := h.ends[p]; ok && end >= prev.offset && o.at.After(prev.at) {
				rate = float64(end-prev.offset) / o.at.Sub(prev.at).Seconds()
			}
			rates[p] = rate
			ends[p] = endSeen{end, o.at}
			pr.bound[p] = end
			if s, ok := o.stable[p]; ok && s < end {
				pr.bound[p] = s
			}
			r := healthRow{Topic: topic, Partition: part, Start: start, End: end, Committed: -1,
				Lag: max(end-start, 0), LagSeconds: -1, ProduceRate: rate, Members: -1, DLQ: o.dlq[topic]}
			pos := at{p, -1}
			if r.DLQ {
				r.LagSeconds = 0
				if r.Lag > 0 {
					pos.offset = start
				}
			}
			pr.add(r, pos)
		}
	}
	h.ends = ends

	commits := map[groupTP]commitSeen{}
	for _, group := range slices.Sorted(maps.Keys(o.groups)) {
		g := o.groups[group]
		for _, topic := range slices.Sorted(maps.Keys(g.topics)) {
			for _, part := range parts[topic] {
				p := tp{topic, part}
				start, end := o.start[p], o.end[p]
				r := healthRow{Group: group, Topic: topic, Partition: part, Start: start, End: end, Committed: -1,
					ProduceRate: rates[p], State: g.state, Members: g.members, DLQ: o.dlq[topic]}
				from := start
				if c, ok := g.committed[p]; ok {
					r.Committed = c
					from = max(c, start) // below start: retention deleted what it had not read
				}
				r.Lag = max(end-from, 0)
				key := groupTP{group, p}
				seen, ok := h.commits[key]
				if !ok {
					seen = commitSeen{r.Committed, o.at}
					if s, ok := h.seeded[key]; ok && s.offset == r.Committed && s.since.Before(o.at) {
						seen = s
					}
				} else if seen.offset != r.Committed {
					seen = commitSeen{r.Committed, o.at}
				}
				commits[key] = seen
				r.CommitAge = o.at.Sub(seen.since).Seconds()
				pos := at{p, -1}
				if r.Lag > 0 {
					pos.offset = from
				}
				pr.add(r, pos)
			}
		}
	}
	h.commits = commits
	h.seeded = map[groupTP]commitSeen{} // used once, at the first sample
	return pr
}

func (pr *pendingRows) add(r healthRow, pos at) {
	pr.rows = append(pr.rows, r)
	pr.pos = append(pr.pos, pos)
}

// want lists the records whose timestamps the sample needs, each once:
// groups that stand at the same position share its record.
func (pr *pendingRows) want() []at {
	var w []at
	seen := map[at]bool{}
	for _, p := range pr.pos {
		if p.offset >= 0 && !seen[p] {
			seen[p] = true
			w = append(w, p)
		}
	}
	return w
}

// fill sets each lagging row's LagSeconds from the timestamps read: the age
// of the oldest unconsumed (or, on a topic row, retained) record, -1 when it
// was not read.
func (pr *pendingRows) fill(times map[at]time.Time) []healthRow {
	for i, p := range pr.pos {
		switch ts, ok := times[p]; {
		case p.offset < 0:
			if pr.rows[i].Group != "" {
				pr.rows[i].LagSeconds = 0
			}
		case ok && ts.IsZero(): // nothing but markers or an open transaction
			pr.rows[i].LagSeconds = 0
		case ok:
			pr.rows[i].LagSeconds = ageSeconds(pr.at, ts)
		default:
			pr.rows[i].LagSeconds = -1
		}
	}
	return pr.rows
}
