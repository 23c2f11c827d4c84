package chstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// WorkflowRule is a workflow as the stuck-orders query places orders in it:
// an order is in the workflow once it has an event of one of IdentifiedBy;
// it is in the furthest step (in list order) any of its events entered, or,
// once it reached a terminal step, in that step.
type WorkflowRule struct {
	Name         string
	IdentifiedBy []string
	// Steps in list order; a step's rank is its position, from 1.
	Steps []StepRule
}

// StepRule is one step of a WorkflowRule.
type StepRule struct {
	// On are the event types that move an order into the step.
	On       []string
	Terminal bool
	SLA      time.Duration
}

// StuckQuery is what the stuck-orders query measures against.
type StuckQuery struct {
	// Now is the stream's clock.
	Now time.Time
	// OlderThan keeps orders at least this long in their step.
	OlderThan time.Duration
	// Limit caps the rows returned; 0 means no cap.
	Limit int
}

// StuckRow is an order stuck past its step's SLA.
type StuckRow struct {
	OrderID, Workflow string
	// Rank is the position of the order's step in the workflow, from 1.
	Rank          uint32
	EnteredAt     time.Time
	LastEventType string
	LastEventTime time.Time
	InStep, SLA   time.Duration
}

// StuckOrders evaluates every order of the order_state view at q.Now and
// returns those stuck past their step's SLA, longest in their step first.
// An order in several workflows waits in the one whose step it entered
// last (on a tie, an unfinished one); it is stuck if that step is not
// terminal and its SLA ran out. Exact, but it reads every order, so it
// takes seconds on millions of orders.
func (s *Store) StuckOrders(ctx context.Context, ws []WorkflowRule, q StuckQuery) ([]StuckRow, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	sql, params := stuckSQL(s.Table("order_state"), ws, q)
	rows, err := s.conn.Query(ctx, sql, params...)
	if err != nil {
		return nil, fmt.Errorf("stuck orders query: %w", err)
	}
	defer rows.Close()
	var out []StuckRow
	for rows.Next() {
		var (
			r                 StuckRow
			enteredMs, lastMs int64
			inStepMs, slaMs   int64
		)
		if err := rows.Scan(&r.OrderID, &r.Workflow, &r.Rank, &enteredMs, &r.LastEventType, &lastMs, &inStepMs, &slaMs); err != nil {
			return nil, fmt.Errorf("scan stuck order: %w", err)
		}
		r.EnteredAt = time.UnixMilli(enteredMs).UTC()
		r.LastEventTime = time.UnixMilli(lastMs).UTC()
		r.InStep = time.Duration(inStepMs) * time.Millisecond
		r.SLA = time.Duration(slaMs) * time.Millisecond
		out = append(out, r)
	}
	return out, rows.Err()
}

// stuckSQL generates the stuck-orders query from the workflows, with the
// workflows' names, event types and SLAs as query parameters (w0_types…).
// Per order it reads the per-type last event times kept by the order_state
// view (merged with FINAL, several times cheaper than a GROUP BY of
// map-valued states), maps event types to step ranks with transform(),
// picks the workflow instance entered last, and keeps it if it is
// unfinished and past its SLA, all in ClickHouse.
func stuckSQL(orderState string, ws []WorkflowRule, q StuckQuery) (string, []any) {
	params := []any{
		clickhouse.Named("now_ms", q.Now.UnixMilli()),
		clickhouse.Named("older_ms", q.OlderThan.Milliseconds()),
	}
	var parts []string
	for i, w := range ws {
		var types, terminal []string
		var ranks, steps []uint32
		var slas []int64
		for j, st := range w.Steps {
			rank := uint32(j + 1)
			steps, slas = append(steps, rank), append(slas, st.SLA.Milliseconds())
			for _, t := range st.On {
				types, ranks = append(types, t), append(ranks, rank)
				if st.Terminal {
					terminal = append(terminal, t)
				}
			}
		}
		ident := slices.Sorted(slices.Values(w.IdentifiedBy))
		p := fmt.Sprintf("w%d_", i)
		params = append(params,
			clickhouse.Named(p+"name", w.Name),
			clickhouse.Named(p+"types", types), clickhouse.Named(p+"ranks", ranks),
			clickhouse.Named(p+"terminal", terminal),
			clickhouse.Named(p+"steps", steps), clickhouse.Named(p+"slas", slas),
			clickhouse.Named(p+"ident", ident))
		parts = append(parts, strings.ReplaceAll(`
    SELECT
        order_id,
        {w_name:String} AS workflow,
        arrayMap(k -> toUInt32(transform(k, {w_types:Array(String)}, {w_ranks:Array(UInt32)}, 0)), mapKeys(tl)) AS idx,
        arrayMax(idx) AS step_idx,
        hasAny(mapKeys(tl), {w_terminal:Array(String)}) AS term,
        if(term,
           arrayMax(arrayMap((k, v) -> if(has({w_terminal:Array(String)}, k), v, 0), mapKeys(tl), mapValues(tl))),
           arrayMax(arrayMap((i, v) -> if(i = step_idx, v, 0), idx, mapValues(tl)))) AS entered_ms,
        transform(step_idx, {w_steps:Array(UInt32)}, {w_slas:Array(Int64)}, 0) AS sla_ms,
        last_type, last_ms
    FROM orders
    WHERE hasAny(mapKeys(tl), {w_ident:Array(String)})`, "{w_", "{"+p))
	}
	limit := ""
	if q.Limit > 0 {
		limit = "LIMIT {limit:UInt64}"
		params = append(params, clickhouse.Named("limit", uint64(q.Limit)))
	}
	return `
WITH orders AS
(
    SELECT
        order_id,
        type_last AS tl,
        mapKeys(tl)[indexOf(mapValues(tl), arrayMax(mapValues(tl)))] AS last_type,
        arrayMax(mapValues(tl)) AS last_ms
    FROM ` + orderState + ` FINAL
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
    {now_ms:Int64} - entered              AS in_step_ms,
    pick.4                                AS sla
FROM
(` + strings.Join(parts, "\n    UNION ALL") + `
)
GROUP BY order_id
HAVING NOT pick.5 AND in_step_ms > sla AND in_step_ms >= {older_ms:Int64}
)
ORDER BY in_step_ms DESC, order_id
` + limit, params
}
