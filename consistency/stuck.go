package consistency

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"time"

	"github.com/weft-sh/weft/internal/chstore"
)

// StuckOrder is an order that made no progress within its step's SLA.
type StuckOrder struct {
	OrderID  string `json:"order_id"`
	Workflow string `json:"workflow"`
	Step     string `json:"step"`
	// EnteredAt is the event time of the last event that entered Step.
	EnteredAt time.Time `json:"entered_at"`
	// InStep is how long the order has been in Step, measured on the watermark.
	InStep time.Duration `json:"-"`
	// InStepSeconds is InStep for machines.
	InStepSeconds float64       `json:"in_step_seconds"`
	SLA           time.Duration `json:"-"`
	// SLASeconds is SLA for machines.
	SLASeconds    float64   `json:"sla_seconds"`
	LastEventType string    `json:"last_event_type"`
	LastEventTime time.Time `json:"last_event_time"`
	// Owner is the service that owes the next event.
	Owner string `json:"owner"`
	// Expects are the event types that would move the order on.
	Expects []string `json:"expects"`
	// Reason says why the order is stuck (one of Reasons), and Why says it
	// with the evidence (docs/consistency.md, "Why is it stuck?").
	Reason string `json:"reason,omitempty"`
	Why    *Why   `json:"why,omitempty"`
}

// Filter narrows a stuck-orders query. Zero values match everything.
type Filter struct {
	Workflow string
	Step     string
	// Service matches the owner of the next event.
	Service string
	// OlderThan keeps orders at least this long in their step.
	OlderThan time.Duration
	// Reason keeps the orders stuck for this reason (one of Reasons).
	Reason string
	// Limit caps the rows returned; 0 means no cap.
	Limit int
	// Live evaluates every order now instead of reading the detector's
	// stuck findings.
	Live bool
}

// Clock is the time stuck detection measures against.
type Clock struct {
	// Now is the effective time: the newest event time, advanced by the wall
	// time since the newest ingest, and never past the wall clock. A backfill
	// of old events therefore does not make every order look stuck, and an
	// idle stream does not freeze the clock.
	Now time.Time `json:"now"`
	// MaxEventTime and MaxIngestTime are what Now was derived from.
	MaxEventTime  time.Time `json:"max_event_time"`
	MaxIngestTime time.Time `json:"max_ingest_time"`
}

// Engine answers consistency questions from ClickHouse.
type Engine struct {
	store     *chstore.Store
	workflows []Workflow
	byName    map[string]Workflow
	ranks     stepOrder              // stepRanks(workflows)
	rules     []chstore.WorkflowRule // workflowRules(workflows)
	why       whySettings            // SetDiagnosis
	wall      func() time.Time
	jobs      *knownJobs // replay jobs weft planned (replayjobs.go)
}

// NewEngine builds an engine over the given workflows. It does no I/O.
func NewEngine(store *chstore.Store, workflows []Workflow) *Engine {
	e := &Engine{store: store, workflows: workflows, byName: map[string]Workflow{}, ranks: stepRanks(workflows),
		rules: workflowRules(workflows), why: defaultWhy(), wall: time.Now}
	e.jobs = newKnownJobs(func(ctx context.Context, ids []string) (map[string]bool, error) {
		return store.KnownReplayJobs(ctx, ids)
	}, time.Now)
	for _, w := range workflows {
		e.byName[w.Name] = w
	}
	return e
}

// Workflows returns the workflows the engine checks.
func (e *Engine) Workflows() []Workflow { return e.workflows }

// Clock reads the event-time watermark. It continues from the clock the
// detector stored with its last pass, reading only the events stored since;
// without one it reads every event.
func (e *Engine) Clock(ctx context.Context) (Clock, error) {
	st, _, err := e.loadState(ctx)
	if err != nil {
		return Clock{}, err
	}
	return e.clockFrom(ctx, st.Clock)
}

// clockFrom advances a previously read clock by the events ingested since
// (a minute of overlap covers inserts in flight when it was read).
func (e *Engine) clockFrom(ctx context.Context, prev Clock) (Clock, error) {
	c := prev
	var since time.Time // the whole history
	if prev.MaxIngestTime.Unix() > 0 {
		since = prev.MaxIngestTime.Add(-time.Minute)
	}
	maxEvent, maxIngest, err := e.store.Watermark(ctx, since)
	if err != nil {
		return Clock{}, err
	}
	if maxEvent.After(c.MaxEventTime) {
		c.MaxEventTime = maxEvent.UTC()
	}
	if maxIngest.After(c.MaxIngestTime) {
		c.MaxIngestTime = maxIngest.UTC()
	}
	wall := e.wall().UTC()
	if c.MaxIngestTime.IsZero() || c.MaxIngestTime.Unix() <= 0 {
		c.Now = wall
		return c, nil
	}
	now := c.MaxEventTime.Add(max(wall.Sub(c.MaxIngestTime), 0))
	if now.After(wall) {
		now = wall
	}
	c.Now = now.UTC()
	return c, nil
}

// StuckResult is a page of stuck orders.
type StuckResult struct {
	// Orders are the stuck orders, longest in their step first.
	Orders []StuckOrder `json:"orders"`
	// Total is how many orders match the filter, before the limit.
	Total int `json:"total"`
	// Reasons counts the orders matching the filter (before the limit) by
	// why they are stuck.
	Reasons map[string]int `json:"reasons"`
	// Source says where the answer comes from: "detector" (the stuck
	// findings of the detector's passes) or "live" (computed now from
	// every order, when no detector runs).
	Source string `json:"source"`
	// Detector is the detector's last pass; CatchingUp is true while it
	// works through a backlog and the list may be incomplete.
	LastPass   time.Time `json:"last_pass,omitzero"`
	CatchingUp bool      `json:"catching_up,omitempty"`
}

// Stuck lists the orders stuck past their step's SLA at clock, one row per
// order, longest in their step first. While a detector runs (its heartbeat
// is recent) the answer is its open stuck findings, a read of a few rows
// per stuck order; otherwise every order is evaluated now (StuckLive).
func (e *Engine) Stuck(ctx context.Context, clock Clock, f Filter) (StuckResult, error) {
	st, ok, err := e.loadState(ctx)
	if err != nil {
		return StuckResult{}, err
	}
	if f.Live || !ok || e.wall().Sub(st.PassAt) > maxSilence(st.Interval) {
		res, err := e.stuckNow(ctx, clock, f)
		res.LastPass = st.PassAt
		return res, err
	}
	res, err := e.stuckFindings(ctx, clock, f)
	res.LastPass, res.CatchingUp = st.PassAt, st.CatchingUp
	return res, err
}

// stuckNow evaluates every order now (StuckLive) and explains the ones
// listed: all of them when the filter asks for a reason.
func (e *Engine) stuckNow(ctx context.Context, clock Clock, f Filter) (StuckResult, error) {
	orders, err := e.StuckLive(ctx, clock, Filter{Workflow: f.Workflow, Step: f.Step, Service: f.Service, OlderThan: f.OlderThan})
	if err != nil {
		return StuckResult{}, err
	}
	total := len(orders)
	if f.Reason == "" && f.Limit > 0 && len(orders) > f.Limit {
		// Only the listed orders are explained: the counts by reason are
		// of those.
		orders = orders[:f.Limit]
	}
	if err := e.explainOrders(ctx, orders); err != nil {
		return StuckResult{}, err
	}
	res := StuckResult{Orders: []StuckOrder{}, Reasons: map[string]int{}, Source: "live"}
	for _, s := range orders {
		if f.Reason != "" && s.Reason != f.Reason {
			continue
		}
		res.Reasons[s.Reason]++
		res.Orders = append(res.Orders, s)
	}
	res.Total = total
	if f.Reason != "" {
		res.Total = len(res.Orders)
	}
	if f.Limit > 0 && len(res.Orders) > f.Limit {
		res.Orders = res.Orders[:f.Limit]
	}
	return res, nil
}

// explainOrders sets Why and Reason on each order, from its chain and the
// newest queue-health sample.
func (e *Engine) explainOrders(ctx context.Context, orders []StuckOrder) error {
	cases := make([]*whyCase, len(orders))
	for i := range orders {
		cases[i] = &whyCase{s: &orders[i]}
	}
	return e.explainAll(ctx, cases, e.loadSnapshot(ctx), e.wall())
}

// stuckFindings reads the open and acknowledged stuck findings.
func (e *Engine) stuckFindings(ctx context.Context, clock Clock, f Filter) (StuckResult, error) {
	q := chstore.StuckFindingQuery{Workflow: f.Workflow, Step: f.Step, Reason: f.Reason, Limit: f.Limit}
	if f.Service != "" {
		for _, w := range e.workflows {
			for _, st := range w.Steps {
				if st.Owner == f.Service {
					q.Steps = append(q.Steps, chstore.StepRef{Workflow: w.Name, Step: st.Name})
				}
			}
		}
		if len(q.Steps) == 0 {
			return StuckResult{Orders: []StuckOrder{}, Reasons: map[string]int{}, Source: "detector"}, nil
		}
	}
	if f.OlderThan > 0 {
		q.SinceBy = clock.Now.Add(-f.OlderThan)
	}
	rows, total, err := e.store.StuckFindings(ctx, q)
	if err != nil {
		return StuckResult{}, err
	}
	reasons, err := e.store.StuckFindingReasons(ctx, q)
	if err != nil {
		return StuckResult{}, err
	}
	res := StuckResult{Orders: []StuckOrder{}, Total: total, Reasons: reasons, Source: "detector"}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		s := StuckOrder{OrderID: r.OrderID, Workflow: r.Workflow, Step: r.Step, EnteredAt: r.Since.UTC(), Reason: r.Reason}
		if w, ok := e.byName[s.Workflow]; ok {
			if st, ok := w.Step(s.Step); ok {
				s.SLA, s.Owner, s.Expects = st.SLA, st.Owner, st.Expects
			}
		}
		s.InStep = clock.Now.Sub(s.EnteredAt)
		s.InStepSeconds, s.SLASeconds = s.InStep.Seconds(), s.SLA.Seconds()
		res.Orders = append(res.Orders, s)
		ids = append(ids, s.OrderID)
	}
	last, err := e.stuckLastEvents(ctx, ids)
	if err != nil {
		return StuckResult{}, err
	}
	for i := range res.Orders {
		if l, ok := last[res.Orders[i].OrderID]; ok {
			res.Orders[i].LastEventType, res.Orders[i].LastEventTime = l.LastEventType, l.LastEventTime.UTC()
			res.Orders[i].Why = l.Why
		}
	}
	return res, nil
}

// stuckLastEvents returns the last event of each of the given stuck
// orders, and why it is stuck, from the evidence of its stuck finding:
// written when the finding was opened or last refreshed, and the order has
// not changed since (a change refreshes or resolves the finding).
func (e *Engine) stuckLastEvents(ctx context.Context, ids []string) (map[string]StuckOrder, error) {
	evidence, err := e.store.StuckEvidence(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]StuckOrder, len(evidence))
	for id, ev := range evidence {
		var s StuckOrder
		if json.Unmarshal([]byte(ev), &s) == nil && s.LastEventType != "" {
			out[id] = s
		}
	}
	return out, nil
}

// StuckLive evaluates every order now from the order_state view: exact
// without a detector, but it reads every order, so it takes seconds on
// millions of orders (docs/consistency.md).
func (e *Engine) StuckLive(ctx context.Context, clock Clock, f Filter) ([]StuckOrder, error) {
	if len(e.workflows) == 0 {
		return nil, nil
	}
	q := chstore.StuckQuery{Now: clock.Now, OlderThan: f.OlderThan}
	if f.Workflow == "" && f.Step == "" && f.Service == "" {
		q.Limit = f.Limit // else the filters below come first
	}
	rows, err := e.store.StuckOrders(ctx, e.rules, q)
	if err != nil {
		return nil, err
	}
	var out []StuckOrder
	for _, r := range rows {
		w := e.byName[r.Workflow]
		if int(r.Rank) < 1 || int(r.Rank) > len(w.Steps) {
			continue
		}
		st := w.Steps[r.Rank-1]
		s := StuckOrder{OrderID: r.OrderID, Workflow: r.Workflow, Step: st.Name, EnteredAt: r.EnteredAt,
			InStep: r.InStep, SLA: r.SLA, LastEventType: r.LastEventType, LastEventTime: r.LastEventTime,
			Owner: st.Owner, Expects: st.Expects}
		s.InStepSeconds, s.SLASeconds = s.InStep.Seconds(), s.SLA.Seconds()
		if f.Workflow != "" && s.Workflow != f.Workflow || f.Step != "" && s.Step != f.Step || f.Service != "" && s.Owner != f.Service {
			continue
		}
		out = append(out, s)
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// workflowRules are the workflows as the stuck-orders query places orders
// in them (chstore.StuckOrders), the same way OrderStates does.
func workflowRules(ws []Workflow) []chstore.WorkflowRule {
	out := make([]chstore.WorkflowRule, len(ws))
	for i, w := range ws {
		r := chstore.WorkflowRule{Name: w.Name, IdentifiedBy: w.IdentifiedBy}
		for _, st := range w.Steps {
			r.Steps = append(r.Steps, chstore.StepRule{On: st.On, Terminal: st.Terminal, SLA: st.SLA})
		}
		out[i] = r
	}
	return out
}

// StuckOf says whether an order is stuck, and why, given its chain evs:
// from the detector's stuck finding while a detector runs (as Stuck
// does), else evaluated now at clock. Empty when it is not stuck.
func (e *Engine) StuckOf(ctx context.Context, clock Clock, orderID string, evs []ChainEvent) ([]StuckOrder, error) {
	st, ok, err := e.loadState(ctx)
	if err != nil {
		return nil, err
	}
	if ok && e.wall().Sub(st.PassAt) <= maxSilence(st.Interval) {
		fs, err := e.Findings(ctx, FindingFilter{Kind: KindStuck, OrderID: orderID, Status: "active"})
		if err != nil {
			return nil, err
		}
		var out []StuckOrder
		for _, f := range fs {
			var ev stuckEvidence
			if json.Unmarshal(f.Evidence, &ev) != nil || ev.OrderID == "" {
				continue
			}
			s := ev.StuckOrder
			s.InStep = clock.Now.Sub(s.EnteredAt)
			s.InStepSeconds = s.InStep.Seconds()
			s.SLA = time.Duration(s.SLASeconds * float64(time.Second))
			out = append(out, s)
		}
		return out, nil
	}
	s, ok := e.stuckAt(progressOf(e.workflows, orderID, evs), clock.Now)
	if !ok {
		return nil, nil
	}
	c := e.newWhyCase(s, evs)
	if err := e.explainAll(ctx, []*whyCase{c}, e.loadSnapshot(ctx), e.wall()); err != nil {
		return nil, err
	}
	return []StuckOrder{*c.s}, nil
}

// toMillis is s with its seconds to the millisecond, as findings store
// them: a float's last digits are noise, not evidence (and a long run of
// digits reads like a card number to a scan for personal data).
func (s StuckOrder) toMillis() StuckOrder {
	s.InStepSeconds, s.SLASeconds = toMillis(s.InStepSeconds), toMillis(s.SLASeconds)
	if s.Why != nil {
		w := *s.Why
		w.Groups = slices.Clone(w.Groups)
		for i := range w.Groups {
			w.Groups[i].LagSeconds = toMillis(w.Groups[i].LagSeconds)
		}
		s.Why = &w
	}
	return s
}

func toMillis(seconds float64) float64 { return math.Round(seconds*1000) / 1000 }
