package tracing

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/component"
)

var _ component.Component = (*Tracer)(nil)

// Settings is what the wiring passes in.
type Settings struct {
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
	// Group is the tap's consumer group (messaging.consumer.group.name).
	Group string
	// Settle is how long after its ingested_at a stored row may still
	// become visible (consistency.settle); the Tracer reads no closer to
	// now than that.
	Settle time.Duration
	// StoringSince, when set, is since when the tap has had an insert in
	// flight (its rows carry that time or later): the Tracer reads no
	// further.
	StoringSince func() time.Time
	// Behind, when set, reports whether the tap is catching up on a
	// backlog: passes are then spaced by tracing.backlog_interval.
	Behind func() bool
	// Clock is the real clock when nil.
	Clock clockwork.Clock
	// Client posts the exports; nil is a client of its own.
	Client *http.Client
}

// stateName is the Tracer's row in detector_state (its cursor).
const stateName = "tracing"

// passLimit bounds the events one pass reads (but a millisecond's rows are
// read whole); chainOrders the orders whose chains are read at once.
const (
	passLimit   = 5000
	chainOrders = 250
)

// Tracer exports each stored event's span once: every interval it reads
// the events first stored since its cursor (never closer to now than the
// tap's rows may still appear), places them in their orders' chains,
// builds their spans, stores them in otel_traces and queues them for the
// endpoint, and moves its cursor on. It reads ClickHouse, not the tap's
// batches, so ingest never waits for it (docs/tracing.md).
type Tracer struct {
	cfg     Config
	store   *chstore.Store
	engine  *consistency.Engine
	b       Builder
	exp     *Exporter // nil: no endpoint
	settle  time.Duration
	storing func() time.Time
	behind  func() bool
	clock   clockwork.Clock
	log     zerolog.Logger
	m       metrics
	limit   int // events a pass reads at most (passLimit)

	mu     sync.Mutex
	cursor time.Time
	reload bool // the cursor is read again before the next pass (Run)

	// Orders a finding opened on (sampling.findings), waiting for the next
	// pass, and those whose traces were exported for one since.
	fmu      sync.Mutex
	pending  map[string][]Finding
	opened   []consistency.Finding         // waiting for their finding spans
	promoted map[pcommon.TraceID]time.Time // trace → the cursor when it was promoted
	orders   map[string]bool               // the orders promoted
}

// pendingLimit bounds the orders waiting for a pass to export them for a
// finding; promotedLimit the orders remembered as exported for one.
const (
	pendingLimit    = 10000
	promotedLimit   = 100000
	promotedPerPass = 200
)

// WantsFindings reports whether the detector's findings change what is
// exported (an endpoint, sampling below 1, sampling.findings on).
func (t *Tracer) WantsFindings() bool {
	return t.exp != nil && t.cfg.ratio() < 1 && t.cfg.findings()
}

// OnFinding takes the findings the detector opened or resolved. Each one
// opened on an order gets a finding span from the next pass (FindingSpan);
// with WantsFindings, the order is also exported whole, whether sampled or
// not. It never blocks: past pendingLimit findings or orders waiting, more
// are counted and left out.
func (t *Tracer) OnFinding(fs []consistency.Finding) {
	t.fmu.Lock()
	defer t.fmu.Unlock()
	for _, f := range fs {
		if f.Status != consistency.StatusOpen || f.OrderID == "" {
			continue
		}
		if len(t.opened) < pendingLimit {
			t.opened = append(t.opened, f)
		} else {
			t.m.spans.WithLabelValues(OutcomeDropped).Inc()
		}
		if !t.WantsFindings() || t.orders[f.OrderID] {
			continue // exported already
		}
		// By order, the order's trace is known: a sampled one is exported
		// anyway. By correlation id its events' traces are known once they
		// are read: promote leaves out the sampled ones.
		if !t.b.ByCorrelation && Sampled(t.b.IDs.TraceID(f.OrderID), t.cfg.ratio()) {
			continue
		}
		if _, ok := t.pending[f.OrderID]; !ok && len(t.pending) >= pendingLimit {
			t.m.spans.WithLabelValues(OutcomeDropped).Inc()
			continue
		}
		t.pending[f.OrderID] = append(t.pending[f.OrderID], FindingsOf([]consistency.Finding{f})...)
	}
}

// New validates cfg and builds the Tracer; it reads the id key file.
func New(cfg Config, store *chstore.Store, engine *consistency.Engine, set Settings) (*Tracer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	key, err := ReadIDKey(cfg.IDKeyFile)
	if err != nil {
		return nil, err
	}
	t := &Tracer{cfg: cfg, store: store, engine: engine, b: cfg.Builder(key, set.Group),
		settle: max(set.Settle, 0), storing: set.StoringSince, behind: set.Behind, clock: set.Clock,
		log: set.Logger.With().Str("component", "tracing").Logger(), m: newMetrics(set.Registerer),
		pending: map[string][]Finding{}, promoted: map[pcommon.TraceID]time.Time{}, orders: map[string]bool{}, limit: passLimit}
	if t.clock == nil {
		t.clock = clockwork.NewRealClock()
	}
	if cfg.Endpoint != "" {
		if t.exp, err = newExporter(cfg, set.Client, t.clock, t.log, t.m); err != nil {
			return nil, err
		}
	}
	return t, nil
}

type tracerState struct {
	CursorMs int64 `json:"cursor_ms"`
}

// Start reads the cursor; a first start begins at now (older orders'
// traces are a `weft trace` away).
func (t *Tracer) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.load(ctx)
}

// load reads the stored cursor; t.mu is held.
func (t *Tracer) load(ctx context.Context) error {
	raw, err := t.store.DetectorState(ctx, stateName)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	var st tracerState
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &st); err != nil {
			return fmt.Errorf("tracing: stored cursor %q: %w", raw, err)
		}
	}
	if st.CursorMs > 0 {
		t.cursor = time.UnixMilli(st.CursorMs).UTC()
	} else {
		t.cursor = t.clock.Now().Add(-t.settle).UTC().Truncate(time.Millisecond)
	}
	t.log.Info().Time("cursor", t.cursor).Str("endpoint", t.cfg.Endpoint).Bool("clickhouse", t.cfg.ClickHouse).Msg("tracing from cursor")
	return nil
}

// Shutdown closes the exporter's connection; Run sent what was queued
// before it returned.
func (t *Tracer) Shutdown(context.Context) error {
	if t.exp == nil {
		return nil
	}
	return t.exp.close()
}

// Run passes every interval until ctx ends. Its first pass reads the
// cursor again: Run may be called again after it returned (a replica that
// leads again, docs/replicas.md), and another replica may have moved the
// cursor on meanwhile.
func (t *Tracer) Run(ctx context.Context) error {
	t.mu.Lock()
	t.reload = true
	t.mu.Unlock()
	var wg sync.WaitGroup
	if t.exp != nil {
		wg.Go(func() { t.exp.Run(ctx, t.cfg.Timeout) })
	}
	tick := t.clock.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	var began time.Time // of the last pass
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-tick.Chan():
			if t.yield(began) {
				t.m.yields.Inc()
				continue
			}
			began = t.clock.Now()
			// Behind (a pass read its limit): pass again at once, until
			// caught up.
			for more := true; more && ctx.Err() == nil; {
				var err error
				if _, more, err = t.pass(ctx); err != nil && ctx.Err() == nil {
					t.m.errors.Inc()
					t.log.Warn().Err(err).Msg("tracing pass failed; will try again")
				}
			}
		}
	}
}

// yield reports whether the pass due now is put off: the tap is catching
// up on a backlog and the last pass began less than backlog_interval ago.
// The spans wait for the tap, as the detector's checks do; a pass that is
// not put off catches up whole (docs/tracing.md, "Speed").
func (t *Tracer) yield(last time.Time) bool {
	return t.behind != nil && t.cfg.BacklogInterval > t.cfg.Interval && !last.IsZero() &&
		t.clock.Since(last) < t.cfg.BacklogInterval && t.behind()
}

// Cursor is where the next pass starts.
func (t *Tracer) Cursor() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cursor
}

// Pass exports the spans of the events first stored since the cursor and
// returns how many spans it built.
func (t *Tracer) Pass(ctx context.Context) (int, error) {
	n, _, err := t.pass(ctx)
	return n, err
}

// pass is Pass, also saying whether it stopped at its limit.
func (t *Tracer) pass(ctx context.Context) (n int, more bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reload {
		if err := t.load(ctx); err != nil {
			return 0, false, err
		}
		t.reload = false
	}
	now := t.clock.Now()
	to := now.Add(-t.settle).Truncate(time.Millisecond)
	if t.storing != nil {
		if s := t.storing(); !s.IsZero() && s.Before(to) {
			to = s.Truncate(time.Millisecond)
		}
	}
	t.m.lag.Set(max(now.Sub(t.cursor).Seconds(), 0))
	if !to.After(t.cursor) {
		return 0, false, nil
	}
	// A window of about limit rows first: NewTraceEvents aggregates every
	// record of the window's orders, so a window over a whole backlog
	// would be read again for each page taken from it.
	end, err := t.store.TraceWindowEnd(ctx, t.cursor, to, t.limit)
	if err != nil {
		return 0, false, err
	}
	if end.Before(to) {
		to, more = end, true
	}
	rows, err := t.store.NewTraceEvents(ctx, t.cursor, to, t.limit)
	if err != nil {
		return 0, false, err
	}
	if len(rows) == t.limit {
		more = true
		// Stop short of the last millisecond read, which may hold more
		// rows than fit; unless the whole page is one millisecond.
		lastMs := rows[len(rows)-1].FirstIngestedAt
		cut := sort.Search(len(rows), func(i int) bool { return !rows[i].FirstIngestedAt.Before(lastMs) })
		if cut > 0 {
			rows, to = rows[:cut], lastMs
		} else {
			// The page is one millisecond (a tap batch is stamped with one
			// time): that millisecond whole, however many rows it holds.
			to = lastMs.Add(time.Millisecond)
			if rows, err = t.store.NewTraceEvents(ctx, lastMs, to, math.MaxInt32); err != nil {
				return 0, false, err
			}
		}
	}
	td, n, err := t.build(ctx, rows)
	if err != nil {
		return 0, false, err
	}
	if t.cfg.ClickHouse && n > 0 {
		if err := t.store.InsertSpans(ctx, SpanRows(td)); err != nil {
			return 0, false, err // the cursor stays: the pass is done again
		}
		t.m.spans.WithLabelValues(OutcomeStored).Add(float64(n))
	}
	if t.exp != nil {
		// Before this pass's spans are sampled: promote exports an order's
		// spans stored before the cursor, this pass's from it on.
		if err := t.promote(ctx); err != nil {
			t.log.Warn().Err(err).Msg("tracing: exporting orders with a finding failed; will try again")
		}
	}
	if err := t.findingSpans(ctx); err != nil {
		t.log.Warn().Err(err).Msg("tracing: the spans of new findings failed; will try again")
	}
	if t.exp != nil && n > 0 {
		sampled, skipped := t.sample(td)
		t.m.spans.WithLabelValues(OutcomeUnsampled).Add(float64(skipped))
		t.exp.Enqueue(sampled)
	}
	t.cursor = to.UTC()
	t.m.lag.Set(max(now.Sub(t.cursor).Seconds(), 0))
	st, _ := json.Marshal(tracerState{CursorMs: t.cursor.UnixMilli()})
	if err := t.store.SaveDetectorState(ctx, stateName, string(st), now); err != nil {
		// Kept in memory: only a restart before the next save repeats spans.
		t.log.Warn().Err(err).Msg("tracing cursor not saved")
	}
	return n, more, nil
}

// build places rows in their orders' chains and builds their spans.
func (t *Tracer) build(ctx context.Context, rows []chstore.TraceEventRow) (ptrace.Traces, int, error) {
	td := ptrace.NewTraces()
	if len(rows) == 0 {
		return td, 0, nil
	}
	byOrder := map[string][]chstore.TraceEventRow{}
	var ids []string
	for _, r := range rows {
		if _, ok := byOrder[r.OrderID]; !ok {
			ids = append(ids, r.OrderID)
		}
		byOrder[r.OrderID] = append(byOrder[r.OrderID], r)
	}
	// Chains are read a few hundred orders at a time: a chain event held
	// costs a few KB, and a pass may touch thousands of orders.
	chains := map[string][]consistency.ChainEvent{}
	for rest := ids; len(rest) > 0; {
		n := min(len(rest), chainOrders)
		part, err := t.engine.Chains(ctx, rest[:n])
		if err != nil {
			return td, 0, fmt.Errorf("tracing: %w", err)
		}
		maps.Copy(chains, part)
		rest = rest[n:]
	}
	var evs []Event
	dups := 0
	for _, id := range ids {
		for _, e := range Assemble(byOrder[id], chains[id]) {
			if e.Duplicate {
				dups++
				continue
			}
			e.Copies = nil // a span is exported once; its later copies are not news
			evs = append(evs, e)
		}
	}
	if t.cfg.ClickHouse {
		// A record stored again once its first copy was merged away looks
		// new to NewTraceEvents; otel_traces remembers its span.
		want := map[string][]string{}
		for _, e := range evs {
			tid := t.b.TraceID(e.OrderID, e.CorrelationID).String()
			want[tid] = append(want[tid], t.b.IDs.SpanID(e.OrderID, e.EventID).String())
		}
		stored, err := t.store.StoredSpans(ctx, want)
		if err != nil {
			return td, 0, fmt.Errorf("tracing: %w", err)
		}
		kept := evs[:0]
		for _, e := range evs {
			if stored[t.b.TraceID(e.OrderID, e.CorrelationID).String()+"/"+t.b.IDs.SpanID(e.OrderID, e.EventID).String()] {
				dups++
				continue
			}
			kept = append(kept, e)
		}
		evs = kept
	}
	n := t.b.Build(td, evs, nil)
	t.m.spans.WithLabelValues(OutcomeBuilt).Add(float64(n))
	t.m.spans.WithLabelValues(OutcomeDuplicate).Add(float64(dups))
	return td, n, nil
}

// promote exports, for up to promotedPerPass orders a finding opened on,
// the spans of their events stored before the cursor (those stored later
// are exported as they come, their traces being promoted), the latest
// marked with the findings. Left out: spans of sampled traces, and by
// correlation id those exported as they came since another order promoted
// their trace: each span is sent once.
func (t *Tracer) promote(ctx context.Context) error {
	t.fmu.Lock()
	batch := map[string][]Finding{}
	for id, fs := range t.pending {
		if len(batch) == promotedPerPass {
			break
		}
		batch[id] = fs
	}
	t.fmu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	ratio := t.cfg.ratio()
	td := ptrace.NewTraces()
	traces := map[pcommon.TraceID]bool{}
	for id, fs := range batch {
		rows, err := t.store.OrderTraceEvents(ctx, id)
		if err != nil {
			return err
		}
		t.fmu.Lock()
		kept := rows[:0]
		for _, r := range rows {
			tid := t.b.TraceID(r.OrderID, r.CorrelationID)
			at, ok := t.promoted[tid]
			if !r.FirstIngestedAt.Before(t.cursor) || Sampled(tid, ratio) || ok && !r.FirstIngestedAt.Before(at) {
				continue
			}
			traces[tid] = true
			kept = append(kept, r)
		}
		t.fmu.Unlock()
		chain, err := t.engine.Chain(ctx, id)
		if err != nil {
			return err
		}
		evs := Assemble(kept, chain)
		for i := range evs {
			evs[i].Copies = nil
		}
		t.b.Build(td, evs, map[string][]Finding{id: fs})
	}
	t.fmu.Lock()
	if len(t.promoted) > promotedLimit || len(t.orders) > promotedLimit {
		// Forgets: a later finding exports an order's spans again.
		t.promoted, t.orders = map[pcommon.TraceID]time.Time{}, map[string]bool{}
	}
	for id := range batch {
		delete(t.pending, id)
		t.orders[id] = true
	}
	for tid := range traces {
		if _, ok := t.promoted[tid]; !ok {
			t.promoted[tid] = t.cursor
		}
	}
	t.fmu.Unlock()
	t.exp.Enqueue(td)
	return nil
}

// findingSpans makes the spans of up to promotedPerPass findings opened
// since the last pass, each under the span of its order's latest event
// stored so far: stored in otel_traces, and exported when its trace is
// sampled or promoted (as the order's other spans are). A finding whose
// order has no stored event is dropped.
func (t *Tracer) findingSpans(ctx context.Context) error {
	t.fmu.Lock()
	batch := t.opened[:min(len(t.opened), promotedPerPass)]
	t.fmu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	td := ptrace.NewTraces()
	for _, f := range batch {
		rows, err := t.store.OrderTraceEvents(ctx, f.OrderID)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			continue
		}
		latest := rows[0]
		for _, r := range rows[1:] {
			if !r.EventTime.Before(latest.EventTime) {
				latest = r
			}
		}
		e := Event{TraceEventRow: latest}
		if chain, err := t.engine.Chain(ctx, f.OrderID); err != nil {
			return err
		} else if es := Assemble([]chstore.TraceEventRow{latest}, chain); len(es) == 1 {
			e = es[0] // its identity as the chain knows it (a replay's is its original's)
		}
		t.b.FindingSpan(td, e, FindingsOf([]consistency.Finding{f})[0])
	}
	if t.cfg.ClickHouse && td.SpanCount() > 0 {
		if err := t.store.InsertSpans(ctx, SpanRows(td)); err != nil {
			return err
		}
		t.m.spans.WithLabelValues(OutcomeStored).Add(float64(td.SpanCount()))
	}
	t.m.spans.WithLabelValues(OutcomeBuilt).Add(float64(td.SpanCount()))
	t.fmu.Lock()
	t.opened = t.opened[len(batch):]
	t.fmu.Unlock()
	if t.exp != nil && td.SpanCount() > 0 {
		sampled, skipped := t.sample(td)
		t.m.spans.WithLabelValues(OutcomeUnsampled).Add(float64(skipped))
		t.exp.Enqueue(sampled)
	}
	return nil
}

// sample splits td by the sampling ratio.
func (t *Tracer) sample(td ptrace.Traces) (ptrace.Traces, int) {
	r := t.cfg.ratio()
	if r >= 1 {
		return td, 0
	}
	out := ptrace.NewTraces()
	td.CopyTo(out)
	t.fmu.Lock()
	defer t.fmu.Unlock()
	skipped := 0
	rss := out.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sss.At(j).Spans().RemoveIf(func(s ptrace.Span) bool {
				_, promoted := t.promoted[s.TraceID()]
				drop := !Sampled(s.TraceID(), r) && !promoted
				if drop {
					skipped++
				}
				return drop
			})
		}
	}
	return out, skipped
}

// OrderTrace builds an order's whole trace: every event, its duplicates
// as span events, its active findings on the span of its latest event.
func OrderTrace(ctx context.Context, b Builder, store *chstore.Store, engine *consistency.Engine, orderID string) (ptrace.Traces, error) {
	td := ptrace.NewTraces()
	rows, err := store.OrderTraceEvents(ctx, orderID)
	if err != nil {
		return td, err
	}
	if len(rows) == 0 {
		return td, nil
	}
	chain, err := engine.Chain(ctx, orderID)
	if err != nil {
		return td, err
	}
	fs, err := engine.Findings(ctx, consistency.FindingFilter{OrderID: orderID, Status: "active"})
	if err != nil {
		return td, err
	}
	b.Build(td, Assemble(rows, chain), map[string][]Finding{orderID: FindingsOf(fs)})
	return td, nil
}
