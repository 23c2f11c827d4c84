package consistency

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/queuehealth"
)

// Diagnosis is what the engine needs to say why a stuck order is stuck;
// the wiring passes it from the configuration.
type Diagnosis struct {
	// Services is consistency.services: the consumer groups of each
	// service. A service not listed has the groups whose name equals or
	// starts with its name.
	Services map[string]Service
	// DLQPattern is collector.lag.dlq_pattern: records of an order stored
	// from a topic whose whole name matches it are dead letters. Default
	// queuehealth.DefaultDLQPattern.
	DLQPattern string
	// IgnoreGroups are consumer groups that belong to no service: weft's
	// own tap (collector.group), which reads every topic.
	IgnoreGroups []string
	// SampleMaxAge is how old the newest queue-health sample may be and
	// still count as evidence. Default 3 × 15s + 1m, as for a
	// collector.lag.interval of 15s.
	SampleMaxAge time.Duration
}

// whySettings is Diagnosis compiled.
type whySettings struct {
	groups     groupMap
	dlq        *regexp.Regexp
	dlqPattern string
	maxAge     time.Duration
}

// defaultWhy is the diagnosis of an engine SetDiagnosis was not called on.
func defaultWhy() whySettings {
	return whySettings{groups: groupMap{services: map[string]*regexp.Regexp{}, ignore: map[string]bool{}},
		dlq: regexp.MustCompile("^(?:" + queuehealth.DefaultDLQPattern + ")$"), dlqPattern: queuehealth.DefaultDLQPattern,
		maxAge: 3*15*time.Second + time.Minute}
}

// SetDiagnosis configures how the engine explains stuck orders. It does no
// I/O; call it before the engine is used.
func (e *Engine) SetDiagnosis(d Diagnosis) error {
	w := defaultWhy()
	gm, err := newGroupMap(d.Services, d.IgnoreGroups)
	if err != nil {
		return err
	}
	w.groups = gm
	if d.DLQPattern != "" {
		re, err := regexp.Compile("^(?:" + d.DLQPattern + ")$")
		if err != nil {
			return fmt.Errorf("dead-letter pattern: %w", err)
		}
		w.dlq, w.dlqPattern = re, d.DLQPattern
	}
	if d.SampleMaxAge > 0 {
		w.maxAge = d.SampleMaxAge
	}
	e.why = w
	return nil
}

// whyCase is a stuck order being explained: its trigger and dead letters
// come from its chain (read when missing), or, for a finding explained
// again, from its stored evidence.
type whyCase struct {
	s *StuckOrder
	// trig is the trigger; hasDLQ says whether the chain has records from
	// dead-letter topics (their headers are read for all cases at once).
	trig   *Record
	hasDLQ bool
	dl     *DeadLetter
	// known is true once trig, hasDLQ (or dl) are set.
	known bool
}

// newWhyCase is the case of s with its chain evs.
func (e *Engine) newWhyCase(s StuckOrder, evs []ChainEvent) *whyCase {
	c := &whyCase{s: &s}
	e.readChain(c, evs)
	return c
}

// readChain sets the trigger of c's order from its chain: the latest
// event entering the step it is stuck in, preferring the record from a
// topic that is not a dead-letter topic (the original over its copy).
func (e *Engine) readChain(c *whyCase, evs []ChainEvent) {
	c.known = true
	var on []string
	if w, ok := e.byName[c.s.Workflow]; ok {
		if st, ok := w.Step(c.s.Step); ok {
			on = st.On
		}
	}
	var best *ChainEvent
	bestDLQ := false
	for i := range evs {
		ev := &evs[i]
		dlq := e.why.dlq.MatchString(ev.Topic)
		c.hasDLQ = c.hasDLQ || dlq
		if !slices.Contains(on, ev.Type) {
			continue
		}
		if best == nil || bestDLQ && !dlq || bestDLQ == dlq && (ev.EventTime.After(best.EventTime) ||
			ev.EventTime.Equal(best.EventTime) && ev.Offset > best.Offset) {
			best, bestDLQ = ev, dlq
		}
	}
	if best != nil {
		c.trig = &Record{Topic: best.Topic, Partition: best.Partition, Offset: best.Offset, EventID: best.EventID,
			Type: best.Type, Service: best.Service, EventTime: best.EventTime.UTC()}
	}
}

// loadSnapshot reads the newest queue-health sample; a failure is kept in
// the snapshot (the stuck orders are then "unknown"), not returned.
func (e *Engine) loadSnapshot(ctx context.Context) *queueSnapshot {
	ts, rows, err := e.store.LatestQueueHealth(ctx)
	if err != nil {
		return &queueSnapshot{err: fmt.Errorf("not read: %w", err)}
	}
	return newQueueSnapshot(ts, rows, e.why.groups, e.why.maxAge)
}

// goneWithin is how far back a group missing from the newest sample is
// looked for, to say it is gone: as far as queue health keeps commit ages.
const goneWithin = 24 * time.Hour

// explainAll sets Why and Reason on every case's order: it reads the chains
// of the cases without a trigger, the dead letters of those that have
// some, and, for orders no group of the owner reads for, which of its
// groups are gone. at is the wall clock.
func (e *Engine) explainAll(ctx context.Context, cases []*whyCase, snap *queueSnapshot, at time.Time) error {
	var unread []string
	byOrder := map[string][]*whyCase{}
	for _, c := range cases {
		byOrder[c.s.OrderID] = append(byOrder[c.s.OrderID], c)
		if !c.known {
			unread = append(unread, c.s.OrderID)
		}
	}
	for start := 0; start < len(unread); start += checkBatch {
		chains, err := e.chains(ctx, unread[start:min(start+checkBatch, len(unread))])
		if err != nil {
			return err
		}
		for id, evs := range chains {
			for _, c := range byOrder[id] {
				if !c.known {
					e.readChain(c, evs)
				}
			}
		}
	}
	if err := e.readDeadLetters(ctx, cases); err != nil {
		return err
	}
	var noConsumer []string
	for _, c := range cases {
		w := explain(*c.s, c.trig, c.dl, snap, at)
		if w.Reason == ReasonNoConsumer && !slices.Contains(noConsumer, c.trig.Topic) {
			noConsumer = append(noConsumer, c.trig.Topic)
		}
		c.s.Why, c.s.Reason = &w, w.Reason
	}
	if len(noConsumer) == 0 {
		return nil
	}
	seen, err := e.store.QueueHealthGroupsSeen(ctx, noConsumer, goneWithin)
	if err != nil {
		return err
	}
	snap.gone = map[string][]chstore.QueueHealthGroupSeen{}
	for _, g := range seen {
		if !slices.Contains(snap.readers[g.Topic], g.Group) && g.LastSeen.Before(snap.at) {
			snap.gone[g.Topic] = append(snap.gone[g.Topic], g)
		}
	}
	for _, c := range cases {
		if c.s.Reason == ReasonNoConsumer {
			w := explain(*c.s, c.trig, c.dl, snap, at)
			c.s.Why = &w
		}
	}
	return nil
}

// readDeadLetters sets the dead letter of each case whose chain has
// records from dead-letter topics: the copy of its trigger, else the
// newest, with the error its headers give.
func (e *Engine) readDeadLetters(ctx context.Context, cases []*whyCase) error {
	var ids []string
	for _, c := range cases {
		if c.hasDLQ && c.dl == nil && !slices.Contains(ids, c.s.OrderID) {
			ids = append(ids, c.s.OrderID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	byOrder := map[string][]chstore.DeadLetterRow{}
	for start := 0; start < len(ids); start += checkBatch {
		rows, err := e.store.DeadLetters(ctx, ids[start:min(start+checkBatch, len(ids))], e.why.dlqPattern)
		if err != nil {
			return err
		}
		for _, r := range rows {
			byOrder[r.OrderID] = append(byOrder[r.OrderID], r) // newest first
		}
	}
	for _, c := range cases {
		rows := byOrder[c.s.OrderID]
		if !c.hasDLQ || c.dl != nil || len(rows) == 0 {
			continue
		}
		pick := rows[0]
		of := c.trig != nil && slices.ContainsFunc(rows, func(r chstore.DeadLetterRow) bool { return r.EventID == c.trig.EventID })
		if of {
			pick = rows[slices.IndexFunc(rows, func(r chstore.DeadLetterRow) bool { return r.EventID == c.trig.EventID })]
		}
		dl := &DeadLetter{Record: Record{Topic: pick.Topic, Partition: pick.Partition, Offset: pick.Offset, EventID: pick.EventID,
			Type: pick.Type, EventTime: pick.EventTime.UTC()}, OfTrigger: of}
		dl.ErrorHeader, dl.Error = errorOf(pick.Headers)
		c.dl = dl
	}
	return nil
}

// stuckEvidence is the evidence a stuck finding stores.
type stuckEvidence struct {
	StuckOrder
	Watermark time.Time `json:"watermark"`
}

// whyRefresh is how old the figures of a stored Why (records and seconds
// behind) may grow before a pass stores them again although nothing else
// changed.
const whyRefresh = time.Minute

// reexplain explains again the active stuck findings fs (whose orders did
// not change: the queue-health sample moved, not the order), and returns
// those worth storing again: their reason or who is involved changed, they
// had no Why, or its figures are older than whyRefresh. Status, first
// sighting and acknowledgement are kept.
func (e *Engine) reexplain(ctx context.Context, fs []Finding, clock Clock, snap *queueSnapshot, at time.Time) ([]Finding, error) {
	type stored struct {
		f   Finding
		why *Why // nil: stored before weft explained stuck orders
	}
	var cases []*whyCase
	olds := map[*whyCase]stored{}
	for _, f := range fs {
		var ev stuckEvidence
		if f.Kind != KindStuck || json.Unmarshal(f.Evidence, &ev) != nil || ev.OrderID == "" {
			continue
		}
		s := ev.StuckOrder
		c := &whyCase{s: &s}
		olds[c] = stored{f, s.Why}
		if s.Why != nil && s.Why.Trigger != nil {
			c.trig, c.dl, c.known = s.Why.Trigger, s.Why.DeadLetter, true
		}
		s.Why, s.Reason = nil, ""
		if w, ok := e.byName[s.Workflow]; ok {
			if st, ok := w.Step(s.Step); ok {
				s.SLA, s.Owner, s.Expects = st.SLA, st.Owner, st.Expects // the workflow as configured now
			}
		}
		s.InStep = clock.Now.Sub(s.EnteredAt)
		s.InStepSeconds, s.SLASeconds = s.InStep.Seconds(), s.SLA.Seconds()
		cases = append(cases, c)
	}
	if err := e.explainAll(ctx, cases, snap, at); err != nil {
		return nil, err
	}
	var out []Finding
	for _, c := range cases {
		old := olds[c]
		if old.why != nil && old.why.signature() == c.s.Why.signature() && at.Sub(old.why.At) < whyRefresh {
			continue
		}
		f := stuckFinding(*c.s, clock)
		f.FirstSeen, f.Status, f.AckBy, f.AckAt, f.AckReason = old.f.FirstSeen, old.f.Status, old.f.AckBy, old.f.AckAt, old.f.AckReason
		f.LastSeen = at
		out = append(out, f)
	}
	return out, nil
}
