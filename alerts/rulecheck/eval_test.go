package rulecheck

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/alerts"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestStuckRulesOnDetectorMetrics evaluates the stuck-order rules with
// Prometheus's own engine and rule evaluator on the metrics a real
// detector pass exports (real ClickHouse): an async payment stuck ten
// minutes in payment_requested (SLA 5m) makes WeftOrdersStuck pending, then
// firing after its `for`, with the workflow, step and reason labels and its
// annotations expanded; WeftStuckOrderPastSLA fires only past its scale.
func TestStuckRulesOnDetectorMetrics(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	ev := func(order string, at time.Time, off int64) event.Event {
		return event.Event{Topic: "payments", Offset: off, EventID: order + "-r", Type: "PaymentRequested", Service: "payments",
			OrderID: order, EventTime: at, RecordTime: at, VersionVector: map[string]uint64{"payments": 1}, PayloadHash: order}
	}
	require.NoError(t, store.InsertEvents(ctx, []event.Event{ev("late", now.Add(-10*time.Minute), 1), ev("fresh", now, 2)}, now, ""))
	reg := prometheus.NewRegistry()
	det := consistency.NewDetector(consistency.NewEngine(store, consistency.Builtin()), time.Minute, consistency.Default().Windows,
		consistency.Settings{Registerer: reg})
	res, err := det.Pass(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Stuck)

	evalStuckRules(t, reg, "async_payment", "payment_requested", "")
}

// TestStuckRulesEvaluate runs the same evaluation on gauges of the
// detector's names and labels set by hand: one bopis order stuck ten
// minutes in payment_authorized, not delivered.
func TestStuckRulesEvaluate(t *testing.T) {
	reg := prometheus.NewRegistry()
	stuck := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_stuck_orders"}, []string{"workflow", "step", "reason"})
	oldest := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_stuck_oldest_seconds"}, []string{"workflow"})
	reg.MustRegister(stuck, oldest)
	for _, r := range consistency.Reasons {
		stuck.WithLabelValues("bopis", "payment_authorized", r)
	}
	stuck.WithLabelValues("bopis", "payment_authorized", consistency.ReasonNotDelivered).Set(1)
	oldest.WithLabelValues("bopis").Set(600)
	oldest.WithLabelValues("async_payment").Set(0)
	evalStuckRules(t, reg, "bopis", "payment_authorized", consistency.ReasonNotDelivered)
}

// evalStuckRules evaluates the order rules on reg's gauges held for 20
// minutes: one order of workflow stuck ten minutes in step (for reason,
// when not ""). WeftOrdersStuck is pending until its `for`, then fires
// with those labels and its annotations expanded; WeftStuckOrderPastSLA
// fires only once ten minutes is past its scale.
func evalStuckRules(t *testing.T, reg *prometheus.Registry, workflow, step, reason string) {
	t.Helper()
	ctx := context.Background()
	// The scraped gauges, held for 20 minutes at one sample a minute.
	load := loadStatement(t, reg, "weft_stuck_orders", "weft_stuck_oldest_seconds", "weft_findings_open")
	st := promqltest.LoadedStorage(t, load)
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	query := rules.EngineQueryFunc(engine, st)

	for _, c := range []struct {
		factor float64
		fires  []string
	}{
		{3, []string{"WeftOrdersStuck"}},                             // 10m < 3 × the longest SLA (15m, 1h)
		{0.01, []string{"WeftOrdersStuck", "WeftStuckOrderPastSLA"}}, // 10m > 0.01 × 1h
	} {
		t.Run(fmt.Sprintf("sla_factor=%g", c.factor), func(t *testing.T) {
			o := alerts.DefaultOptions()
			o.SLAFactor = c.factor
			groups, err := alerts.Rules(o)
			require.NoError(t, err)
			var fired []string
			for _, r := range groups[0].Rules {
				expr, err := promqlParser().ParseExpr(r.Expr)
				require.NoError(t, err)
				hold, _ := time.ParseDuration(r.For)
				rule := rules.NewAlertingRule(r.Alert, expr, hold, 0, labels.FromMap(r.Labels), labels.FromMap(r.Annotations),
					labels.EmptyLabels(), "", false, nil)
				var alertsAt []*rules.Alert
				for m := 0; m <= 15; m++ {
					_, err := rule.Eval(ctx, 0, time.Unix(0, 0).Add(time.Duration(m)*time.Minute), query, nil, 0)
					require.NoError(t, err, r.Expr)
					alertsAt = rule.ActiveAlerts()
					if m < int(hold/time.Minute) {
						for _, a := range alertsAt {
							assert.Equal(t, rules.StatePending, a.State, "%s firing before its for (%s) at %dm", r.Alert, r.For, m)
						}
					}
				}
				for _, a := range alertsAt {
					if a.State != rules.StateFiring {
						continue
					}
					fired = append(fired, r.Alert)
					if r.Alert == "WeftOrdersStuck" {
						assert.Equal(t, workflow, a.Labels.Get("workflow"))
						assert.Equal(t, step, a.Labels.Get("step"))
						assert.Contains(t, consistency.Reasons, a.Labels.Get("reason"))
						if reason != "" {
							assert.Equal(t, reason, a.Labels.Get("reason"))
						}
						assert.Equal(t, 1.0, a.Value, "one order stuck")
						assert.Contains(t, a.Annotations.Get("description"),
							"weft stuck --workflow "+workflow+" --step "+step+" --reason "+a.Labels.Get("reason"))
						assert.NotContains(t, a.Annotations.Get("summary"), "{{", "template not expanded")
					}
				}
			}
			slices.Sort(fired)
			assert.Equal(t, c.fires, slices.Compact(fired))
		})
	}
}

// loadStatement is a promqltest load statement holding every series of
// the named gauges in reg at its current value, once a minute for 20m.
func loadStatement(t *testing.T, reg *prometheus.Registry, names ...string) string {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var b strings.Builder
	b.WriteString("load 1m\n")
	n := 0
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			fmt.Fprintf(&b, "  %s{%s} %g+0x20\n", mf.GetName(), labelString(m.GetLabel()), m.GetGauge().GetValue())
			n++
		}
	}
	require.NotZero(t, n, "no series of %v", names)
	return b.String()
}

func labelString(ls []*dto.LabelPair) string {
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	return strings.Join(parts, ",")
}

// TestAuditRulesEvaluate runs the audit rules with Prometheus's engine on
// series of the names weft exports (collector/auditwatch.go,
// collector/metrics.go), for three weft replicas over 20 minutes:
// "tampered" has a verification with findings, job "stale" last verified
// long ago, "failing" fails every checkpoint; "healthy" does none of it
// and raises nothing, and neither does "follower", a replica of its job
// that does not lead and so never verifies (docs/replicas.md): the newest
// verification of the job counts.
func TestAuditRulesEvaluate(t *testing.T) {
	o := alerts.DefaultOptions()
	groups, err := alerts.Rules(o)
	require.NoError(t, err)
	idx := slices.IndexFunc(groups, func(g alerts.Group) bool { return g.Name == "weft-audit" })
	require.GreaterOrEqual(t, idx, 0)
	stale := -int64(o.AuditUnverifiedFor.Seconds()) // time() is 0 at the load's start
	load := fmt.Sprintf(`load 1m
  weft_audit_verify_findings{job="weft",instance="tampered"} 0 0 0 0 0 2x16
  weft_audit_verify_findings{job="weft",instance="healthy"} 0x20
  weft_audit_verify_last_verified_timestamp_seconds{job="weft",instance="healthy"} 0+60x20
  weft_audit_verify_last_verified_timestamp_seconds{job="weft",instance="follower"} 0x20
  weft_audit_verify_last_verified_timestamp_seconds{job="stale",instance="stale"} %d+0x20
  weft_audit_checkpoints_total{job="weft",instance="failing",result="failed"} 0+1x20
  weft_audit_checkpoints_total{job="weft",instance="failing",result="stored"} 5+0x20
  weft_audit_checkpoints_total{job="weft",instance="healthy",result="failed"} 0+0x10 1+0x10
  weft_audit_checkpoints_total{job="weft",instance="healthy",result="stored"} 0+3x20
`, stale)
	st := promqltest.LoadedStorage(t, load)
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	query := rules.EngineQueryFunc(engine, st)
	firing := map[string][]string{} // alert → instances, at the end
	for _, r := range groups[idx].Rules {
		expr, err := promqlParser().ParseExpr(r.Expr)
		require.NoError(t, err, r.Expr)
		hold, _ := time.ParseDuration(r.For)
		rule := rules.NewAlertingRule(r.Alert, expr, hold, 0, labels.FromMap(r.Labels), labels.FromMap(r.Annotations),
			labels.EmptyLabels(), "", false, nil)
		for m := 0; m <= 20; m++ {
			_, err := rule.Eval(context.Background(), 0, time.Unix(0, 0).Add(time.Duration(m)*time.Minute), query, nil, 0)
			require.NoError(t, err, r.Expr)
			if r.Alert == "WeftAuditTampering" && m < 5 {
				assert.Empty(t, rule.ActiveAlerts(), "no findings before minute 5")
			}
		}
		for _, a := range rule.ActiveAlerts() {
			if a.State == rules.StateFiring {
				who := a.Labels.Get("instance")
				if who == "" {
					who = "job " + a.Labels.Get("job")
				}
				firing[r.Alert] = append(firing[r.Alert], who)
				assert.NotContains(t, a.Annotations.Get("summary"), "{{", "template not expanded")
			}
		}
	}
	assert.Equal(t, map[string][]string{
		"WeftAuditTampering":          {"tampered"},
		"WeftAuditUnverified":         {"job stale"},
		"WeftAuditCheckpointsFailing": {"failing"},
	}, firing)
}

// TestReplayRulesEvaluate evaluates the weft-replay group with
// Prometheus's engine: two weft runs report the same count of failed jobs
// (the table is shared) from minute 2 to 11; WeftReplayJobFailed fires once
// for their job, not once per instance, with its annotations expanded, and
// resolves when the jobs are resumed. Running and finished jobs, and a
// deployment with none failed, raise nothing.
func TestReplayRulesEvaluate(t *testing.T) {
	groups, err := alerts.Rules(alerts.DefaultOptions())
	require.NoError(t, err)
	idx := slices.IndexFunc(groups, func(g alerts.Group) bool { return g.Name == "weft-replay" })
	require.GreaterOrEqual(t, idx, 0)
	st := promqltest.LoadedStorage(t, `load 1m
  weft_replay_jobs{job="weft",instance="a",state="failed"} 0 0 2x9 0x9
  weft_replay_jobs{job="weft",instance="b",state="failed"} 0 0 2x9 0x9
  weft_replay_jobs{job="weft",instance="a",state="running"} 3x20
  weft_replay_jobs{job="weft",instance="a",state="finished"} 0+1x20
  weft_replay_jobs{job="other",instance="c",state="failed"} 0x20
  weft_replay_jobs{job="other",instance="c",state="running"} 1x20
`)
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	query := rules.EngineQueryFunc(engine, st)
	require.Len(t, groups[idx].Rules, 1)
	r := groups[idx].Rules[0]
	require.Equal(t, "WeftReplayJobFailed", r.Alert)
	expr, err := promqlParser().ParseExpr(r.Expr)
	require.NoError(t, err, r.Expr)
	hold, _ := time.ParseDuration(r.For)
	rule := rules.NewAlertingRule(r.Alert, expr, hold, 0, labels.FromMap(r.Labels), labels.FromMap(r.Annotations),
		labels.EmptyLabels(), "", false, nil)
	firingAt := map[int][]string{} // minute → the job label of each firing alert
	for m := 0; m <= 20; m++ {
		_, err := rule.Eval(context.Background(), 0, time.Unix(0, 0).Add(time.Duration(m)*time.Minute), query, nil, 0)
		require.NoError(t, err)
		for _, a := range rule.ActiveAlerts() {
			if a.State == rules.StateFiring {
				firingAt[m] = append(firingAt[m], a.Labels.Get("job"))
				assert.Empty(t, a.Labels.Get("instance"), "one alert for the shared table, not one per weft run")
				assert.Equal(t, "2 replay jobs failed and are neither resumed nor cancelled", a.Annotations.Get("summary"))
				assert.NotContains(t, a.Annotations.Get("description"), "{{", "template not expanded")
			}
		}
	}
	for m := 0; m <= 20; m++ {
		if m >= 2 && m <= 11 { // 2x9: ten samples, minutes 2 to 11
			assert.Equal(t, []string{"weft"}, firingAt[m], "minute %d", m)
		} else {
			assert.Empty(t, firingAt[m], "minute %d", m)
		}
	}
}

// TestNoLeaderRuleEvaluates evaluates WeftNoLeader with Prometheus's
// engine (docs/replicas.md): job "weft" has three replicas, one leading,
// with a fail-over of a minute at minute 4 (shorter than the rule's 5
// minutes); job "stuck" has two replicas, neither leading from minute 2.
// Only "stuck" fires, once for the job, from minute 7 (2 + 5).
func TestNoLeaderRuleEvaluates(t *testing.T) {
	groups, err := alerts.Rules(alerts.DefaultOptions())
	require.NoError(t, err)
	var r alerts.Rule
	for _, g := range groups {
		if i := slices.IndexFunc(g.Rules, func(r alerts.Rule) bool { return r.Alert == "WeftNoLeader" }); i >= 0 {
			r = g.Rules[i]
		}
	}
	require.Equal(t, "WeftNoLeader", r.Alert)
	st := promqltest.LoadedStorage(t, `load 1m
  weft_leader_is_leader{job="weft",instance="a"} 1 1 1 1 0x16
  weft_leader_is_leader{job="weft",instance="b"} 0 0 0 0 0 1x15
  weft_leader_is_leader{job="weft",instance="c"} 0x20
  weft_leader_is_leader{job="stuck",instance="d"} 1 1 0x18
  weft_leader_is_leader{job="stuck",instance="e"} 0x20
`)
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	query := rules.EngineQueryFunc(engine, st)
	expr, err := promqlParser().ParseExpr(r.Expr)
	require.NoError(t, err, r.Expr)
	hold, _ := time.ParseDuration(r.For)
	rule := rules.NewAlertingRule(r.Alert, expr, hold, 0, labels.FromMap(r.Labels), labels.FromMap(r.Annotations),
		labels.EmptyLabels(), "", false, nil)
	for m := 0; m <= 20; m++ {
		_, err := rule.Eval(context.Background(), 0, time.Unix(0, 0).Add(time.Duration(m)*time.Minute), query, nil, 0)
		require.NoError(t, err)
		var firing []string
		for _, a := range rule.ActiveAlerts() {
			if a.State == rules.StateFiring {
				firing = append(firing, a.Labels.Get("job"))
				assert.Empty(t, a.Labels.Get("instance"), "one alert for the job")
				assert.Equal(t, "no weft replica of stuck leads", a.Annotations.Get("summary"))
			}
		}
		if m >= 7 {
			assert.Equal(t, []string{"stuck"}, firing, "minute %d", m)
		} else {
			assert.Empty(t, firing, "minute %d", m)
		}
	}
}
