package chstore

import (
	"context"
	"fmt"
	"time"
)

// ProgressRow is one version of an order's progress in order_progress:
// where the consistency detector last placed it.
type ProgressRow struct {
	OrderID, Workflow, Step string
	Terminal                bool
	EnteredAt               time.Time
	Deadline, Recheck       time.Time
	LastEventType           string
	LastEventTime           time.Time
	Events                  uint32
}

// InsertProgress stores a new version of each order's progress, updated at
// at, in one batch.
func (s *Store) InsertProgress(ctx context.Context, ps []ProgressRow, at time.Time) error {
	if len(ps) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.Table("order_progress")+
		` (order_id, workflow, step, terminal, entered_at, deadline, recheck, last_event_type, last_event_time, events, updated_at)`)
	if err != nil {
		return fmt.Errorf("prepare progress batch: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	for _, p := range ps {
		if err := b.Append(p.OrderID, p.Workflow, p.Step, p.Terminal, p.EnteredAt, p.Deadline, p.Recheck, p.LastEventType,
			p.LastEventTime, p.Events, at); err != nil {
			return fmt.Errorf("append progress: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert progress of %d orders: %w", len(ps), err)
	}
	return nil
}

// ProgressOf reads the latest stored progress of the given orders, in one
// query.
func (s *Store) ProgressOf(ctx context.Context, orderIDs []string) ([]ProgressRow, error) {
	if len(orderIDs) == 0 {
		return nil, nil
	}
	rows, err := s.conn.Query(ctx, `SELECT order_id, workflow, step, terminal, entered_at, deadline, recheck,
       last_event_type, last_event_time, events
FROM `+s.Table("order_progress")+` FINAL
WHERE order_id IN ?`, orderIDs)
	if err != nil {
		return nil, fmt.Errorf("read progress of %d orders: %w", len(orderIDs), err)
	}
	defer rows.Close()
	var out []ProgressRow
	for rows.Next() {
		var p ProgressRow
		if err := rows.Scan(&p.OrderID, &p.Workflow, &p.Step, &p.Terminal, &p.EnteredAt, &p.Deadline, &p.Recheck,
			&p.LastEventType, &p.LastEventTime, &p.Events); err != nil {
			return nil, fmt.Errorf("scan progress: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Deadline is a row of order_deadlines: when something about an order
// falls due on the stream's clock (an SLA deadline, a recheck time).
type Deadline struct {
	At      time.Time
	OrderID string
}

// InsertDeadlines stores deadlines in one batch.
func (s *Store) InsertDeadlines(ctx context.Context, ds []Deadline) error {
	if len(ds) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.Table("order_deadlines")+" (deadline, order_id)")
	if err != nil {
		return fmt.Errorf("prepare deadlines batch: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	for _, d := range ds {
		if err := b.Append(d.At, d.OrderID); err != nil {
			return fmt.Errorf("append deadline: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d deadlines: %w", len(ds), err)
	}
	return nil
}

// DueDeadlines returns up to limit distinct deadlines after from (and after
// the position after, when set) and at most to, in (deadline, order id)
// order; a zero from is the beginning of time.
func (s *Store) DueDeadlines(ctx context.Context, from, to time.Time, after Deadline, limit int) ([]Deadline, error) {
	if from.IsZero() {
		from = time.Unix(0, 0)
	}
	if after.At.IsZero() {
		after.At = time.Unix(0, 0)
	}
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT deadline, order_id FROM `+s.Table("order_deadlines")+`
WHERE deadline > `+msParam+` AND deadline <= `+msParam+` AND (deadline, order_id) > (`+msParam+`, ?)
ORDER BY deadline, order_id
LIMIT ?`, from.UnixMilli(), to.UnixMilli(), after.At.UnixMilli(), after.OrderID, limit)
	if err != nil {
		return nil, fmt.Errorf("due orders: %w", err)
	}
	defer rows.Close()
	var out []Deadline
	for rows.Next() {
		var d Deadline
		if err := rows.Scan(&d.At, &d.OrderID); err != nil {
			return nil, fmt.Errorf("scan deadline: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
