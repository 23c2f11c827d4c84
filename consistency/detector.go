package consistency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Settings is what the wiring code passes in.
type Settings struct {
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
	// Behind, when set, reports whether the tap is catching up on a
	// backlog; while it is, passes run every BacklogInterval at most.
	Behind func() bool
	// BacklogInterval is consistency.backlog_interval (0: Behind is not
	// asked).
	BacklogInterval time.Duration
	// StoringSince, when set, says since when the tap has had an insert in
	// flight (zero: none): its rows are stamped at or after that instant
	// and may not be visible yet, so a pass's ingest window ends there
	// however long the insert takes (Settle alone covers a few seconds).
	StoringSince func() time.Time
	// Settle is how long after its ingested_at a stored row may still
	// become visible (an insert in flight, a replica's clock behind): a
	// pass looks only at rows stored, and deadlines passed, at least
	// Settle ago. `weft run` passes consistency.settle; zero in tests that
	// insert and pass at once.
	Settle time.Duration
	// WallClock paces Run (its ticker, rests and yields); nil is the real
	// clock. Tests pass a fake one to step through intervals.
	WallClock clockwork.Clock
	// OnFinding, when set, is called after each pass that stored a change
	// with the findings it opened (status open) and resolved (status
	// resolved), for notifications. It must not block: the pass waits.
	OnFinding func([]Finding)
}

// PassResult summarizes one detector pass.
type PassResult struct {
	Clock Clock
	// Stuck is how many of the orders looked at this pass are stuck.
	Stuck int
	// Checked is how many changed orders' chains were checked; Due how
	// many orders were looked at because a deadline or recheck time of
	// theirs passed, Rechecked how many of those had their chains checked.
	Checked   int
	Due       int
	Rechecked int
	Opened    int
	Resolved  int
	// Reexplained is how many stuck findings of orders that did not change
	// were stored again because why they are stuck changed (or its figures
	// aged past a minute).
	Reexplained int
	// More is true when the pass stopped at its page size with orders left
	// to look at; Run starts the next pass at once.
	More bool
}

// Detector raises and resolves findings. A pass looks only at what can have
// changed since the previous one (docs/consistency.md):
//
//   - orders with events ingested since the previous pass: their chains are
//     checked, their progress stored (with the SLA deadline of the step
//     they wait in, and when their grace or convergence window next runs
//     out, RecheckAt);
//   - orders whose stored SLA deadline passed since the previous pass on the
//     stream's clock: they are stuck unless they moved on;
//   - orders whose stored recheck time passed: their chains are checked
//     again, now that the windowed checks (gap, orphan, invariant,
//     divergence) apply.
//
// An order that did neither keeps its findings: only later events, or time
// running out, change them. Its cursors are stored in ClickHouse, so a
// restarted weft continues where it stopped. Passes are idempotent, so
// replicas may run them concurrently.
type Detector struct {
	engine   *Engine
	interval time.Duration
	windows  Windows
	settle   time.Duration    // Settings.Settle
	behind   func() bool      // Settings.Behind
	storing  func() time.Time // Settings.StoringSince
	backlog  time.Duration    // Settings.BacklogInterval
	wall     clockwork.Clock
	log      zerolog.Logger
	open     *prometheus.GaugeVec
	alerts   alertGauges
	passes   prometheus.Counter
	failures prometheus.Counter
	yields   prometheus.Counter
	checked  prometheus.Counter
	duration prometheus.Histogram
	// cur is the state after the last successful pass (nil before the first).
	cur *detectorState
	// whyAfter is the order id after which the next pass explains stuck
	// findings again ("": from the first); whyPage how many it takes
	// (reexplainPage).
	whyAfter string
	whyPage  int
	// onFinding is Settings.OnFinding.
	onFinding func([]Finding)
}

// pageSize bounds the orders one pass checks, and the due orders it looks
// at, so a first pass over a large history (or a burst) is spread over
// several passes instead of holding everything at once.
const pageSize = 20000

// NewDetector builds a detector. It does no I/O.
func NewDetector(e *Engine, interval time.Duration, win Windows, set Settings) *Detector {
	d := &Detector{
		engine: e, interval: interval, windows: win, settle: max(set.Settle, 0),
		behind: set.Behind, backlog: set.BacklogInterval, wall: set.WallClock, storing: set.StoringSince, onFinding: set.OnFinding,
		log: set.Logger.With().Str("component", "detector").Logger(),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "weft", Subsystem: "consistency", Name: "open_findings",
			Help: "Open or acknowledged findings after the last detector pass."}, []string{"kind", "workflow"}),
		passes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "weft", Subsystem: "consistency", Name: "detector_passes_total",
			Help: "Completed detector passes."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "weft", Subsystem: "consistency", Name: "detector_failures_total",
			Help: "Detector passes that failed (retried at the next interval)."}),
		yields: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "weft", Subsystem: "consistency", Name: "detector_yields_total",
			Help: "Passes put off because the tap was catching up on a backlog (consistency.backlog_interval)."}),
		checked: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "weft", Subsystem: "consistency", Name: "orders_checked_total",
			Help: "Orders whose chains the detector checked."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "weft", Subsystem: "consistency", Name: "detector_pass_seconds",
			Help: "Duration of detector passes.", Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10)}),
	}
	d.alerts, d.whyPage = newAlertGauges(), reexplainPage
	if d.wall == nil {
		d.wall = clockwork.NewRealClock()
	}
	if set.Registerer != nil {
		set.Registerer.MustRegister(d.open, d.passes, d.failures, d.yields, d.checked, d.duration)
		set.Registerer.MustRegister(d.alerts.collectors()...)
	}
	return d
}

// Run passes until ctx ends: every interval, or, while a pass left orders
// for the next (catching up), again after a rest as long as the pass took.
// The rest keeps a backlog of checks to half the detector's time, so the
// tap and ClickHouse, which share the machine, keep the rest: on-call
// engineers want today's events stored before yesterday's are checked.
// For the same reason, while the tap is catching up on a backlog of its
// own (Settings.Behind) a pass is put off until BacklogInterval after the
// last one began: the orders the backlog brings are checked once most of
// their events are in, not at every pass while they trickle in.
// A failed pass is logged and counted, never fatal: Run returns nil when
// ctx ends.
//
// Run may be called again after it returned (a replica that leads again,
// docs/replicas.md): its first pass starts from the stored state, which
// another replica may have moved on meanwhile.
func (d *Detector) Run(ctx context.Context) error {
	d.cur, d.whyAfter = nil, ""
	t := d.wall.NewTicker(d.interval)
	defer t.Stop()
	var began time.Time // of the last pass
	for {
		if d.yield(began) {
			d.yields.Inc()
		} else {
			began = d.wall.Now()
			if d.pass(ctx) && d.rest(ctx, d.wall.Since(began)) {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
		}
	}
}

// Start does nothing: the detector works through the store the wiring
// opened. It makes the detector a component.Component.
func (d *Detector) Start(context.Context) error { return nil }

// Shutdown does nothing: Run holds nothing once it returned.
func (d *Detector) Shutdown(context.Context) error { return nil }

// Resign clears the gauges of open findings and stuck orders once this
// replica stopped running passes (another leads): only the replica that
// runs them reports them, so alerts that sum over replicas count once.
func (d *Detector) Resign() {
	d.open.Reset()
	d.alerts.stuck.Reset()
	d.alerts.open.Reset()
	d.alerts.oldest.Reset()
}

// pass runs one pass, logging and counting a failure, and reports whether
// it left orders for the next.
func (d *Detector) pass(ctx context.Context) (more bool) {
	res, err := d.Pass(ctx)
	if err != nil && ctx.Err() == nil {
		d.failures.Inc()
		d.log.Warn().Err(err).Msg("detector pass failed")
	}
	return err == nil && res.More
}

// rest waits catchUpRest times a pass that took took (at most an
// interval); false when ctx ended first.
func (d *Detector) rest(ctx context.Context, took time.Duration) bool {
	r := d.wall.NewTimer(min(took*catchUpRest, d.interval))
	defer r.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-r.Chan():
		return true
	}
}

// yield reports whether the pass due now is put off: the tap is behind and
// the last pass began less than BacklogInterval ago.
func (d *Detector) yield(last time.Time) bool {
	return d.behind != nil && d.backlog > 0 && !last.IsZero() && d.wall.Since(last) < d.backlog && d.behind()
}

// ingestedBefore is where a pass's ingest window ends: Settle before wall,
// and never past an insert the tap still has in flight (its rows may become
// visible later than Settle after their stamp). The tap marks an insert
// before stamping its rows, and wall is read before the mark, so a row
// stamped before the returned instant was visible when the pass began.
func (d *Detector) ingestedBefore(wall time.Time) time.Time {
	to := wall.Add(-d.settle)
	if d.storing != nil {
		// Rows are stamped in milliseconds: a row stamped in the mark's
		// millisecond is left for the next pass.
		if s := d.storing().Truncate(time.Millisecond); !s.IsZero() && s.Before(to) {
			to = s
		}
	}
	return to
}

// maxSilence is how long a detector passing every interval may go without
// a pass before readers take it as stopped.
func maxSilence(interval time.Duration) time.Duration { return 3*interval + time.Minute }

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// catchUpRest is the rest after a pass that left orders for the next, as a
// multiple of the pass's duration (1: the detector works half the time).
const catchUpRest = 1

// detectorState is the detector's position, stored in detector_state.
type detectorState struct {
	// Workflows identifies the workflow definitions the progress was
	// computed with; other definitions start over.
	Workflows string `json:"workflows"`
	// The ingest window being worked through: orders with events ingested
	// in [IngestFrom, IngestTo), after the id IngestAfter. IngestTo is zero
	// when the window is finished.
	IngestFrom  time.Time `json:"ingest_from"`
	IngestTo    time.Time `json:"ingest_to"`
	IngestAfter string    `json:"ingest_after"`
	// The deadline window being worked through: (DueFrom, DueTo] on the
	// stream's clock, after DueAfter. DueTo is zero when finished.
	DueFrom  time.Time   `json:"due_from"`
	DueTo    time.Time   `json:"due_to"`
	DueAfter deadlineKey `json:"due_after"`
	// Clock is the stream clock of the last pass.
	Clock Clock `json:"clock"`
	// Interval is the detector's pass interval, so readers can judge the heartbeat.
	Interval time.Duration `json:"interval"`
	// PassAt is when the last pass ended (wall clock): the heartbeat.
	PassAt time.Time `json:"pass_at"`
	// CatchingUp is true while the detector works through a backlog.
	CatchingUp bool `json:"catching_up"`
}

const detectorStateName = "detector"

// maxStateAge is how old a stored state may be and still be continued from:
// order_deadlines keeps a deadline for 30 days after it passed.
const maxStateAge = 25 * 24 * time.Hour

// progressVersion is part of workflowsDigest: a detector whose stored
// progress lacks what this one needs starts over. 2: recheck times
// (progress stored before them has none, so its orders would never be
// rechecked).
const progressVersion = 2

// workflowsDigest identifies a set of workflow definitions, and how the
// detector stores progress for them.
func workflowsDigest(ws []Workflow) string {
	b, _ := json.Marshal(struct {
		Version   int
		Workflows []Workflow
	}{progressVersion, ws})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// loadState reads the stored detector state; ok is false when there is none.
func (e *Engine) loadState(ctx context.Context) (detectorState, bool, error) {
	raw, err := e.store.DetectorState(ctx, detectorStateName)
	if err != nil {
		return detectorState{}, false, err
	}
	if raw == "" {
		return detectorState{}, false, nil
	}
	var s detectorState
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return detectorState{}, false, fmt.Errorf("decode detector state: %w", err)
	}
	return s, true, nil
}

func (e *Engine) saveState(ctx context.Context, s detectorState) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return e.store.SaveDetectorState(ctx, detectorStateName, string(b), s.PassAt)
}

// Pass looks at one page of changed orders and one page of due orders
// (see Detector), stores their progress, opens the findings that hold,
// refreshes those still holding (an acknowledgement is kept), and resolves
// those that no longer hold.
func (d *Detector) Pass(ctx context.Context) (PassResult, error) {
	e := d.engine
	began := time.Now()
	st, err := d.state(ctx)
	if err != nil {
		return PassResult{}, err
	}
	clock, err := e.clockFrom(ctx, st.Clock)
	if err != nil {
		return PassResult{}, err
	}
	wall := e.wall().UTC()
	res := PassResult{Clock: clock}

	// Orders that changed: check their chains.
	if st.IngestTo.IsZero() {
		st.IngestTo = later(st.IngestFrom, d.ingestedBefore(wall))
	}
	changed, err := e.changedPage(ctx, st.IngestFrom, st.IngestTo, st.IngestAfter, pageSize)
	if err != nil {
		return PassResult{}, err
	}
	var (
		want   = map[string]Finding{}
		looked = make(map[string]bool, len(changed))
		stuck  []*whyCase // explained below, once the page is read
	)
	// check reads the chains of ids, stores each order's progress, and
	// collects the findings that hold into want.
	check := func(ids []string) error {
		var progress []Progress
		// Chains are read one batch ahead, so ClickHouse reads the next
		// batch while this one is checked.
		fctx, cancel := context.WithCancel(ctx)
		defer cancel() // stops the reader when a batch fails
		for b := range e.prefetchChains(fctx, ids) {
			if b.err != nil {
				return b.err
			}
			for _, id := range b.ids {
				looked[id] = true
				evs := b.chains[id]
				if len(evs) == 0 {
					continue
				}
				p := progressOf(e.workflows, id, evs)
				p.Recheck = RecheckAt(evs, clock.Now, d.windows)
				progress = append(progress, p)
				if s, ok := e.stuckAt(p, clock.Now); ok {
					stuck = append(stuck, e.newWhyCase(s, evs))
					res.Stuck++
				}
				for _, r := range CheckOrder(e.workflows, evs, clock.Now, d.windows) {
					f := raisedFinding(id, r)
					want[f.ID] = f
				}
			}
		}
		// The due orders below are told apart from orders that moved on
		// by the stored progress.
		return e.writeProgress(ctx, progress, clock.Now, wall)
	}
	if err := check(changed); err != nil {
		return PassResult{}, err
	}
	res.Checked = len(changed)
	nextIngest := st
	if len(changed) == pageSize {
		nextIngest.IngestAfter = changed[len(changed)-1]
		res.More = true
	} else {
		nextIngest.IngestFrom, nextIngest.IngestTo, nextIngest.IngestAfter = st.IngestTo, time.Time{}, ""
	}

	// Orders with a deadline or recheck time passed since the last pass:
	// stuck unless they moved on; rechecked from their chain when a grace
	// or convergence window of theirs ran out.
	if st.DueTo.IsZero() {
		to := clock.Now.Add(-d.settle)
		if to.Before(st.DueFrom) {
			// The stream's clock went back: it ran on wall time through a
			// quiet spell, then a backlog of older events arrived. Deadlines
			// between were stored as still ahead; they are due again once
			// the clock passes them, so the window starts over from here
			// and none is skipped (an order already raised is raised again,
			// which changes nothing).
			st.DueFrom, st.DueAfter = to, deadlineKey{}
		}
		st.DueTo = later(st.DueFrom, to)
	}
	due, err := e.dueOrders(ctx, st.DueFrom, st.DueTo, st.DueAfter, pageSize)
	if err != nil {
		return PassResult{}, err
	}
	var dueIDs []string // once each: an order may have a deadline and a recheck row
	seen := map[string]bool{}
	for _, k := range due {
		if !looked[k.OrderID] && !seen[k.OrderID] {
			seen[k.OrderID] = true
			dueIDs = append(dueIDs, k.OrderID)
		}
	}
	stored, err := e.progressOfOrders(ctx, dueIDs)
	if err != nil {
		return PassResult{}, err
	}
	var recheck []string
	for _, k := range due {
		p, ok := stored[k.OrderID]
		if !ok || looked[k.OrderID] {
			continue // checked above
		}
		switch {
		case p.Recheck.Equal(k.Deadline):
			recheck = append(recheck, k.OrderID)
			looked[k.OrderID] = true // one recheck, however many rows name it
		case p.Deadline.Equal(k.Deadline):
			if s, ok := e.stuckAt(p, clock.Now); ok {
				stuck = append(stuck, &whyCase{s: &s}) // its chain is read to explain it
				res.Stuck++
			}
		}
		// Otherwise the order moved on since this row was stored.
	}
	if err := check(recheck); err != nil {
		return PassResult{}, err
	}
	res.Due, res.Rechecked = len(dueIDs), len(recheck)

	// Why each stuck order is stuck, from its chain and the newest
	// queue-health sample.
	snap := e.loadSnapshot(ctx)
	if err := e.explainAll(ctx, stuck, snap, wall); err != nil {
		return PassResult{}, err
	}
	for _, c := range stuck {
		f := stuckFinding(*c.s, clock)
		want[f.ID] = f
	}
	nextDue := nextIngest
	if len(due) == pageSize {
		nextDue.DueAfter = due[len(due)-1]
		res.More = true
	} else {
		nextDue.DueFrom, nextDue.DueTo, nextDue.DueAfter = st.DueTo, time.Time{}, deadlineKey{}
	}

	// Findings: the active ones of every order looked at.
	ids := append(append([]string(nil), changed...), dueIDs...)
	active, err := e.activeFindingsOf(ctx, ids)
	if err != nil {
		return PassResult{}, err
	}
	now := wall
	var writes, changes []Finding // changes: opened and resolved, for OnFinding
	for id, f := range want {
		old, ok := active[id]
		if ok {
			if !looked[f.OrderID] {
				continue // still stuck, nothing new to say
			}
			f.FirstSeen, f.Status, f.AckBy, f.AckAt, f.AckReason = old.FirstSeen, old.Status, old.AckBy, old.AckAt, old.AckReason
		} else {
			f.FirstSeen, f.Status = now, StatusOpen
			res.Opened++
		}
		f.LastSeen = now
		writes = append(writes, f)
		if !ok {
			changes = append(changes, f)
		}
	}
	for id, f := range active {
		if _, still := want[id]; still || !looked[f.OrderID] {
			continue // a due order's other findings were not looked at
		}
		res.Resolved++
		at := now
		f.Status, f.ResolvedAt, f.LastSeen = StatusResolved, &at, now
		writes = append(writes, f)
		changes = append(changes, f)
	}
	if !res.More {
		// The orders stuck since earlier passes did not change, but their
		// consumers may have moved: explain them again.
		re, err := d.reexplain(ctx, writes, clock, snap, now)
		if err != nil {
			d.log.Warn().Err(err).Msg("explain stuck orders again")
		}
		writes = append(writes, re...)
		res.Reexplained = len(re)
	}
	if err := e.writeFindings(ctx, writes, now); err != nil {
		return PassResult{}, err
	}
	if d.onFinding != nil && len(changes) > 0 {
		d.onFinding(changes)
	}

	next := nextDue
	next.Clock, next.Interval, next.PassAt, next.CatchingUp = clock, d.interval, time.Now().UTC(), res.More
	if err := e.saveState(ctx, next); err != nil {
		return PassResult{}, err
	}
	d.cur = &next
	if err := d.refreshGauge(ctx, clock); err != nil {
		d.log.Warn().Err(err).Msg("count open findings")
	}
	d.passes.Inc()
	d.checked.Add(float64(res.Checked + res.Rechecked))
	d.duration.Observe(time.Since(began).Seconds())
	if res.Opened > 0 || res.Resolved > 0 || res.Reexplained > 0 || res.More {
		d.log.Info().Int("checked", res.Checked).Int("due", res.Due).Int("rechecked", res.Rechecked).Int("stuck", res.Stuck).Int("opened", res.Opened).
			Int("resolved", res.Resolved).Int("reexplained", res.Reexplained).Bool("more", res.More).Time("watermark", clock.Now).
			Dur("took", time.Since(began)).Msg("detector pass")
	}
	return res, nil
}

// state returns where the last pass stopped: in memory, else stored, else
// (or when the workflows changed, or the stored state is too old to
// continue from) the beginning of the history.
func (d *Detector) state(ctx context.Context) (detectorState, error) {
	digest := workflowsDigest(d.engine.workflows)
	if d.cur != nil && d.cur.Workflows == digest {
		return *d.cur, nil
	}
	s, ok, err := d.engine.loadState(ctx)
	if err != nil {
		return detectorState{}, err
	}
	if ok && s.Workflows == digest && d.engine.wall().Sub(s.PassAt) < maxStateAge {
		return s, nil
	}
	if ok {
		d.log.Info().Msg("workflows changed or detector state too old: checking every order again")
	}
	return detectorState{Workflows: digest, Clock: s.Clock}, nil
}

// reexplainPage bounds the stuck findings a pass explains again: with more
// active stuck orders than that, each pass takes the next page, and an
// order's reason follows its consumers within a few passes.
const reexplainPage = 5000

// reexplain explains again the next page of active stuck findings
// (Engine.reexplain), those among writes aside.
func (d *Detector) reexplain(ctx context.Context, writes []Finding, clock Clock, snap *queueSnapshot, now time.Time) ([]Finding, error) {
	written := make(map[string]bool, len(writes))
	for _, f := range writes {
		written[f.ID] = true
	}
	rows, err := d.engine.store.ActiveStuckFindings(ctx, d.whyAfter, d.whyPage)
	if err == nil && len(rows) == 0 && d.whyAfter != "" { // the last page was full: start over
		rows, err = d.engine.store.ActiveStuckFindings(ctx, "", d.whyPage)
	}
	if err != nil {
		return nil, err
	}
	d.whyAfter = ""
	if len(rows) == d.whyPage {
		d.whyAfter = rows[len(rows)-1].OrderID
	}
	var page []Finding
	for _, r := range rows {
		if !written[r.ID] {
			page = append(page, findingOf(r))
		}
	}
	return d.engine.reexplain(ctx, page, clock, snap, now)
}

// refreshGauge sets weft_consistency_open_findings and the alert gauges
// (weft_stuck_orders, weft_findings_open, weft_stuck_oldest_seconds) from
// the stored findings, at stream time clock.
func (d *Detector) refreshGauge(ctx context.Context, clock Clock) error {
	counts, err := d.engine.store.ActiveFindingCounts(ctx)
	if err != nil {
		return err
	}
	stuck, err := d.engine.store.StuckCounts(ctx)
	if err != nil {
		return err
	}
	d.open.Reset()
	for _, c := range counts {
		d.open.WithLabelValues(c.Kind, c.Workflow).Set(float64(c.N))
	}
	d.alerts.set(d.engine.workflows, stuck, counts, clock)
	return nil
}

// chainBatch is one batch of chains read ahead.
type chainBatch struct {
	ids    []string
	chains map[string][]ChainEvent
	err    error
}

// prefetchChains reads the chains of ids in batches sized by their events
// (chainSizer), one batch ahead of the reader: no more, so two batches are
// in memory at most (the channel is unbuffered: a batch read ahead waits in
// the send). The channel closes after the last batch or the first error;
// the reader must drain it or cancel ctx.
func (e *Engine) prefetchChains(ctx context.Context, ids []string) <-chan chainBatch {
	out := make(chan chainBatch)
	go func() {
		defer close(out)
		sizer := newChainSizer()
		for rest := ids; len(rest) > 0; {
			var b chainBatch
			b.ids, rest = sizer.take(rest)
			b.chains, b.err = e.chains(ctx, b.ids)
			sizer.saw(len(b.ids), countEvents(b.chains))
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	return out
}

// stuckFinding is the finding of a stuck order, with why it is stuck when
// that was worked out.
func stuckFinding(s StuckOrder, clock Clock) Finding {
	ev, _ := json.Marshal(stuckEvidence{s.toMillis(), clock.Now})
	summary := fmt.Sprintf("%s in %s/%s for %s (SLA %s); waiting on %s for %v", s.OrderID, s.Workflow, s.Step,
		s.InStep.Round(time.Second), s.SLA, s.Owner, s.Expects)
	if s.Why != nil {
		summary += ": " + s.Why.Text
	}
	return Finding{ID: findingID(KindStuck, s.OrderID, s.Workflow, s.Step), Kind: KindStuck, OrderID: s.OrderID,
		Workflow: s.Workflow, Step: s.Step, Reason: s.Reason, Since: s.EnteredAt, Evidence: ev, Summary: summary}
}

// raisedFinding is the finding of a problem CheckOrder raised.
func raisedFinding(orderID string, r Raised) Finding {
	ev, _ := json.Marshal(r.Evidence)
	return Finding{ID: findingID(r.Kind, orderID, r.Workflow, r.Subject), Kind: r.Kind, OrderID: orderID,
		Workflow: r.Workflow, Subject: r.Subject, Summary: r.Summary, Evidence: ev}
}
