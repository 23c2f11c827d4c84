package consistency

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
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
}

// Filter narrows a stuck-orders query. Zero values match everything.
type Filter struct {
	Workflow string
	Step     string
	// Service matches the owner of the next event.
	Service string
	// OlderThan keeps orders at least this long in their step.
	OlderThan time.Duration
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
	ranks     map[string]int // stepRanks(workflows)
	wall      func() time.Time
}

// NewEngine builds an engine over the given workflows. It does no I/O.
func NewEngine(store *chstore.Store, workflows []Workflow) *Engine {
	e := &Engine{store: store, workflows: workflows, byName: map[string]Workflow{}, ranks: stepRanks(workflows), wall: time.Now}
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
	var maxEvent, maxIngest time.Time
	q := "SELECT max(event_time), max(ingested_at) FROM " + e.store.Table("events")
	var args []any
	if prev.MaxIngestTime.Unix() > 0 {
		q += " WHERE ingested_at >= " + msParam
		args = append(args, prev.MaxIngestTime.Add(-time.Minute).UnixMilli())
	}
	if err := e.store.Conn().QueryRow(ctx, q, args...).Scan(&maxEvent, &maxIngest); err != nil {
		return Clock{}, fmt.Errorf("read watermark: %w", err)
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
		orders, err := e.StuckLive(ctx, clock, Filter{Workflow: f.Workflow, Step: f.Step, Service: f.Service, OlderThan: f.OlderThan})
		if err != nil {
			return StuckResult{}, err
		}
		res := StuckResult{Orders: orders, Total: len(orders), Source: "live", LastPass: st.PassAt}
		if f.Limit > 0 && len(res.Orders) > f.Limit {
			res.Orders = res.Orders[:f.Limit]
		}
		return res, nil
	}
	res, err := e.stuckFindings(ctx, clock, f)
	res.LastPass, res.CatchingUp = st.PassAt, st.CatchingUp
	return res, err
}

// stuckFindings reads the open and acknowledged stuck findings.
func (e *Engine) stuckFindings(ctx context.Context, clock Clock, f Filter) (StuckResult, error) {
	where := []string{"1"}
	var args []any
	if f.Workflow != "" {
		where, args = append(where, "workflow = ?"), append(args, f.Workflow)
	}
	if f.Step != "" {
		where, args = append(where, "step = ?"), append(args, f.Step)
	}
	if f.Service != "" {
		var owned []string
		for _, w := range e.workflows {
			for _, st := range w.Steps {
				if st.Owner == f.Service {
					owned = append(owned, fmt.Sprintf("(%s, %s)", quote(w.Name), quote(st.Name)))
				}
			}
		}
		if len(owned) == 0 {
			return StuckResult{Orders: []StuckOrder{}, Source: "detector"}, nil
		}
		where = append(where, "(workflow, step) IN ("+strings.Join(owned, ", ")+")")
	}
	if f.OlderThan > 0 {
		where, args = append(where, "since <= "+msParam), append(args, clock.Now.Add(-f.OlderThan).UnixMilli())
	}
	limit := ""
	if f.Limit > 0 {
		limit = fmt.Sprintf("LIMIT %d", f.Limit)
	}
	rows, err := e.store.Conn().Query(ctx, `
SELECT order_id, workflow, step, since, count() OVER () AS total
FROM `+e.store.Table("findings")+` FINAL
WHERE kind = 'stuck' AND status != 'resolved' AND `+strings.Join(where, " AND ")+`
ORDER BY since, order_id
`+limit, args...)
	if err != nil {
		return StuckResult{}, fmt.Errorf("stuck findings: %w", err)
	}
	defer rows.Close()
	res := StuckResult{Orders: []StuckOrder{}, Source: "detector"}
	var ids []string
	for rows.Next() {
		var (
			s     StuckOrder
			total uint64
		)
		if err := rows.Scan(&s.OrderID, &s.Workflow, &s.Step, &s.EnteredAt, &total); err != nil {
			return StuckResult{}, fmt.Errorf("scan stuck finding: %w", err)
		}
		res.Total = int(total)
		if w, ok := e.byName[s.Workflow]; ok {
			if st, ok := w.Step(s.Step); ok {
				s.SLA, s.Owner, s.Expects = st.SLA, st.Owner, st.Expects
			}
		}
		s.EnteredAt = s.EnteredAt.UTC()
		s.InStep = clock.Now.Sub(s.EnteredAt)
		s.InStepSeconds, s.SLASeconds = s.InStep.Seconds(), s.SLA.Seconds()
		res.Orders = append(res.Orders, s)
		ids = append(ids, s.OrderID)
	}
	if err := rows.Err(); err != nil {
		return StuckResult{}, err
	}
	last, err := e.stuckLastEvents(ctx, ids)
	if err != nil {
		return StuckResult{}, err
	}
	for i := range res.Orders {
		if l, ok := last[res.Orders[i].OrderID]; ok {
			res.Orders[i].LastEventType, res.Orders[i].LastEventTime = l.LastEventType, l.LastEventTime.UTC()
		}
	}
	return res, nil
}

// stuckLastEvents returns the last event of each of the given stuck
// orders, from the evidence of its stuck finding: written when the finding
// was opened or last refreshed, and the order has not changed since (a
// change refreshes or resolves the finding). The findings are keyed by
// kind and order, so this reads a few granules; order_progress, keyed by
// order alone, would cost a granule per order in every part.
func (e *Engine) stuckLastEvents(ctx context.Context, ids []string) (map[string]StuckOrder, error) {
	out := make(map[string]StuckOrder, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := e.store.Conn().Query(ctx, `SELECT order_id, evidence FROM `+e.store.Table("findings")+` FINAL
WHERE kind = 'stuck' AND order_id IN ? AND status != 'resolved'`, ids)
	if err != nil {
		return nil, fmt.Errorf("last events of stuck orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, ev string
		if err := rows.Scan(&id, &ev); err != nil {
			return nil, fmt.Errorf("scan stuck evidence: %w", err)
		}
		var s StuckOrder
		if json.Unmarshal([]byte(ev), &s) == nil && s.LastEventType != "" {
			out[id] = s
		}
	}
	return out, rows.Err()
}

// StuckLive evaluates every order now from the order_state view: exact
// without a detector, but it reads every order, so it takes seconds on
// millions of orders (docs/consistency.md).
func (e *Engine) StuckLive(ctx context.Context, clock Clock, f Filter) ([]StuckOrder, error) {
	if len(e.workflows) == 0 {
		return nil, nil
	}
	q := stuckSQL(e.store.Table("order_state"), e.workflows, clock.Now, f)
	rows, err := e.store.Conn().Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("stuck orders query: %w", err)
	}
	defer rows.Close()
	var out []StuckOrder
	for rows.Next() {
		var (
			s                 StuckOrder
			stepIdx           uint32
			enteredMs, lastMs int64
			inStepMs, slaMs   int64
		)
		if err := rows.Scan(&s.OrderID, &s.Workflow, &stepIdx, &enteredMs, &s.LastEventType, &lastMs, &inStepMs, &slaMs); err != nil {
			return nil, fmt.Errorf("scan stuck order: %w", err)
		}
		w := e.byName[s.Workflow]
		if int(stepIdx) < 1 || int(stepIdx) > len(w.Steps) {
			continue
		}
		st := w.Steps[stepIdx-1]
		s.Step, s.Owner, s.Expects = st.Name, st.Owner, st.Expects
		s.EnteredAt = time.UnixMilli(enteredMs).UTC()
		s.LastEventTime = time.UnixMilli(lastMs).UTC()
		s.InStep = time.Duration(inStepMs) * time.Millisecond
		s.SLA = time.Duration(slaMs) * time.Millisecond
		s.InStepSeconds, s.SLASeconds = s.InStep.Seconds(), s.SLA.Seconds()
		if f.Workflow != "" && s.Workflow != f.Workflow || f.Step != "" && s.Step != f.Step || f.Service != "" && s.Owner != f.Service {
			continue
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// stuckSQL generates the stuck-orders query from the workflows. Per order it
// reads the per-type last event times kept by the order_state view (merged
// with FINAL, several times cheaper than a GROUP BY of map-valued states), maps
// event types to step indexes with transform(), picks the workflow instance
// entered last, and keeps it if it is unfinished and past its SLA, all in
// ClickHouse.
func stuckSQL(orderState string, workflows []Workflow, now time.Time, f Filter) string {
	var parts []string
	for _, w := range workflows {
		var types, idxs, terminal, stepIdx, slas []string
		for i, st := range w.Steps {
			stepIdx = append(stepIdx, fmt.Sprint(i+1))
			slas = append(slas, fmt.Sprint(st.SLA.Milliseconds()))
			for _, t := range st.On {
				types = append(types, quote(t))
				idxs = append(idxs, fmt.Sprint(i+1))
				if st.Terminal {
					terminal = append(terminal, quote(t))
				}
			}
		}
		var ident []string
		for _, t := range w.IdentifiedBy {
			ident = append(ident, quote(t))
		}
		sort.Strings(ident)
		parts = append(parts, fmt.Sprintf(`
    SELECT
        order_id,
        %s AS workflow,
        arrayMap(k -> toUInt32(transform(k, [%s], [%s], 0)), mapKeys(tl)) AS idx,
        arrayMax(idx) AS step_idx,
        hasAny(mapKeys(tl), [%s]) AS term,
        if(term,
           arrayMax(arrayMap((k, v) -> if(has([%[4]s], k), v, 0), mapKeys(tl), mapValues(tl))),
           arrayMax(arrayMap((i, v) -> if(i = step_idx, v, 0), idx, mapValues(tl)))) AS entered_ms,
        transform(step_idx, [%s], [%s], 0) AS sla_ms,
        last_type, last_ms
    FROM orders
    WHERE hasAny(mapKeys(tl), [%s])`,
			quote(w.Name), strings.Join(types, ", "), strings.Join(idxs, ", "),
			strings.Join(append(terminal, "''"), ", "),
			strings.Join(stepIdx, ", "), strings.Join(slas, ", "),
			strings.Join(ident, ", ")))
	}
	if len(parts) == 0 {
		parts = append(parts, `SELECT '' AS order_id, '' AS workflow, [toUInt32(0)] AS idx, toUInt32(0) AS step_idx,
        false AS term, toInt64(0) AS entered_ms, toInt64(0) AS sla_ms, '' AS last_type, toInt64(0) AS last_ms WHERE 0`)
	}
	nowMs := now.UnixMilli()
	older := f.OlderThan.Milliseconds()
	limit := ""
	if f.Limit > 0 && f.Workflow == "" && f.Step == "" && f.Service == "" {
		limit = fmt.Sprintf("LIMIT %d", f.Limit)
	}
	return fmt.Sprintf(`
WITH orders AS
(
    SELECT
        order_id,
        type_last AS tl,
        mapKeys(tl)[indexOf(mapValues(tl), arrayMax(mapValues(tl)))] AS last_type,
        arrayMax(mapValues(tl)) AS last_ms
    FROM %s FINAL
)
SELECT order_id, wf, step, entered, last_event_type, last_event_ms, in_step_ms, sla
FROM
(
SELECT
    order_id,
    argMax((workflow, step_idx, toInt64(entered_ms), toInt64(sla_ms), term), (entered_ms, NOT term)) AS pick,
    pick.1                                AS wf,
    pick.2                                AS step,
    pick.3                                AS entered,
    any(last_type)                        AS last_event_type,
    any(last_ms)                          AS last_event_ms,
    toInt64(%d) - entered                 AS in_step_ms,
    pick.4                                AS sla
FROM
(%s
)
GROUP BY order_id
HAVING NOT pick.5 AND in_step_ms > sla AND in_step_ms >= %d
)
ORDER BY in_step_ms DESC, order_id
%s`, orderState, nowMs, strings.Join(parts, "\n    UNION ALL"), older, limit)
}

// quote renders s as a ClickHouse string literal.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}
