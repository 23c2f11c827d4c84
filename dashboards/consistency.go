package dashboards

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/weft-sh/weft/consistency"
)

// Variables of the consistency dashboard.
const (
	varKind     = "kind"
	varWorkflow = "workflow"
)

// consistency shows the findings of the consistency engine, and computes
// from the stored events the conflicts and gaps it is built to find.
func (g *generator) consistencyDashboard() *dashboard.DashboardBuilder {
	findings := g.table("findings")
	events := g.table("events")
	var workflows []string
	for _, w := range g.opts.Workflows {
		workflows = append(workflows, w.Name)
	}
	filter := fmt.Sprintf("$__conditionalAll(kind IN (${%s:sqlstring}), $%s) AND $__conditionalAll(workflow IN (${%s:sqlstring}), $%s)",
		varKind, varKind, varWorkflow, varWorkflow)

	return g.newDashboard(UIDConsistency, "weft / Consistency",
		"What the consistency engine found — stuck orders, gaps, conflicts, missing compensations — and the same questions asked directly of the stored events.", false).
		WithVariable(customVariable(varKind, "Kind", "Kinds of findings.", consistency.Kinds)).
		WithVariable(customVariable(varWorkflow, "Workflow", "Workflows the findings are about.", workflows)).
		WithRow(dashboard.NewRowBuilder("Findings")).
		WithPanel(timeseriesPanel("Findings raised by kind",
			"New findings per interval by kind (by when weft first saw the problem).",
			"short",
			fmt.Sprintf(`SELECT $__timeInterval(first_seen) AS time, kind, count() AS findings
FROM %s FINAL
WHERE $__timeFilter(first_seen) AND %s
GROUP BY time, kind
ORDER BY time, kind`, findings, filter))).
		WithPanel(rowsBarGauge("Open findings by kind",
			"Findings open or acknowledged now, by kind; every kind is listed, so zero means none.",
			"short", "open",
			fmt.Sprintf(`SELECT k AS kind, countIf(f.finding_id != '') AS open
FROM (SELECT arrayJoin(%s) AS k) AS kinds
GLOBAL LEFT JOIN
(
    SELECT finding_id, kind FROM %s FINAL
    WHERE status != 'resolved' AND $__conditionalAll(workflow IN (${%s:sqlstring}), $%s)
) AS f ON f.kind = kinds.k
WHERE $__conditionalAll(k IN (${%s:sqlstring}), $%s)
GROUP BY k
ORDER BY open DESC, k`, sqlList(consistency.Kinds), findings, varWorkflow, varWorkflow, varKind, varKind))).
		WithPanel(tablePanel("Open findings",
			"Every open or acknowledged finding with its summary, newest first. Findings resolve themselves when later events fix the order.",
			fmt.Sprintf(`SELECT order_id, kind, workflow, step, subject, status, summary, first_seen, last_seen
FROM %s FINAL
WHERE status != 'resolved' AND %s
ORDER BY first_seen DESC
LIMIT 1000`, findings, filter))).
		WithRow(dashboard.NewRowBuilder("From the events")).
		WithPanel(tablePanel("Concurrent events (conflicts)",
			"Orders with two events whose version vectors are incomparable — neither happened before the other — such as a pickup racing the pickup expiry. Each pair is a potential conflicting transition.",
			fmt.Sprintf(`SELECT a.order_id AS order_id, count() AS concurrent_pairs,
       any(concat(a.event_type, ' ∥ ', b.event_type)) AS example, min(least(a.event_time, b.event_time)) AS first_at
FROM
(
    SELECT order_id, event_id, event_type, event_time, version_vector FROM %[1]s
    WHERE $__timeFilter(event_time) AND length(mapKeys(version_vector)) > 0
    LIMIT 1 BY order_id, event_id
) AS a
GLOBAL INNER JOIN
(
    SELECT order_id, event_id, event_type, event_time, version_vector FROM %[1]s
    WHERE $__timeFilter(event_time) AND length(mapKeys(version_vector)) > 0
    LIMIT 1 BY order_id, event_id
) AS b ON a.order_id = b.order_id
WHERE a.event_id < b.event_id
  AND NOT arrayAll(k -> a.version_vector[k] <= b.version_vector[k], mapKeys(a.version_vector))
  AND NOT arrayAll(k -> b.version_vector[k] <= a.version_vector[k], mapKeys(b.version_vector))
GROUP BY order_id
ORDER BY first_at DESC
LIMIT 1000`, events)).Span(12)).
		WithPanel(tablePanel("Missing causes (gaps)",
			"Events that name a cause (causation id) weft never stored: the cause was lost, is late, or went to another topic. Orphans turn into gap or orphan findings once their grace window passes.",
			fmt.Sprintf(`SELECT order_id, event_type, causation_id AS missing_cause, event_time, topic, offset
FROM %[1]s
WHERE $__timeFilter(event_time) AND causation_id != ''
  AND (order_id, causation_id) GLOBAL NOT IN (SELECT order_id, event_id FROM %[1]s)
ORDER BY event_time DESC
LIMIT 1000`, events)).Span(12)).
		WithPanel(tablePanel("Version-vector gaps",
			"Per order and service, counters that skip (…2, 4…) in the service's own version-vector entry: an event of that service is missing.",
			fmt.Sprintf(`SELECT order_id, service, arrayStringConcat(arrayMap(x -> toString(x), counters), ', ') AS counter_values
FROM
(
    SELECT order_id, service, arraySort(groupUniqArray(version_vector[service])) AS counters
    FROM %s
    WHERE $__timeFilter(event_time) AND mapContains(version_vector, service)
    GROUP BY order_id, service
)
WHERE arrayExists(d -> d > 1, arrayDifference(counters)) OR counters[1] > 1
ORDER BY order_id, service
LIMIT 1000`, events)).Span(12)).
		WithPanel(tablePanel("Pending compensations",
			fmt.Sprintf("Orders that owe a compensation (%s) — a pickup expired, a release started — and have not reached a terminal step: inventory still held or money not yet returned.", strings.Join(g.opts.CompensationTypes, ", ")),
			g.pendingCompensationsSQL()).Span(12)).
		WithPanel(tablePanel("Convergence time",
			"Time from an order's first event to its terminal event, per workflow and outcome: how long until every service agrees on how the order ended.",
			g.convergenceSQL(),
			columnUnit("p50", "s"), columnUnit("p90", "s"), columnUnit("p99", "s")))
}

// pendingCompensationsSQL lists orders that owe a compensation: they
// entered a step that expects one (an expired pickup owes the inventory
// release, a release owes the payment void or refund) or started
// compensating, and have not reached a terminal step.
func (g *generator) pendingCompensationsSQL() string {
	var triggers, terminal []string
	for _, w := range g.opts.Workflows {
		if !containsAny(workflowTypes(w), g.opts.CompensationTypes) {
			continue
		}
		for _, s := range w.Steps {
			if containsAny(s.Expects, g.opts.CompensationTypes) {
				triggers = append(triggers, s.On...)
			}
		}
		happy, unhappy := terminalTypes(w)
		terminal = append(append(terminal, happy...), unhappy...)
	}
	started := append(append([]string{}, triggers...), g.opts.CompensationTypes...)
	return fmt.Sprintf(`SELECT
    order_id,
    arrayFilter(k -> has(mapKeys(tl), k), %[1]s) AS compensations_done,
    mapKeys(tl)[indexOf(mapValues(tl), arrayMax(mapValues(tl)))] AS last_event,
    fromUnixTimestamp64Milli(arrayMax(mapValues(tl))) AS last_event_at
FROM
(
    %[2]s
)
WHERE hasAny(mapKeys(tl), %[3]s) AND NOT hasAny(mapKeys(tl), %[4]s) AND $__timeFilter(first_at)
ORDER BY last_event_at
LIMIT 1000`, sqlList(g.opts.CompensationTypes), g.ordersSQL(), sqlList(started), sqlList(terminal))
}

// convergenceSQL measures first event → terminal event per workflow outcome.
func (g *generator) convergenceSQL() string {
	var tuples []string
	for _, w := range g.opts.Workflows {
		for _, s := range w.Steps {
			if s.Terminal {
				tuples = append(tuples, fmt.Sprintf("(%s, %s, %s, %s)", sqlString(w.Name), sqlString(s.Name), sqlList(w.IdentifiedBy), sqlList(s.On)))
			}
		}
	}
	return fmt.Sprintf(`SELECT
    t.1 AS workflow,
    t.2 AS outcome,
    count() AS orders,
    quantile(0.5)(secs)  AS p50,
    quantile(0.9)(secs)  AS p90,
    quantile(0.99)(secs) AS p99
FROM
(
    SELECT
        t,
        (arrayMin(arrayMap(k -> o.tf[k], arrayFilter(k -> mapContains(o.tf, k), t.4)))
         - arrayMin(arrayMap(k -> o.tf[k], arrayFilter(k -> mapContains(o.tf, k), t.3)))) / 1000 AS secs
    FROM
    (
        %s
    ) AS o
    ARRAY JOIN [
        %s] AS t
    WHERE $__timeFilter(o.first_at) AND hasAny(mapKeys(o.tf), t.3) AND hasAny(mapKeys(o.tf), t.4)
)
GROUP BY t
ORDER BY t.1, t.2`, g.ordersSQL(), strings.Join(tuples, ",\n        "))
}

func containsAny(have, want []string) bool {
	for _, w := range want {
		for _, h := range have {
			if h == w {
				return true
			}
		}
	}
	return false
}
