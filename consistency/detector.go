package consistency

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Settings is what the wiring code passes in.
type Settings struct {
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
}

// PassResult summarizes one detector pass.
type PassResult struct {
	Clock    Clock
	Stuck    int
	Checked  int
	Opened   int
	Resolved int
	// Backlog is how many orders wait for a later pass.
	Backlog int
}

// Detector raises and resolves findings on an interval. Passes are
// idempotent, so replicas may run them concurrently.
type Detector struct {
	engine   *Engine
	interval time.Duration
	windows  Windows
	log      zerolog.Logger
	open     *prometheus.GaugeVec
	passes   prometheus.Counter
	failures prometheus.Counter
	// lastPass is when the previous pass started (wall clock); orders
	// ingested since, or still inside their windows, are checked again.
	lastPass time.Time
	// backlog holds orders due for checking that did not fit in a pass.
	backlog []string
	queued  map[string]bool
}

// maxChecksPerPass bounds the orders one pass checks, so a first pass over
// a large history (or a burst) is spread over several passes instead of
// holding everything at once.
const maxChecksPerPass = 20000

// NewDetector builds a detector. It does no I/O.
func NewDetector(e *Engine, interval time.Duration, win Windows, set Settings) *Detector {
	d := &Detector{
		engine: e, interval: interval, windows: win,
		log: set.Logger.With().Str("component", "detector").Logger(),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "weft", Subsystem: "consistency", Name: "open_findings",
			Help: "Open or acknowledged findings after the last detector pass."}, []string{"kind", "workflow"}),
		passes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "weft", Subsystem: "consistency", Name: "detector_passes_total",
			Help: "Completed detector passes."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "weft", Subsystem: "consistency", Name: "detector_failures_total",
			Help: "Detector passes that failed (retried at the next interval)."}),
	}
	if set.Registerer != nil {
		set.Registerer.MustRegister(d.open, d.passes, d.failures)
	}
	return d
}

// Run passes until ctx ends. A failed pass is logged and counted, never fatal.
func (d *Detector) Run(ctx context.Context) {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		if _, err := d.Pass(ctx); err != nil && ctx.Err() == nil {
			d.failures.Inc()
			d.log.Warn().Err(err).Msg("detector pass failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass computes the findings that hold now — stuck orders over all orders,
// the other kinds over the orders that changed recently (at most
// maxChecksPerPass of them; the rest wait for the next pass) — stores new
// ones, refreshes active ones (an acknowledgement is kept), and resolves
// those that no longer hold.
func (d *Detector) Pass(ctx context.Context) (PassResult, error) {
	e := d.engine
	start := time.Now().UTC()
	clock, err := e.Clock(ctx)
	if err != nil {
		return PassResult{}, err
	}
	stuck, err := e.Stuck(ctx, clock, Filter{})
	if err != nil {
		return PassResult{}, err
	}
	active, err := e.OpenFindings(ctx, "")
	if err != nil {
		return PassResult{}, err
	}
	since := time.Time{}
	if !d.lastPass.IsZero() {
		since = d.lastPass.Add(-max(d.windows.Grace, d.windows.Convergence) - 2*d.interval)
	}
	orders, err := e.changedOrders(ctx, since)
	if err != nil {
		return PassResult{}, err
	}
	if d.queued == nil {
		d.queued = map[string]bool{}
	}
	enqueue := func(id string) {
		if !d.queued[id] {
			d.queued[id] = true
			d.backlog = append(d.backlog, id)
		}
	}
	// Orders with active findings need no re-check until they change: only
	// later events (or a new process starting from scratch) can fix them.
	for _, o := range orders {
		enqueue(o)
	}
	orders = d.backlog[:min(len(d.backlog), maxChecksPerPass)]
	checked := make(map[string]bool, len(orders))
	for _, o := range orders {
		checked[o] = true
		delete(d.queued, o)
	}
	raised, err := e.CheckOrders(ctx, orders, clock.Now, d.windows)
	if err != nil {
		return PassResult{}, err
	}

	now := time.Now().UTC()
	want := map[string]Finding{}
	for _, s := range stuck {
		ev, _ := json.Marshal(struct {
			StuckOrder
			Watermark time.Time `json:"watermark"`
		}{s, clock.Now})
		f := Finding{ID: findingID(KindStuck, s.OrderID, s.Workflow, s.Step), Kind: KindStuck, OrderID: s.OrderID,
			Workflow: s.Workflow, Step: s.Step, Evidence: ev,
			Summary: fmt.Sprintf("%s in %s/%s for %s (SLA %s); waiting on %s for %v", s.OrderID, s.Workflow, s.Step,
				s.InStep.Round(time.Second), s.SLA, s.Owner, s.Expects)}
		want[f.ID] = f
	}
	for order, rs := range raised {
		for _, r := range rs {
			ev, _ := json.Marshal(r.Evidence)
			f := Finding{ID: findingID(r.Kind, order, r.Workflow, r.Subject), Kind: r.Kind, OrderID: order,
				Workflow: r.Workflow, Subject: r.Subject, Summary: r.Summary, Evidence: ev}
			want[f.ID] = f
		}
	}
	res := PassResult{Clock: clock, Stuck: len(stuck), Checked: len(orders)}
	byID := make(map[string]Finding, len(active))
	for _, f := range active {
		byID[f.ID] = f
	}
	var writes []Finding
	for id, f := range want {
		if old, ok := byID[id]; ok {
			f.FirstSeen, f.Status, f.AckBy, f.AckAt, f.AckReason = old.FirstSeen, old.Status, old.AckBy, old.AckAt, old.AckReason
		} else {
			f.FirstSeen, f.Status = now, StatusOpen
			res.Opened++
		}
		f.LastSeen = now
		writes = append(writes, f)
	}
	for _, f := range active {
		if _, still := want[f.ID]; still {
			continue
		}
		if f.Kind != KindStuck && !checked[f.OrderID] {
			continue // not looked at this pass
		}
		res.Resolved++
		at := now
		f.Status, f.ResolvedAt, f.LastSeen = StatusResolved, &at, now
		writes = append(writes, f)
	}
	if err := e.writeFindings(ctx, writes, now); err != nil {
		for _, o := range orders { // check them again next pass
			d.queued[o] = true
		}
		return PassResult{}, err
	}
	d.backlog = d.backlog[len(orders):]
	res.Backlog = len(d.backlog)
	d.lastPass = start
	d.open.Reset()
	for _, f := range want {
		d.open.WithLabelValues(f.Kind, f.Workflow).Inc()
	}
	d.passes.Inc()
	if res.Opened > 0 || res.Resolved > 0 {
		d.log.Info().Int("stuck", res.Stuck).Int("checked", res.Checked).Int("opened", res.Opened).
			Int("resolved", res.Resolved).Time("watermark", clock.Now).Msg("detector pass")
	}
	return res, nil
}
