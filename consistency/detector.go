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
	Opened   int
	Resolved int
}

// Detector raises and resolves findings on an interval. Passes are
// idempotent, so replicas may run them concurrently.
type Detector struct {
	engine   *Engine
	interval time.Duration
	log      zerolog.Logger
	open     *prometheus.GaugeVec
	passes   prometheus.Counter
	failures prometheus.Counter
}

// NewDetector builds a detector. It does no I/O.
func NewDetector(e *Engine, interval time.Duration, set Settings) *Detector {
	d := &Detector{
		engine: e, interval: interval,
		log: set.Logger.With().Str("component", "detector").Logger(),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "weft", Subsystem: "consistency", Name: "open_findings",
			Help: "Open findings after the last detector pass."}, []string{"kind", "workflow", "step"}),
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

// Pass raises a stuck finding for every stuck order that has none, refreshes
// the open ones, and resolves those whose order moved on.
func (d *Detector) Pass(ctx context.Context) (PassResult, error) {
	e := d.engine
	clock, err := e.Clock(ctx)
	if err != nil {
		return PassResult{}, err
	}
	stuck, err := e.Stuck(ctx, clock, Filter{})
	if err != nil {
		return PassResult{}, err
	}
	open, err := e.OpenFindings(ctx, KindStuck)
	if err != nil {
		return PassResult{}, err
	}
	byID := make(map[string]Finding, len(open))
	for _, f := range open {
		byID[f.ID] = f
	}
	now := time.Now().UTC()
	res := PassResult{Clock: clock, Stuck: len(stuck)}
	var writes []Finding
	current := map[string]bool{}
	d.open.Reset()
	for _, s := range stuck {
		id := findingID(KindStuck, s.OrderID, s.Workflow, s.Step)
		current[id] = true
		d.open.WithLabelValues(KindStuck, s.Workflow, s.Step).Inc()
		f, ok := byID[id]
		if !ok {
			res.Opened++
			f = Finding{ID: id, Kind: KindStuck, OrderID: s.OrderID, Workflow: s.Workflow, Step: s.Step,
				Status: StatusOpen, FirstSeen: now}
		}
		ev, _ := json.Marshal(struct {
			StuckOrder
			Watermark time.Time `json:"watermark"`
		}{s, clock.Now})
		f.Evidence = ev
		f.Summary = fmt.Sprintf("%s in %s/%s for %s (SLA %s); waiting on %s for %v", s.OrderID, s.Workflow, s.Step,
			s.InStep.Round(time.Second), s.SLA, s.Owner, s.Expects)
		f.LastSeen = now
		writes = append(writes, f)
	}
	for _, f := range open {
		if current[f.ID] {
			continue
		}
		res.Resolved++
		at := now
		f.Status, f.ResolvedAt, f.LastSeen = StatusResolved, &at, now
		writes = append(writes, f)
	}
	if err := e.writeFindings(ctx, writes, now); err != nil {
		return PassResult{}, err
	}
	d.passes.Inc()
	if res.Opened > 0 || res.Resolved > 0 {
		d.log.Info().Int("stuck", res.Stuck).Int("opened", res.Opened).Int("resolved", res.Resolved).
			Time("watermark", clock.Now).Msg("detector pass")
	}
	return res, nil
}
