package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"

	"github.com/weft-sh/weft/consistency"
)

// varStep selects workflow steps on the flow dashboards.
const varStep = "step"

// bopis follows the order workflow (BOPIS): how far orders get, how long
// each step takes, and which orders are stuck where. Every panel is
// generated from the workflow definition.
func (g *generator) bopis() *dashboard.DashboardBuilder {
	w, _ := g.opts.workflow(g.opts.OrderWorkflow)
	return g.newDashboard(UIDBOPIS, "weft / BOPIS flow",
		"Buy online, pick up in store: the funnel through the "+w.Name+" workflow's steps, the time orders spend in each step, and the orders stuck past a step's SLA.", false).
		WithVariable(customVariable(varStep, "Step",
			"Steps of the "+w.Name+" workflow an order can wait in (terminal steps excluded).", stepNames(w, true))).
		WithRow(dashboard.NewRowBuilder("Funnel")).
		WithPanel(rowsBarGauge("Funnel",
			"Orders started in the time range that reached each step of the "+w.Name+" workflow, in step order. A big drop between two steps is where orders are lost or still waiting.",
			"short", "orders", g.funnelSQL(w))).
		WithPanel(rowsBarGauge("Stuck orders by step",
			"Open stuck findings of the "+w.Name+" workflow by the step the order waits in. SLAs: "+slaSummary(w)+".",
			"short", "orders",
			fmt.Sprintf(`SELECT step, count() AS orders
FROM %s FINAL
WHERE kind = 'stuck' AND status != 'resolved' AND workflow = %s AND $__conditionalAll(step IN (${%s:sqlstring}), $%s)
GROUP BY step
ORDER BY orders DESC`, g.table("findings"), sqlString(w.Name), varStep, varStep))).
		WithPanel(g.stuckByReason(w)).
		WithRow(dashboard.NewRowBuilder("Time in step")).
		WithPanel(g.timeInStepHeatmap(w)).
		WithRow(dashboard.NewRowBuilder("Stuck orders")).
		WithPanel(g.stuckTable(w))
}

// timeInStepHeatmap is repeated for every selected step: when orders
// entered the step (x) and how long they stayed (y).
func (g *generator) timeInStepHeatmap(w consistency.Workflow) *heatmap.PanelBuilder {
	return heatmap.NewPanelBuilder().
		Title("Time in ${" + varStep + "}").
		Description("Each order that left the step: when it entered (x) and how long it stayed before the next event (y, log scale). SLAs: " + slaSummary(w) + ". Cells above the SLA are orders that were late.").
		Datasource(*clickHouseRef()).
		WithTarget(NewClickHouseQuery(g.timeInStepSQL(w, varStep))).
		Unit("s").
		Calculate(true).
		Calculation(common.NewHeatmapCalculationOptionsBuilder().
			YBuckets(common.NewHeatmapCalculationBucketConfigBuilder().
				Scale(common.NewScaleDistributionConfigBuilder().Type(common.ScaleDistributionLog).Log(2)))).
		Color(heatmap.NewHeatmapColorOptionsBuilder().
			Mode(heatmap.HeatmapColorModeScheme).
			Scheme("Oranges").
			Scale(heatmap.HeatmapColorScaleExponential).
			Exponent(0.5).
			Steps(64).
			Fill("dark-orange")).
		YAxis(heatmap.NewYAxisConfigBuilder().Unit("s")).
		CellGap(1).
		ShowValue(common.VisibilityModeNever).
		Repeat(varStep).
		RepeatDirection(dashboard.PanelRepeatDirectionH).
		MaxPerRow(3).
		Span(8).
		Height(7)
}

// stuckByReason counts the open stuck findings of w by why the order is
// stuck; every reason is listed, so zero means none.
func (g *generator) stuckByReason(w consistency.Workflow) cog.Builder[dashboard.Panel] {
	return rowsBarGauge("Stuck orders by reason",
		"Why the stuck orders of the "+w.Name+" workflow are stuck: not-delivered (the owner's consumer group has not read the triggering record: a lagging or stopped consumer), "+
			"no-answer (it read it and nothing followed: look at the service), dead-lettered (a record of the order is in a dead-letter topic), "+
			"no-consumer (no group of the owner reads the topic), unknown (no queue-health sample). The Stuck orders table below says it order by order; `weft stuck --reason` lists them.",
		"short", "orders",
		fmt.Sprintf(`SELECT r AS reason, countIf(f.finding_id != '') AS orders
FROM (SELECT arrayJoin(%s) AS r) AS reasons
GLOBAL LEFT JOIN
(
    SELECT finding_id, if(reason = '', 'unknown', reason) AS reason FROM %s FINAL
    WHERE kind = 'stuck' AND status != 'resolved' AND workflow = %s AND $__conditionalAll(step IN (${%s:sqlstring}), $%s)
) AS f ON f.reason = reasons.r
GROUP BY r
ORDER BY orders DESC, r`, sqlList(consistency.Reasons), g.table("findings"), sqlString(w.Name), varStep, varStep))
}

// stuckTable lists the open stuck findings of w with the evidence the
// detector stored: how long, against which SLA, waiting on whom, and why.
func (g *generator) stuckTable(w consistency.Workflow) cog.Builder[dashboard.Panel] {
	return tablePanel("Stuck orders",
		"Orders of the "+w.Name+" workflow stuck past their step's SLA, longest first. waiting_on is the service that owes the next event; reason and why say why it has not come (from the owner's consumer groups, as queue health last sampled them); click an order id for its events and causal graph.",
		fmt.Sprintf(`SELECT
    order_id,
    step,
    JSONExtractString(evidence, 'owner')           AS waiting_on,
    JSONExtractFloat(evidence, 'in_step_seconds')  AS in_step,
    JSONExtractFloat(evidence, 'sla_seconds')      AS sla,
    JSONExtractString(evidence, 'last_event_type') AS last_event,
    reason,
    JSONExtractString(evidence, 'why', 'text')     AS why,
    status,
    first_seen,
    summary
FROM %s FINAL
WHERE kind = 'stuck' AND status != 'resolved' AND workflow = %s AND $__conditionalAll(step IN (${%s:sqlstring}), $%s)
ORDER BY in_step DESC
LIMIT 1000`, g.table("findings"), sqlString(w.Name), varStep, varStep),
		columnUnit("in_step", "s"), columnUnit("sla", "s")).
		Height(12)
}
