package alerts

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/config"
)

// Severities, as the severity label of each rule.
const (
	SeverityCritical = "critical" // page: orders or evidence are being lost now
	SeverityWarning  = "warning"  // ticket: look within the working day
)

// IntegrityKinds are the finding kinds that mean the events themselves
// contradict each other (not that something is late): any one open pages.
var IntegrityKinds = []string{consistency.KindCausalityViolation, consistency.KindConcurrentConflict,
	consistency.KindDuplicate, consistency.KindInvariantViolation, consistency.KindDivergence}

// Options shape the generated rules.
type Options struct {
	// Workflows whose SLAs scale the oldest-stuck rule (one rule each).
	Workflows []consistency.Workflow
	// Job is the Prometheus job label weft is scraped under, for the
	// weft-down rule. Default "weft".
	Job string
	// TapGroup is the tap's consumer group (collector.group), whose lag
	// queue health reports. Default "weft-tap", collector.group's default.
	TapGroup string
	// RunbookURL is where docs/runbook.md is read; each rule links
	// RunbookURL#<anchor>. Default the file on weft's main branch.
	RunbookURL string
	// DashboardURL, if set, is the Grafana base URL: rules link the
	// consistency dashboard (stuck orders by reason) from dashboard_url.
	DashboardURL string
	// StuckThreshold: WeftOrdersStuck fires when more than this many
	// orders of one workflow, step and reason are stuck. Default 0 (any).
	StuckThreshold int
	// StuckFor is how long they must stay stuck first. Default 10m.
	StuckFor time.Duration
	// SLAFactor: WeftStuckOrderPastSLA fires when a workflow's oldest stuck
	// order has been in its step SLAFactor times the workflow's longest
	// step SLA. Default 3.
	SLAFactor float64
	// FindingsThreshold: WeftFindingsOpen fires when more than this many
	// findings of a kind that is not an integrity kind stay open. Default 10.
	FindingsThreshold int
	// AuditUnverifiedFor: WeftAuditUnverified fires when weft's scheduled
	// verification (audit.verify) has not verified the trail for this
	// long. Default 3h, three runs at audit.verify.every's default.
	AuditUnverifiedFor time.Duration
}

// DefaultRunbookURL is docs/runbook.md on weft's main branch.
const DefaultRunbookURL = "https://github.com/weft-sh/weft/blob/main/docs/runbook.md"

// DefaultOptions are the built-in workflows with the defaults above.
func DefaultOptions() Options {
	return Options{Workflows: consistency.Builtin(), Job: "weft", TapGroup: "weft-tap", RunbookURL: DefaultRunbookURL,
		StuckFor: 10 * time.Minute, SLAFactor: 3, FindingsThreshold: 10, AuditUnverifiedFor: 3 * time.Hour}
}

var labelValue = regexp.MustCompile(`^[A-Za-z0-9_.:/-]+$`)

// Validate reports every problem at once.
func (o Options) Validate() error {
	var p config.Problems
	if !labelValue.MatchString(o.Job) {
		p.Addf("job", "%q is not a plain label value", o.Job)
	}
	if !labelValue.MatchString(o.TapGroup) {
		p.Addf("tap_group", "%q is not a plain label value", o.TapGroup)
	}
	if o.RunbookURL == "" || strings.Contains(o.RunbookURL, "#") {
		p.Addf("runbook_url", "%q: want a URL without an anchor", o.RunbookURL)
	}
	if o.StuckThreshold < 0 || o.FindingsThreshold < 0 {
		p.Addf("thresholds", "must not be negative")
	}
	if o.StuckFor < 0 {
		p.Addf("stuck_for", "must not be negative")
	}
	if o.AuditUnverifiedFor <= 0 {
		p.Addf("audit_unverified_for", "must be positive")
	}
	if o.SLAFactor <= 0 {
		p.Addf("sla_factor", "must be positive")
	}
	return p.Err()
}

// Rule is one alerting rule, in the shape both Prometheus's rules file and
// the PrometheusRule manifest use.
type Rule struct {
	Alert       string            `yaml:"alert" json:"alert"`
	Expr        string            `yaml:"expr" json:"expr"`
	For         string            `yaml:"for,omitempty" json:"for,omitempty"`
	Labels      map[string]string `yaml:"labels" json:"labels"`
	Annotations map[string]string `yaml:"annotations" json:"annotations"`
}

// Group is a named list of rules evaluated together.
type Group struct {
	Name     string `yaml:"name" json:"name"`
	Interval string `yaml:"interval,omitempty" json:"interval,omitempty"`
	Rules    []Rule `yaml:"rules" json:"rules"`
}

// Runbook anchors: the headings of docs/runbook.md, as GitHub renders them.
const (
	AnchorOrdersStuck      = "weftordersstuck"
	AnchorStuckPastSLA     = "weftstuckorderpastsla"
	AnchorIntegrityFinding = "weftintegrityfinding"
	AnchorFindingsOpen     = "weftfindingsopen"
	AnchorDown             = "weftdown"
	AnchorTapNotConsuming  = "wefttapnotconsuming"
	AnchorTapBehind        = "wefttapbehind"
	AnchorTopicRecreated   = "wefttopicrecreated"
	AnchorInsertsFailing   = "weftclickhouseinsertsfailing"
	AnchorDetectorFailing  = "weftdetectorfailing"
	AnchorNoLeader         = "weftnoleader"
	AnchorQueueHealth      = "weftqueuehealthfailing"
	AnchorAuditTampering   = "weftaudittampering"
	AnchorAuditUnverified  = "weftauditunverified"
	AnchorAuditCheckpoints = "weftauditcheckpointsfailing"
	AnchorReplayJobFailed  = "weftreplayjobfailed"
)

// Rules builds weft's rule groups from o.
func Rules(o Options) ([]Group, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("alert options: %w", err)
	}
	b := builder{o: o}
	return []Group{
		{Name: "weft-orders", Rules: b.orderRules()},
		{Name: "weft-findings", Rules: b.findingRules()},
		{Name: "weft-pipeline", Rules: b.pipelineRules()},
		{Name: "weft-audit", Rules: b.auditRules()},
		{Name: "weft-replay", Rules: b.replayRules()},
	}, nil
}

type builder struct{ o Options }

func (b builder) annotations(anchor, summary, description string) map[string]string {
	a := map[string]string{
		"summary":     summary,
		"description": description,
		"runbook_url": b.o.RunbookURL + "#" + anchor,
	}
	if b.o.DashboardURL != "" {
		a["dashboard_url"] = strings.TrimSuffix(b.o.DashboardURL, "/") + "/d/weft-consistency"
	}
	return a
}

func severity(s string) map[string]string { return map[string]string{"severity": s} }

func promDuration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", (d+time.Second-1)/time.Second)
}

func (b builder) orderRules() []Rule {
	rules := []Rule{{
		Alert:  "WeftOrdersStuck",
		Expr:   fmt.Sprintf("sum by (workflow, step, reason) (weft_stuck_orders) > %d", b.o.StuckThreshold),
		For:    promDuration(b.o.StuckFor),
		Labels: severity(SeverityWarning),
		Annotations: b.annotations(AnchorOrdersStuck,
			`{{ $value }} {{ $labels.workflow }} orders stuck in step {{ $labels.step }}: {{ $labels.reason }}`,
			`{{ $value }} orders of workflow {{ $labels.workflow }} made no progress within the SLA of step {{ $labels.step }}, `+
				`and weft says why: {{ $labels.reason }}. `+
				`{{ if eq $labels.reason "not-delivered" }}The owning service's consumer group has not read the record that should trigger its next event: it is lagging, rebalancing or stopped.`+
				`{{ else if eq $labels.reason "no-answer" }}The owning service read the triggering record and emitted nothing: look at the service.`+
				`{{ else if eq $labels.reason "dead-lettered" }}A record of these orders sits in a dead-letter topic.`+
				`{{ else if eq $labels.reason "no-consumer" }}No consumer group of the owning service reads the topic of the triggering record.`+
				`{{ else }}weft lacks the evidence to say why (no queue-health sample, no owner).{{ end }} `+
				`First: weft stuck --workflow {{ $labels.workflow }} --step {{ $labels.step }} --reason {{ $labels.reason }}`),
	}}
	for _, w := range b.o.Workflows {
		var longest time.Duration
		for _, s := range w.Steps {
			if !s.Terminal {
				longest = max(longest, s.SLA)
			}
		}
		if longest == 0 {
			continue
		}
		limit := time.Duration(float64(longest) * b.o.SLAFactor).Round(time.Second)
		rules = append(rules, Rule{
			Alert:  "WeftStuckOrderPastSLA",
			Expr:   fmt.Sprintf(`max by (workflow) (weft_stuck_oldest_seconds{workflow=%q}) > %d`, w.Name, int64(limit.Seconds())),
			Labels: severity(SeverityCritical),
			Annotations: b.annotations(AnchorStuckPastSLA,
				`A {{ $labels.workflow }} order has been stuck for {{ $value | humanizeDuration }}`,
				fmt.Sprintf(`The longest-stuck order of workflow {{ $labels.workflow }} has been in its step for {{ $value | humanizeDuration }} `+
					`(on the stream's clock), past %s: %g times the workflow's longest step SLA (%s). A customer is waiting. `+
					`First: weft stuck --workflow {{ $labels.workflow }} --older-than %s`, limit, b.o.SLAFactor, longest, limit)),
		})
	}
	return rules
}

func (b builder) findingRules() []Rule {
	kinds := strings.Join(IntegrityKinds, "|")
	var others []string
	for _, k := range consistency.Kinds {
		if k != consistency.KindStuck && !slices.Contains(IntegrityKinds, k) {
			others = append(others, k)
		}
	}
	return []Rule{{
		Alert:  "WeftIntegrityFinding",
		Expr:   fmt.Sprintf(`sum by (kind) (weft_findings_open{kind=~%q}) > 0`, kinds),
		Labels: severity(SeverityCritical),
		Annotations: b.annotations(AnchorIntegrityFinding,
			`{{ $value }} open {{ $labels.kind }} findings`,
			`The events of {{ $value }} orders contradict each other ({{ $labels.kind }}): not late, wrong. `+
				`The finding's evidence names the events and vectors that prove it. First: weft findings --kind {{ $labels.kind }} -o json`),
	}, {
		Alert:  "WeftFindingsOpen",
		Expr:   fmt.Sprintf(`sum by (kind) (weft_findings_open{kind=~%q}) > %d`, strings.Join(others, "|"), b.o.FindingsThreshold),
		For:    "30m",
		Labels: severity(SeverityWarning),
		Annotations: b.annotations(AnchorFindingsOpen,
			`{{ $value }} open {{ $labels.kind }} findings`,
			`{{ $value }} {{ $labels.kind }} findings have stayed open for 30 minutes: events a service should have sent are missing. `+
				`First: weft findings --kind {{ $labels.kind }}`),
	}}
}

func (b builder) pipelineRules() []Rule {
	return []Rule{{
		Alert:  "WeftDown",
		Expr:   fmt.Sprintf(`up{job=%q} == 0`, b.o.Job),
		For:    "5m",
		Labels: severity(SeverityCritical),
		Annotations: b.annotations(AnchorDown,
			`weft {{ $labels.instance }} is down`,
			`Prometheus has not scraped weft at {{ $labels.instance }} for 5 minutes: nothing is tapped, no order is checked, and every weft metric is stale.`),
	}, {
		Alert: "WeftTapNotConsuming",
		Expr: `sum by (job, instance) (rate(weft_collector_records_consumed_total[10m])) == 0` +
			` and on (job, instance) sum by (job, instance) (weft_collector_backlog_records) > 0`,
		For:    "10m",
		Labels: severity(SeverityCritical),
		Annotations: b.annotations(AnchorTapNotConsuming,
			`weft's tap on {{ $labels.instance }} has stopped reading Kafka`,
			`The tap read no record for 10 minutes while records wait in the partitions it polls: stored events and every finding are going stale.`),
	}, {
		Alert:  "WeftTopicRecreated",
		Expr:   `max by (job, instance) (weft_collector_recreated_topics) > 0`,
		For:    "1m",
		Labels: severity(SeverityCritical),
		Annotations: b.annotations(AnchorTopicRecreated,
			`a topic weft taps was deleted and recreated`,
			`The tap on {{ $labels.instance }} reads only the first instance of {{ $value }} recreated topic(s): the new records are not stored. `+
				`Do not just restart weft: see the runbook. /readyz names the topic.`),
	}, {
		Alert:  "WeftTapBehind",
		Expr:   fmt.Sprintf(`max by (group, topic) (weft_queue_group_lag_seconds{group=%q}) > 300`, b.o.TapGroup),
		For:    "15m",
		Labels: severity(SeverityWarning),
		Annotations: b.annotations(AnchorTapBehind,
			`weft's tap is {{ $value | humanizeDuration }} behind on {{ $labels.topic }}`,
			`The oldest record of {{ $labels.topic }} that the tap's group {{ $labels.group }} has not read is {{ $value | humanizeDuration }} old. `+
				`weft sees orders late, so stuck orders are found late. First: weft lag --group '^{{ $labels.group }}$'`),
	}, {
		Alert:  "WeftClickHouseInsertsFailing",
		Expr:   `sum by (job, instance) (rate(weft_collector_insert_errors_total[5m])) > 0`,
		For:    "5m",
		Labels: severity(SeverityWarning),
		Annotations: b.annotations(AnchorInsertsFailing,
			`ClickHouse inserts from {{ $labels.instance }} are failing`,
			`weft's batch inserts into ClickHouse have failed for 5 minutes ({{ $value | humanize }} a second); each is retried, and the tap does not commit Kafka offsets past what it stored.`),
	}, {
		Alert: "WeftClickHouseInsertsFailing",
		Expr: `sum by (job, instance) (rate(weft_collector_insert_errors_total[5m])) > 0` +
			` unless on (job, instance) sum by (job, instance) (rate(weft_collector_events_stored_total[5m])) > 0`,
		For:    "10m",
		Labels: severity(SeverityCritical),
		Annotations: b.annotations(AnchorInsertsFailing,
			`No event from {{ $labels.instance }} reaches ClickHouse`,
			`Every ClickHouse insert from weft has failed for 10 minutes and none succeeded: nothing is stored, the tap's group is falling behind.`),
	}, {
		Alert: "WeftDetectorFailing",
		Expr: `sum by (job, instance) (increase(weft_consistency_detector_failures_total[15m])) > 0` +
			` unless on (job, instance) sum by (job, instance) (increase(weft_consistency_detector_passes_total[15m])) > 0`,
		Labels: severity(SeverityCritical),
		Annotations: b.annotations(AnchorDetectorFailing,
			`weft's detector on {{ $labels.instance }} has failed every pass for 15 minutes`,
			`No detector pass completed in 15 minutes and some failed: stuck orders and findings are not updated, and the stuck-order alerts show old counts.`),
	}, {
		// No replica of the job leads (docs/replicas.md): a fail-over takes
		// seconds, so minutes without a leader is a replica that cannot
		// join the leader group.
		Alert:  "WeftNoLeader",
		Expr:   `max by (job) (weft_leader_is_leader) == 0`,
		For:    "5m",
		Labels: severity(SeverityCritical),
		Annotations: b.annotations(AnchorNoLeader,
			`no weft replica of {{ $labels.job }} leads`,
			`No replica has led for 5 minutes: no detector pass, no queue-health sample, no webhook, no scheduled audit verification runs. `+
				`The replicas cannot join their leader group. First: the weft log lines "leader group" and "leading"`),
	}, {
		Alert:  "WeftQueueHealthFailing",
		Expr:   `sum by (job, instance, stage) (increase(weft_queue_sample_errors_total[15m])) > 0`,
		For:    "15m",
		Labels: severity(SeverityWarning),
		Annotations: b.annotations(AnchorQueueHealth,
			`weft's queue-health sampling fails at {{ $labels.stage }}`,
			`Queue-health samples have failed at stage {{ $labels.stage }} for 15 minutes: consumer-group lag is not measured, and new stuck orders are explained as unknown.`),
	}}
}

// auditRules watch the audit trail (docs/audit.md): what weft's scheduled
// verification found, whether it still verifies, and whether checkpoints
// are being stored. They have no series when the trail is off.
func (b builder) auditRules() []Rule {
	return []Rule{{
		Alert:  "WeftAuditTampering",
		Expr:   `max by (job, instance) (weft_audit_verify_findings) > 0`,
		Labels: severity(SeverityCritical),
		Annotations: b.annotations(AnchorAuditTampering,
			`weft's audit verification found {{ $value }} problems`,
			`The last scheduled verification of the audit trail found {{ $value }} rows, leaves or checkpoints that do not match: `+
				`stored events were changed, deleted or forged, or records were lost. Preserve the evidence before anything else. `+
				`First: weft audit verify -o json > verify.json`),
	}, {
		Alert: "WeftAuditUnverified",
		// By job, not instance: only the leader verifies (docs/replicas.md),
		// so the other replicas never set the gauge.
		Expr:   fmt.Sprintf(`time() - max by (job) (weft_audit_verify_last_verified_timestamp_seconds) > %d`, int64(b.o.AuditUnverifiedFor.Seconds())),
		Labels: severity(SeverityWarning),
		Annotations: b.annotations(AnchorAuditUnverified,
			`weft has not verified its audit trail for {{ $value | humanizeDuration }}`,
			fmt.Sprintf(`No scheduled verification of the audit trail has ended verified for more than %s: they fail (ClickHouse, the checkpoint sink) or find problems. `+
				`The trail may still be whole; nobody has checked. First: weft audit verify --since 24h`, b.o.AuditUnverifiedFor)),
	}, {
		Alert: "WeftAuditCheckpointsFailing",
		Expr: `sum by (job, instance) (increase(weft_audit_checkpoints_total{result="failed"}[15m])) > 0` +
			` unless on (job, instance) sum by (job, instance) (increase(weft_audit_checkpoints_total{result="stored"}[15m])) > 0`,
		For:    "5m",
		Labels: severity(SeverityWarning),
		Annotations: b.annotations(AnchorAuditCheckpoints,
			`weft on {{ $labels.instance }} cannot store audit checkpoints`,
			`Every audit checkpoint of the last 15 minutes failed to be stored in ClickHouse or written to the checkpoint sink: leaves are stored, `+
				`but nothing signs them, so a change to them would go unnoticed until checkpoints resume. Look at weft's log for "audit checkpoint not stored".`),
	}}
}

// replayRules watch replay and redrive jobs (docs/replay.md). Every weft
// run counts the same shared table, so the rule takes the max by job, not
// one alert per instance. The gauge has no series before weft run counted
// once, and stays 0 where replay is never used.
func (b builder) replayRules() []Rule {
	return []Rule{{
		Alert:  "WeftReplayJobFailed",
		Expr:   `max by (job) (weft_replay_jobs{state="failed"}) > 0`,
		Labels: severity(SeverityWarning),
		Annotations: b.annotations(AnchorReplayJobFailed,
			`{{ $value }} replay jobs failed and are neither resumed nor cancelled`,
			`{{ $value }} replay or redrive jobs stopped on an error (Kafka, ClickHouse, a target no longer allowed) part way: `+
				`records an operator asked to re-send are not all produced, and the orders waiting for them stay stuck. `+
				`What each job produced is committed once; resuming it produces the rest, none twice. `+
				`First: weft replay status JOB, then weft replay resume JOB (or cancel it).`),
	}}
}
