package consistency

import (
	"context"
	"time"

	"github.com/weft-sh/weft/internal/chstore"
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
	rows := make([]chstore.ProgressRow, len(ps))
	var ahead []chstore.Deadline
	for i, p := range ps {
		rows[i] = chstore.ProgressRow{OrderID: p.OrderID, Workflow: p.Workflow, Step: p.Step, Terminal: p.Terminal,
			EnteredAt: p.EnteredAt, Deadline: p.Deadline, Recheck: p.Recheck, LastEventType: p.LastEventType,
			LastEventTime: p.LastEventTime, Events: uint32(p.Events)}
		if !p.Terminal && p.Workflow != "" && p.Deadline.After(now) {
			ahead = append(ahead, chstore.Deadline{At: p.Deadline, OrderID: p.OrderID})
		}
		if p.Recheck.After(now) {
			ahead = append(ahead, chstore.Deadline{At: p.Recheck, OrderID: p.OrderID})
		}
	}
	if err := e.store.InsertProgress(ctx, rows, at); err != nil {
		return err
	}
	return e.store.InsertDeadlines(ctx, ahead)
}

// deadlineKey is a position in order_deadlines.
type deadlineKey struct {
	Deadline time.Time `json:"deadline"`
	OrderID  string    `json:"order_id"`
}

// dueOrders returns up to limit orders whose deadline is after from (and
// after the key after, when set) and at most to, in deadline order, with the
// key of the last one.
func (e *Engine) dueOrders(ctx context.Context, from, to time.Time, after deadlineKey, limit int) ([]deadlineKey, error) {
	ds, err := e.store.DueDeadlines(ctx, from, to, chstore.Deadline{At: after.Deadline, OrderID: after.OrderID}, limit)
	if err != nil {
		return nil, err
	}
	out := make([]deadlineKey, len(ds))
	for i, d := range ds {
		out[i] = deadlineKey{Deadline: d.At, OrderID: d.OrderID}
	}
	return out, nil
}

// progressOfOrders reads the latest stored progress of the given orders.
func (e *Engine) progressOfOrders(ctx context.Context, ids []string) (map[string]Progress, error) {
	out := make(map[string]Progress, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := e.store.ProgressOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.OrderID] = Progress{OrderID: r.OrderID, Workflow: r.Workflow, Step: r.Step, Terminal: r.Terminal,
			EnteredAt: r.EnteredAt, Deadline: r.Deadline, Recheck: r.Recheck, LastEventType: r.LastEventType,
			LastEventTime: r.LastEventTime, Events: int(r.Events)}
	}
	return out, nil
}

// changedPage returns up to limit order ids, in order, after the id after,
// with an event ingested in [from, to).
func (e *Engine) changedPage(ctx context.Context, from, to time.Time, after string, limit int) ([]string, error) {
	return e.store.ChangedOrders(ctx, from, to, after, limit)
}
