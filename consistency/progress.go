package consistency

import (
	"context"
	"fmt"
	"time"
)

// Progress is where one order stands, as the detector stores it in
// order_progress: the workflow it waits in (of its workflows, the one whose
// current step was entered last), that step, and when the step's SLA runs out.
type Progress struct {
	OrderID   string
	Workflow  string // "" when no workflow knows the order's events
	Step      string
	Terminal  bool
	EnteredAt time.Time
	Deadline  time.Time // zero when terminal or outside every workflow
	// Recheck is when the order's time-windowed checks next change on the
	// stream's clock (RecheckAt); zero when they no longer can.
	Recheck       time.Time
	LastEventType string
	LastEventTime time.Time
	Events        int
}

// progressOf places an order from its chain, the same way OrderStates does.
func progressOf(ws []Workflow, orderID string, evs []ChainEvent) Progress {
	p := Progress{OrderID: orderID, Events: len(evs), Terminal: true}
	for _, e := range evs {
		if p.LastEventType == "" || e.EventTime.After(p.LastEventTime) {
			p.LastEventType, p.LastEventTime = e.Type, e.EventTime
		}
	}
	states := OrderStates(ws, evs)
	if len(states) == 0 {
		return p
	}
	s := states[0]
	p.Workflow, p.Step, p.Terminal, p.EnteredAt = s.Workflow, s.Step, s.Terminal, s.Entered
	if !s.Terminal {
		p.Deadline = s.Entered.Add(time.Duration(s.SLA * float64(time.Second)))
	}
	return p
}

// stuckAt says whether the order is stuck at stream time now, and how.
func (e *Engine) stuckAt(p Progress, now time.Time) (StuckOrder, bool) {
	if p.Terminal || p.Workflow == "" || !now.After(p.Deadline) {
		return StuckOrder{}, false
	}
	w, ok := e.byName[p.Workflow]
	if !ok {
		return StuckOrder{}, false
	}
	st, ok := w.Step(p.Step)
	if !ok {
		return StuckOrder{}, false
	}
	s := StuckOrder{OrderID: p.OrderID, Workflow: p.Workflow, Step: p.Step, EnteredAt: p.EnteredAt,
		InStep: now.Sub(p.EnteredAt), SLA: st.SLA, LastEventType: p.LastEventType, LastEventTime: p.LastEventTime,
		Owner: st.Owner, Expects: st.Expects}
	s.InStepSeconds, s.SLASeconds = s.InStep.Seconds(), s.SLA.Seconds()
	return s, true
}

// writeProgress stores a new version of each order's progress, and its
// SLA deadline and recheck time when they are still ahead of now, so a
// later pass finds them by range.
func (e *Engine) writeProgress(ctx context.Context, ps []Progress, now, at time.Time) error {
	if len(ps) == 0 {
		return nil
	}
	b, err := e.store.Conn().PrepareBatch(ctx, "INSERT INTO "+e.store.Table("order_progress")+
		` (order_id, workflow, step, terminal, entered_at, deadline, recheck, last_event_type, last_event_time, events, updated_at)`)
	if err != nil {
		return fmt.Errorf("prepare progress batch: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	var ahead []deadlineKey
	for _, p := range ps {
		if err := b.Append(p.OrderID, p.Workflow, p.Step, p.Terminal, p.EnteredAt, p.Deadline, p.Recheck, p.LastEventType,
			p.LastEventTime, uint32(p.Events), at); err != nil {
			return fmt.Errorf("append progress: %w", err)
		}
		if !p.Terminal && p.Workflow != "" && p.Deadline.After(now) {
			ahead = append(ahead, deadlineKey{p.Deadline, p.OrderID})
		}
		if p.Recheck.After(now) {
			ahead = append(ahead, deadlineKey{p.Recheck, p.OrderID})
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert progress of %d orders: %w", len(ps), err)
	}
	if len(ahead) == 0 {
		return nil
	}
	d, err := e.store.Conn().PrepareBatch(ctx, "INSERT INTO "+e.store.Table("order_deadlines")+" (deadline, order_id)")
	if err != nil {
		return fmt.Errorf("prepare deadlines batch: %w", err)
	}
	defer d.Abort() //nolint:errcheck // no-op after Send
	for _, k := range ahead {
		if err := d.Append(k.Deadline, k.OrderID); err != nil {
			return fmt.Errorf("append deadline: %w", err)
		}
	}
	if err := d.Send(); err != nil {
		return fmt.Errorf("insert %d deadlines: %w", len(ahead), err)
	}
	return nil
}

// msParam is a DateTime64(3) query parameter given as Unix milliseconds:
// clickhouse-go binds a time.Time to whole seconds.
const msParam = "fromUnixTimestamp64Milli(?, 'UTC')"

// deadlineKey is a position in order_deadlines.
type deadlineKey struct {
	Deadline time.Time `json:"deadline"`
	OrderID  string    `json:"order_id"`
}

// dueOrders returns up to limit orders whose deadline is after from (and
// after the key after, when set) and at most to, in deadline order, with the
// key of the last one.
func (e *Engine) dueOrders(ctx context.Context, from, to time.Time, after deadlineKey, limit int) ([]deadlineKey, error) {
	if from.IsZero() {
		from = time.Unix(0, 0)
	}
	if after.Deadline.IsZero() {
		after.Deadline = time.Unix(0, 0)
	}
	rows, err := e.store.Conn().Query(ctx, `SELECT DISTINCT deadline, order_id FROM `+e.store.Table("order_deadlines")+`
WHERE deadline > `+msParam+` AND deadline <= `+msParam+` AND (deadline, order_id) > (`+msParam+`, ?)
ORDER BY deadline, order_id
LIMIT ?`, from.UnixMilli(), to.UnixMilli(), after.Deadline.UnixMilli(), after.OrderID, limit)
	if err != nil {
		return nil, fmt.Errorf("due orders: %w", err)
	}
	defer rows.Close()
	var out []deadlineKey
	for rows.Next() {
		var k deadlineKey
		if err := rows.Scan(&k.Deadline, &k.OrderID); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// progressOfOrders reads the latest stored progress of the given orders.
func (e *Engine) progressOfOrders(ctx context.Context, ids []string) (map[string]Progress, error) {
	out := make(map[string]Progress, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := e.store.Conn().Query(ctx, `SELECT order_id, workflow, step, terminal, entered_at, deadline, recheck,
       last_event_type, last_event_time, events
FROM `+e.store.Table("order_progress")+` FINAL
WHERE order_id IN ?`, ids)
	if err != nil {
		return nil, fmt.Errorf("read progress of %d orders: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p Progress
			n uint32
		)
		if err := rows.Scan(&p.OrderID, &p.Workflow, &p.Step, &p.Terminal, &p.EnteredAt, &p.Deadline, &p.Recheck,
			&p.LastEventType, &p.LastEventTime, &n); err != nil {
			return nil, fmt.Errorf("scan progress: %w", err)
		}
		p.Events = int(n)
		out[p.OrderID] = p
	}
	return out, rows.Err()
}

// changedPage returns up to limit order ids, in order, after the id after,
// with an event ingested in [from, to).
func (e *Engine) changedPage(ctx context.Context, from, to time.Time, after string, limit int) ([]string, error) {
	if from.IsZero() { // the whole history
		from = time.Unix(0, 0)
	}
	where := "ingested_at >= " + msParam + " AND ingested_at < " + msParam
	args := []any{from.UnixMilli(), to.UnixMilli()}
	args = append(args, after, limit)
	rows, err := e.store.Conn().Query(ctx, `SELECT DISTINCT order_id FROM `+e.store.Table("events")+`
WHERE `+where+` AND order_id > ?
ORDER BY order_id
LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("changed orders: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
