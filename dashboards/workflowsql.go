package dashboards

import (
	"fmt"
	"slices"
	"strings"

	"github.com/weft-sh/weft/consistency"
)

// SQL generated from the workflow definitions, shared by several dashboards.
// Per order, the order_state view keeps the first (tf) and last (tl) event
// time of every event type, in epoch milliseconds; a step is entered when
// the first of its event types arrived.

// ordersSQL merges order_state into one row per order.
func (g *generator) ordersSQL() string {
	return fmt.Sprintf(`SELECT
        order_id,
        min(first_event) AS first_at,
        max(last_event)  AS last_at,
        minMap(type_first) AS tf,
        maxMap(type_last)  AS tl
    FROM %s
    GROUP BY order_id`, g.table("order_state"))
}

// stepTuples renders a workflow's steps as a ClickHouse array of
// (index, step, event types entering it, event types that move it on, SLA seconds).
func stepTuples(w consistency.Workflow, withNext bool) string {
	var parts []string
	for i, s := range w.Steps {
		if withNext && len(s.Expects) == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("(%d, %s, %s, %s, %d)", i+1, sqlString(s.Name),
			sqlList(s.On), sqlList(append([]string{}, s.Expects...)), int64(s.SLA.Seconds())))
	}
	return "[\n        " + strings.Join(parts, ",\n        ") + "]"
}

// workflowTypes lists the event types of every step of w.
func workflowTypes(w consistency.Workflow) []string {
	var out []string
	for _, s := range w.Steps {
		out = append(out, s.On...)
	}
	return out
}

// stepNames lists w's steps, or only those with an SLA (the ones an order waits in).
func stepNames(w consistency.Workflow, waiting bool) []string {
	var out []string
	for _, s := range w.Steps {
		if waiting && len(s.Expects) == 0 {
			continue
		}
		out = append(out, s.Name)
	}
	return out
}

// terminalTypes lists the event types of w's terminal steps; happy is the
// first terminal step's (the outcome the workflow is for), the others are
// the unhappy endings.
func terminalTypes(w consistency.Workflow) (happy, unhappy []string) {
	first := true
	for _, s := range w.Steps {
		if !s.Terminal {
			continue
		}
		if first {
			happy, first = s.On, false
			continue
		}
		unhappy = append(unhappy, s.On...)
	}
	return happy, unhappy
}

// retryTypes lists the event types that keep an order in the same step
// (a step that expects its own event type: a retry loop).
func retryTypes(w consistency.Workflow) []string {
	var out []string
	for _, s := range w.Steps {
		for _, t := range s.On {
			if slices.Contains(s.Expects, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// funnelSQL counts the orders of w that started in the time range and
// reached each step, in step order.
func (g *generator) funnelSQL(w consistency.Workflow) string {
	return fmt.Sprintf(`SELECT
    s.2 AS step,
    countIf(hasAny(mapKeys(o.tl), s.3)) AS orders
FROM
(
    %s
) AS o
ARRAY JOIN %s AS s
WHERE $__timeFilter(o.first_at) AND hasAny(mapKeys(o.tl), %s)
GROUP BY s
ORDER BY s.1`, g.ordersSQL(), stepTuples(w, false), sqlList(w.IdentifiedBy))
}

// stepLatencySQL gives, per workflow and step, how long orders stayed in the
// step before an event moved them on: percentiles and the SLA, in seconds.
func (g *generator) stepLatencySQL() string {
	var tuples []string
	for _, w := range g.opts.Workflows {
		for i, s := range w.Steps {
			if len(s.Expects) == 0 {
				continue
			}
			tuples = append(tuples, fmt.Sprintf("(%s, %d, %s, %s, %s, %d)", sqlString(w.Name), i+1, sqlString(s.Name),
				sqlList(s.On), sqlList(s.Expects), int64(s.SLA.Seconds())))
		}
	}
	return fmt.Sprintf(`SELECT
    s.1 AS workflow,
    s.3 AS step,
    count() AS orders,
    quantile(0.5)(secs)  AS p50,
    quantile(0.9)(secs)  AS p90,
    quantile(0.99)(secs) AS p99,
    any(s.6) AS sla
FROM
(
    SELECT
        s,
        (arrayMin(arrayMap(k -> o.tf[k], arrayFilter(k -> mapContains(o.tf, k), s.5)))
         - arrayMin(arrayMap(k -> o.tf[k], arrayFilter(k -> mapContains(o.tf, k), s.4)))) / 1000 AS secs
    FROM
    (
        %s
    ) AS o
    ARRAY JOIN [
        %s] AS s
    WHERE $__timeFilter(o.first_at) AND hasAny(mapKeys(o.tf), s.4) AND hasAny(mapKeys(o.tf), s.5)
)
WHERE secs >= 0
GROUP BY s
ORDER BY s.1, s.2`, g.ordersSQL(), strings.Join(tuples, ",\n        "))
}

// stepMap renders map('step', [types], …) for the steps of w that wait.
func stepMap(w consistency.Workflow, types func(consistency.Step) []string) string {
	var kv []string
	for _, s := range w.Steps {
		if len(s.Expects) == 0 {
			continue
		}
		kv = append(kv, sqlString(s.Name), sqlList(types(s)))
	}
	return "map(" + strings.Join(kv, ", ") + ")"
}

// timeInStepSQL gives one row per order that left the step named by the
// variable stepVar: when it entered the step and how long it stayed, for a
// heatmap repeated per step.
func (g *generator) timeInStepSQL(w consistency.Workflow, stepVar string) string {
	step := "${" + stepVar + ":sqlstring}"
	return fmt.Sprintf(`SELECT
    fromUnixTimestamp64Milli(entered_ms) AS time,
    (left_ms - entered_ms) / 1000 AS seconds
FROM
(
    SELECT
        %s[%s] AS on_types,
        %s[%s] AS next_types,
        arrayMin(arrayMap(k -> o.tf[k], arrayFilter(k -> mapContains(o.tf, k), on_types)))   AS entered_ms,
        arrayMin(arrayMap(k -> o.tf[k], arrayFilter(k -> mapContains(o.tf, k), next_types))) AS left_ms
    FROM
    (
        %s
    ) AS o
    WHERE hasAny(mapKeys(o.tf), on_types) AND hasAny(mapKeys(o.tf), next_types)
)
WHERE $__timeFilter(time) AND left_ms >= entered_ms
ORDER BY time`,
		stepMap(w, func(s consistency.Step) []string { return s.On }), step,
		stepMap(w, func(s consistency.Step) []string { return s.Expects }), step,
		g.ordersSQL())
}

// stateSQL names each order's state in w: the furthest terminal step it
// reached, else the furthest step, as weft's stuck detection does.
func (g *generator) stateSQL(w consistency.Workflow) string {
	var types, scores, stepScores, names []string
	for i, s := range w.Steps {
		score := i + 1
		if s.Terminal {
			score += 1000
		}
		stepScores = append(stepScores, fmt.Sprint(score))
		names = append(names, sqlString(s.Name))
		for _, t := range s.On {
			types = append(types, sqlString(t))
			scores = append(scores, fmt.Sprint(score))
		}
	}
	return fmt.Sprintf(`SELECT
        o.order_id AS order_id,
        o.first_at AS first_at,
        transform(
            arrayMax(arrayMap(k -> transform(k, [%s], [%s], 0), mapKeys(o.tl))),
            [%s], [%s], 'other') AS state
    FROM
    (
        %s
    ) AS o
    WHERE hasAny(mapKeys(o.tl), %s)`,
		strings.Join(types, ", "), strings.Join(scores, ", "),
		strings.Join(stepScores, ", "), strings.Join(names, ", "),
		g.ordersSQL(), sqlList(w.IdentifiedBy))
}

// slaSummary describes the SLAs of w's steps for panel descriptions.
func slaSummary(w consistency.Workflow) string {
	var parts []string
	for _, s := range w.Steps {
		if s.SLA > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", s.Name, s.SLA))
		}
	}
	return strings.Join(parts, ", ")
}
