package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	sdkprom "github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/dashboards/internal/grafanasql"
	"github.com/weft-sh/weft/internal/demo"
)

// result is a query's columns and rows.
type result struct {
	cols  []string
	types []string
	rows  [][]any
}

func (r result) col(name string) int { return slices.Index(r.cols, name) }

func (r result) values(name string) []string {
	i := r.col(name)
	var out []string
	for _, row := range r.rows {
		if i >= 0 {
			out = append(out, fmt.Sprint(row[i]))
		}
	}
	return out
}

var numericType = regexp.MustCompile(`^(Nullable\()?(U?Int\d+|Float\d+|Decimal.*)\)?$`)
var timeType = regexp.MustCompile(`^(Nullable\()?DateTime`)

func (l *loaded) query(t *testing.T, sqlText string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := l.db.QueryContext(ctx, sqlText)
	require.NoError(t, err, "expanded SQL:\n%s", sqlText)
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	require.NoError(t, err)
	var r result
	for _, ct := range cts {
		r.cols = append(r.cols, ct.Name())
		r.types = append(r.types, ct.DatabaseTypeName())
	}
	for rows.Next() {
		dest := make([]any, len(cts))
		for i, ct := range cts {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		require.NoError(t, rows.Scan(dest...))
		row := make([]any, len(dest))
		for i, d := range dest {
			v := reflect.ValueOf(d).Elem()
			if v.Kind() == reflect.Pointer { // a Nullable column: its value, or nil
				if v.IsNil() {
					row[i] = nil
					continue
				}
				v = v.Elem()
			}
			row[i] = v.Interface()
		}
		r.rows = append(r.rows, row)
	}
	require.NoError(t, rows.Err())
	return r
}

// expand runs a panel's SQL through grafanasql in two macro orders (Grafana
// iterates a Go map) and requires the same SQL, with nothing left unexpanded.
func (l *loaded) expand(t *testing.T, raw string, vars grafanasql.Variables) string {
	t.Helper()
	q := grafanasql.Query{From: l.from, To: l.to, Interval: time.Minute}
	fe, err := grafanasql.ReplaceVariables(grafanasql.ApplyConditionalAll(raw, vars), vars)
	require.NoError(t, err)
	q.RawSQL = fe
	names := grafanasql.MacroNames()
	a, err := grafanasql.Interpolate(q, names)
	require.NoError(t, err)
	slices.Reverse(names)
	b, err := grafanasql.Interpolate(q, names)
	require.NoError(t, err)
	require.Equal(t, a, b, "macro expansion depends on the order: an argument-less macro is followed by a call")
	require.NotContains(t, a, "$", "unexpanded variable or macro in:\n%s", a)
	return a
}

// variables gives every variable of d its default state ("All", the text
// box's value); query variables get their options by running their SQL.
func (l *loaded) variables(t *testing.T, d dashboard.Dashboard, orderID string) grafanasql.Variables {
	vars := grafanasql.Variables{}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "custom":
			vars[v.Name] = grafanasql.Variable{Current: []string{grafanasql.AllValue}, Multi: true,
				Options: strings.Split(*v.Query.String, ",")}
		case "query":
			sqlText := l.expand(t, *v.Query.String, vars)
			opts := l.query(t, sqlText).values(l.query(t, sqlText).cols[0])
			vars[v.Name] = grafanasql.Variable{Current: []string{grafanasql.AllValue}, Multi: true, Options: opts}
		case "textbox":
			vars[v.Name] = grafanasql.Variable{Current: []string{orderID}}
		}
	}
	return vars
}

// panelRun is what one panel returned, by target refId.
type panelRun map[string]result

// runDashboard runs every ClickHouse target of every panel of d; repeated
// panels run once per value of their variable.
func (l *loaded) runDashboard(t *testing.T, d dashboard.Dashboard, orderID string) map[string]panelRun {
	vars := l.variables(t, d, orderID)
	out := map[string]panelRun{}
	for _, p := range panels(d) {
		if p.Type == "row" {
			continue
		}
		scopes := []grafanasql.Variables{vars}
		if p.Repeat != nil {
			scopes = nil
			for _, v := range vars[*p.Repeat].Options {
				s := grafanasql.Variables{}
				for k, vv := range vars {
					s[k] = vv
				}
				s[*p.Repeat] = grafanasql.Variable{Current: []string{v}}
				scopes = append(scopes, s)
			}
		}
		for _, scope := range scopes {
			key := title(p)
			if p.Repeat != nil {
				key = strings.ReplaceAll(key, "${"+*p.Repeat+"}", scope[*p.Repeat].Current[0])
			}
			run := panelRun{}
			for _, tgt := range p.Targets {
				q, ok := tgt.(ClickHouseQuery)
				if !ok {
					continue
				}
				run[q.RefId] = l.query(t, l.expand(t, q.RawSql, scope))
				checkShape(t, p, key, q, run[q.RefId])
			}
			out[key] = run
		}
	}
	return out
}

// checkShape requires the columns Grafana needs to draw the panel.
func checkShape(t *testing.T, p dashboard.Panel, key string, q ClickHouseQuery, r result) {
	t.Helper()
	numeric := func(names ...string) bool {
		for i, ty := range r.types {
			if numericType.MatchString(ty) && (len(names) == 0 || slices.Contains(names, r.cols[i])) {
				return true
			}
		}
		return false
	}
	switch p.Type {
	case "timeseries", "heatmap":
		require.NotEmpty(t, r.cols, key)
		assert.Equal(t, "time", r.cols[0], "%s: the first column is the time", key)
		assert.Regexp(t, timeType, r.types[0], "%s: time column type", key)
		assert.True(t, numeric(), "%s: a numeric column", key)
		for i := 1; i < len(r.rows); i++ {
			a, b := r.rows[i-1][0].(time.Time), r.rows[i][0].(time.Time)
			require.False(t, b.Before(a), "%s: rows sorted by time (the backend's long-to-wide needs it)", key)
		}
		if q.Format == FormatTimeSeries {
			assert.Equal(t, QueryTypeTimeSeries, q.QueryType, key)
		}
	case "stat":
		assert.True(t, numeric(), "%s: a numeric column", key)
		assert.LessOrEqual(t, len(r.rows), 1, "%s: one value", key)
	case "bargauge":
		raw, _ := json.Marshal(p.Options)
		field := regexp.MustCompile(`"fields":"/\^(\w+)\$/"`).FindStringSubmatch(string(raw))
		require.NotNil(t, field, "%s: the value field is named", key)
		assert.True(t, numeric(field[1]), "%s: numeric column %s", key, field[1])
		assert.GreaterOrEqual(t, len(r.cols), 2, "%s: a label and a value", key)
	case "nodeGraph":
		need := map[string][]string{"nodes": {"id", "title", "subtitle", "mainstat"}, "edges": {"id", "source", "target"}}[q.RefId]
		require.NotNil(t, need, "%s: node graph targets are named nodes and edges", key)
		for _, c := range need {
			assert.Contains(t, r.cols, c, "%s/%s", key, q.RefId)
		}
	case "table":
		assert.NotEmpty(t, r.cols, key)
	case "traces":
		// The columns Grafana's trace view reads (the data source's trace
		// query on the OpenTelemetry schema), and one trace.
		assert.Equal(t, FormatTraces, q.Format, key)
		for _, c := range []string{"traceID", "spanID", "parentSpanID", "serviceName", "operationName", "startTime", "duration", "tags", "serviceTags"} {
			assert.Contains(t, r.cols, c, key)
		}
		assert.LessOrEqual(t, len(slices.Compact(slices.Sorted(slices.Values(r.values("traceID"))))), 1, "%s: one trace", key)
	default:
		t.Errorf("%s: no shape check for panel type %s", key, p.Type)
	}
}

// nonEmpty lists, per dashboard, the panels about the injected faults (or
// the demo's traffic) that must return rows.
var nonEmpty = map[string][]string{
	UIDOverview: {"Orders started", "Stuck now", "Abandonment", "Availability", "Orders by state",
		"Throughput by event type", "Latency between steps"},
	UIDBOPIS:    {"Funnel", "Stuck orders by step", "Stuck orders by reason", "Stuck orders", "Time in placed", "Time in customer_notified"},
	UIDPayments: {"Payment status pipeline", "Payment outcomes", "Orders by number of retries", "Payment paths", "Dead-letter records", "Oldest dead-letter record", "Dead-letter depth", "Dead-lettered payments"},
	UIDQueues:   {"Lag (messages)", "Queue depth", "Dead-letter depth", "Current lag by group and topic"},
	UIDConsistency: {"Findings raised by kind", "Open findings by kind", "Open findings", "Concurrent events (conflicts)",
		"Missing causes (gaps)", "Version-vector gaps", "Pending compensations", "Convergence time"},
	UIDAudit: {"Logs in the trail", "Logs", "Leaves not checkpointed", "Longest wait for a checkpoint", "Logs with unsigned checkpoints",
		"Records stored and logged", "Leaves appended by topic", "Last verify", "Since last verify", "Failed verify runs",
		"Verify runs in the time range", "Verify runs", "Operator actions by verb", "Operator actions"},
	// Before a redrive (checkReplays runs one): the dead letters wait.
	UIDReplays: {"Dead letters waiting", "Oldest dead letter waiting", "Dead-letter topics", "Dead-letter depth (Kafka)", "Dead letters and redrives"},
	UIDOrder:   {"Distinct events", "Records", "Duration", "Causal chain", "Trace", "Events", "Version vectors"},
}

func numberAt(r result) float64 {
	if len(r.rows) == 0 {
		return 0
	}
	var f float64
	_, _ = fmt.Sscan(fmt.Sprint(r.rows[0][0]), &f)
	return f
}

// TestPanelsAgainstClickHouse is the proof of the dashboards: one demo
// history with injected faults goes through the real broker, the real tap,
// a detector pass and the lag monitor into a fresh database; then every
// panel's SQL, expanded as Grafana and the plugin expand it, must run,
// return the columns its panel type needs, and show the injected faults.
func TestPanelsAgainstClickHouse(t *testing.T) {
	started := time.Now()
	l := loadDemo(t)
	t.Logf("demo load (%d orders, %d records): %s", len(l.manifest.Orders), l.manifest.Records(), time.Since(started).Round(time.Millisecond))
	queried := time.Now()
	ds, err := All(l.opts)
	require.NoError(t, err)
	runs := map[string]map[string]panelRun{}
	for _, d := range ds {
		if d.UID == UIDOrder {
			continue
		}
		t.Run(d.UID, func(t *testing.T) {
			runs[d.UID] = l.runDashboard(t, d.Model, "")
			for _, name := range nonEmpty[d.UID] {
				run, ok := runs[d.UID][name]
				require.True(t, ok, "panel %q exists", name)
				for ref, r := range run {
					assert.NotEmpty(t, r.rows, "panel %q (%s) shows the demo's data", name, ref)
				}
			}
		})
	}
	t.Run("faults", func(t *testing.T) { l.checkFaults(t, runs) })
	t.Run(UIDOrder, func(t *testing.T) { l.checkDrillDown(t, ds[len(ds)-1]) })
	t.Run("metrics", func(t *testing.T) { l.checkMetrics(t, ds) })
	t.Run("replays", func(t *testing.T) {
		l.checkReplays(t, ds[slices.IndexFunc(ds, func(d Dashboard) bool { return d.UID == UIDReplays })], runs[UIDReplays])
	})
	t.Run("audit", func(t *testing.T) {
		l.checkAudit(t, ds[slices.IndexFunc(ds, func(d Dashboard) bool { return d.UID == UIDAudit })], runs[UIDAudit])
	})
	t.Logf("queries: %s", time.Since(queried).Round(time.Millisecond))
}

// checkFaults compares panels with the manifest of injected faults.
func (l *loaded) checkFaults(t *testing.T, runs map[string]map[string]panelRun) {
	ids := func(fs []demo.Fault, field func(demo.Fault) string) []string {
		var out []string
		for _, f := range fs {
			out = append(out, field(f))
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	sorted := func(v []string) []string { slices.Sort(v); return slices.Compact(v) }
	order := func(f demo.Fault) string { return f.OrderID }

	assert.Greater(t, numberAt(runs[UIDOverview]["Stuck now"]["A"]), 0.0)
	assert.Greater(t, numberAt(runs[UIDOverview]["Abandonment"]["A"]), 0.0)

	// Every stuck order the BOPIS table lists was injected as stuck.
	stuck := ids(l.manifest.FaultsOf(demo.KindStuck), order)
	table := runs[UIDBOPIS]["Stuck orders"]["A"]
	for _, id := range table.values("order_id") {
		assert.Contains(t, stuck, id)
	}
	// Why: no service of the demo consumes here (only weft's tap, nobody's
	// service), so every stuck order waits on a service that reads nothing,
	// unless the service emitted the trigger itself and owes the answer.
	// Every reason is listed, and they add up to the stuck orders.
	byReason := map[string]float64{}
	r := runs[UIDBOPIS]["Stuck orders by reason"]["A"]
	for _, row := range r.rows {
		var n float64
		_, _ = fmt.Sscan(fmt.Sprint(row[r.col("orders")]), &n)
		byReason[fmt.Sprint(row[r.col("reason")])] = n
	}
	assert.Len(t, byReason, len(consistency.Reasons))
	assert.Positive(t, byReason[consistency.ReasonNoConsumer])
	assert.Equal(t, float64(len(table.rows)), byReason[consistency.ReasonNoConsumer]+byReason[consistency.ReasonNoAnswer], "%v", byReason)
	for i, why := range table.values("why") {
		assert.NotEmpty(t, why, "row %d", i)
		assert.Contains(t, consistency.Reasons, table.values("reason")[i])
	}
	// The dead-lettered payments are exactly the failed payments.
	assert.Equal(t, ids(l.manifest.FaultsOf(demo.KindPaymentFailed), order),
		sorted(runs[UIDPayments]["Dead-lettered payments"]["A"].values("order_id")))
	// The missing causes are exactly the lost events and the orphans' causes.
	missing := append(ids(l.manifest.FaultsOf(demo.KindLost), func(f demo.Fault) string { return f.EventID }),
		ids(l.manifest.FaultsOf(demo.KindOrphan), func(f demo.Fault) string { return f.CausationID })...)
	assert.Equal(t, sorted(missing), sorted(runs[UIDConsistency]["Missing causes (gaps)"]["A"].values("missing_cause")))
	// Every racing order has concurrent events.
	conflicts := runs[UIDConsistency]["Concurrent events (conflicts)"]["A"].values("order_id")
	for _, id := range ids(l.manifest.FaultsOf(demo.KindRace), order) {
		assert.Contains(t, conflicts, id, "race order has incomparable version vectors")
	}
}

// checkDrillDown runs the order drill-down for an order of every fault kind.
func (l *loaded) checkDrillDown(t *testing.T, d Dashboard) {
	for _, kind := range demo.Kinds() {
		faults := l.manifest.FaultsOf(kind)
		if len(faults) == 0 {
			continue
		}
		f := faults[0]
		t.Run(string(kind), func(t *testing.T) {
			run := l.runDashboard(t, d.Model, f.OrderID)
			for _, name := range nonEmpty[UIDOrder] {
				for ref, r := range run[name] {
					assert.NotEmpty(t, r.rows, "panel %q (%s) for order %s", name, ref, f.OrderID)
				}
			}
			nodes, edges := run["Causal chain"]["nodes"], run["Causal chain"]["edges"]
			ids := nodes.values("id")
			assert.Len(t, slices.Compact(slices.Sorted(slices.Values(ids))), len(ids), "node ids are unique")
			for _, e := range [][]string{edges.values("source"), edges.values("target")} {
				for _, id := range e {
					assert.Contains(t, ids, id, "every edge ends at a node (Grafana's node graph requires it)")
				}
			}
			// The trace: one span per distinct event, the trace id weft
			// order, weft trace and the API give the order, every parent
			// one of its spans (a root has none).
			spans := run["Trace"]["A"]
			assert.Len(t, spans.rows, int(numberAt(run["Distinct events"]["A"])), "a span per event")
			spanIDs := spans.values("spanID")
			for i, tid := range spans.values("traceID") {
				assert.Equal(t, l.traceIDs.TraceID(f.OrderID).String(), tid)
				// A lost or orphaned event's cause was never stored: its
				// parent is the span that cause would have.
				if p := spans.values("parentSpanID")[i]; p != "" && kind != demo.KindLost && kind != demo.KindOrphan {
					assert.Contains(t, spanIDs, p, "a parent in the trace")
				}
			}
			titles := nodes.values("title")
			switch kind {
			case demo.KindLost:
				assert.Contains(t, titles, "missing event", "the lost cause is drawn")
				assert.Contains(t, ids, f.EventID)
			case demo.KindOrphan:
				assert.Contains(t, ids, f.CausationID, "the cause that never arrived is drawn")
			case demo.KindStuck:
				assert.NotEmpty(t, run["Findings"]["A"].rows, "the stuck finding is listed")
				assert.Greater(t, numberAt(run["Open findings"]["A"]), 0.0)
			case demo.KindDuplicate:
				assert.Greater(t, numberAt(run["Records"]["A"]), numberAt(run["Distinct events"]["A"]), "the redelivery is a record, not an event")
			case demo.KindRace, demo.KindPaymentFailed, demo.KindOutOfOrder:
				assert.NotContains(t, titles, "missing event")
			}
		})
	}
}

var metricName = regexp.MustCompile(`\bweft_[a-z_]+`)

// checkMetrics requires every metric a Prometheus panel queries to be one
// weft exports (histograms through their _bucket series).
func (l *loaded) checkMetrics(t *testing.T, ds []Dashboard) {
	exported := map[string]bool{}
	for _, name := range l.reg.names() {
		exported[name] = true
		exported[name+"_bucket"] = true
	}
	n := 0
	for _, d := range ds {
		for _, p := range panels(d.Model) {
			for _, tgt := range p.Targets {
				q, ok := tgt.(sdkprom.Dataquery)
				if !ok {
					continue
				}
				for _, m := range metricName.FindAllString(q.Expr, -1) {
					n++
					assert.True(t, exported[m], "%s / %s: %s is exported by weft", d.UID, title(p), m)
				}
			}
		}
	}
	assert.NotZero(t, n)
}
