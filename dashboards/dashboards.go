package dashboards

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/config"
	"github.com/weft-sh/weft/queuehealth"
)

// Tag is on every weft dashboard.
const Tag = "weft"

// Fixed dashboard UIDs: links, bookmarks and provisioning rely on them.
const (
	UIDOverview    = "weft-overview"
	UIDBOPIS       = "weft-bopis"
	UIDPayments    = "weft-payments"
	UIDQueues      = "weft-queues"
	UIDConsistency = "weft-consistency"
	UIDAudit       = "weft-audit"
	UIDReplays     = "weft-replays"
	UIDOrder       = "weft-order"
)

// catalog lists the dashboards in link order.
var catalog = []struct{ uid, title, short string }{
	{UIDOverview, "weft / Commerce overview", "Orders by state, throughput, latency between steps, abandonment"},
	{UIDBOPIS, "weft / BOPIS flow", "Funnel per step, time in each step, stuck orders"},
	{UIDPayments, "weft / Async payments", "Payment pipeline, retries, declines, dead letters, fallback paths"},
	{UIDQueues, "weft / Queue health", "Consumer lag in messages and seconds, queue and dead-letter depth"},
	{UIDConsistency, "weft / Consistency", "Findings, conflicts, gaps, pending compensations, convergence"},
	{UIDAudit, "weft / Audit trail", "Last checkpoint per log, leaves behind the head, unsigned checkpoints, last verify, operator actions"},
	{UIDReplays, "weft / Replays and dead letters", "Replay and redrive jobs by state, records replayed per topic, dead letters waiting and their age before and after a redrive"},
	{UIDOrder, "weft / Order drill-down", "One order: events, causal graph, version vectors, findings"},
}

// Options configure the generated dashboards.
type Options struct {
	// Database is the ClickHouse database holding weft's tables; every
	// query names it, so the data source's default database does not
	// matter. Default "weft".
	Database string
	// Workflows are the workflows the flow panels are generated from.
	// Default consistency.Builtin().
	Workflows []consistency.Workflow
	// OrderWorkflow names the workflow of the BOPIS dashboard and of the
	// order states on the overview. Default "bopis".
	OrderWorkflow string
	// PaymentWorkflow names the workflow of the async payments dashboard.
	// Default "async_payment".
	PaymentWorkflow string
	// DLQPattern is the RE2 expression (matched against whole topic names)
	// of dead-letter topics. Default queuehealth.DefaultDLQPattern, as
	// collector.lag.dlq_pattern.
	DLQPattern string
	// CompensationTypes are the event types that undo earlier steps (the
	// workflows do not mark compensations yet). Default InventoryReleased,
	// PaymentVoided, PaymentRefunded.
	CompensationTypes []string
	// ClickHouseUID is the UID of the ClickHouse data source the data source
	// variable selects by default (the provisioned one). Default "weft-clickhouse".
	ClickHouseUID string
	// Folder is the Grafana folder title; FolderUID its fixed UID.
	// Default "weft" and "weft".
	Folder, FolderUID string
}

// DefaultOptions returns the options for weft's built-in workflows.
func DefaultOptions() Options {
	return Options{
		Database:          "weft",
		Workflows:         consistency.Builtin(),
		OrderWorkflow:     "bopis",
		PaymentWorkflow:   "async_payment",
		DLQPattern:        queuehealth.DefaultDLQPattern,
		CompensationTypes: []string{"InventoryReleased", "PaymentVoided", "PaymentRefunded"},
		ClickHouseUID:     "weft-clickhouse",
		Folder:            "weft",
		FolderUID:         "weft",
	}
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports every problem at once.
func (o Options) Validate() error {
	var p config.Problems
	if !identifier.MatchString(o.Database) {
		p.Addf("database", "%q is not a plain ClickHouse identifier", o.Database)
	}
	if _, ok := o.workflow(o.OrderWorkflow); !ok {
		p.Addf("order_workflow", "no workflow named %q", o.OrderWorkflow)
	}
	if _, ok := o.workflow(o.PaymentWorkflow); !ok {
		p.Addf("payment_workflow", "no workflow named %q", o.PaymentWorkflow)
	}
	if _, err := regexp.Compile(o.DLQPattern); err != nil || o.DLQPattern == "" {
		p.Addf("dlq_pattern", "not a regular expression: %q", o.DLQPattern)
	}
	if o.ClickHouseUID == "" {
		p.Addf("clickhouse_uid", "required")
	}
	if o.FolderUID == "" || o.Folder == "" {
		p.Addf("folder", "title and uid are required")
	}
	return p.Err()
}

func (o Options) workflow(name string) (consistency.Workflow, bool) {
	for _, w := range o.Workflows {
		if w.Name == name {
			return w, true
		}
	}
	return consistency.Workflow{}, false
}

// Dashboard is one generated dashboard.
type Dashboard struct {
	UID   string
	Title string
	// Model is the SDK's dashboard, ready to marshal.
	Model dashboard.Dashboard
}

// JSON is the dashboard model as Grafana imports it, indented.
func (d Dashboard) JSON() ([]byte, error) {
	return json.MarshalIndent(d.Model, "", "  ")
}

// generator carries the options through the dashboard builders.
type generator struct {
	opts Options
}

// table names one of weft's tables, qualified with the database.
func (g *generator) table(name string) string { return g.opts.Database + "." + name }

// All builds every dashboard.
func All(opts Options) ([]Dashboard, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	g := &generator{opts: opts}
	builders := map[string]func() *dashboard.DashboardBuilder{
		UIDOverview:    g.overview,
		UIDBOPIS:       g.bopis,
		UIDPayments:    g.payments,
		UIDQueues:      g.queues,
		UIDConsistency: g.consistencyDashboard,
		UIDAudit:       g.auditTrail,
		UIDReplays:     g.replays,
		UIDOrder:       g.order,
	}
	out := make([]Dashboard, 0, len(catalog))
	for _, c := range catalog {
		m, err := builders[c.uid]().Build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", c.uid, err)
		}
		out = append(out, Dashboard{UID: c.uid, Title: c.title, Model: m})
	}
	return out, nil
}
