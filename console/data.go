package console

import (
	"context"
	"net/url"
	"time"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/queuehealth"
)

// Data is where the console's pages come from: the functions behind
// `weft stuck`, `weft order`, `weft findings`, `weft lag --stored` and
// the API's acknowledgement, given by the wiring so the console holds no
// SQL and no second copy of their rules.
type Data struct {
	// Stuck answers the stuck list for the query's filters (the API's
	// parameters: workflow, step, service, reason, older_than, limit,
	// live). A BadRequest error is the query's fault.
	Stuck func(ctx context.Context, q url.Values) (Stuck, error)
	// Order is one order's report; an order with no events has none.
	Order func(ctx context.Context, id string) (Order, error)
	// Findings answers the findings list for the query's filters (kind,
	// status, order: the API's parameters). A BadRequest error is the
	// query's fault.
	Findings func(ctx context.Context, q url.Values) ([]consistency.Finding, error)
	// Queues is the newest queue-health sample weft run stored.
	Queues func(ctx context.Context) (queuehealth.Report, error)
	// Audit is the state of the audit trail's logs; nil when the trail
	// is off.
	Audit func(ctx context.Context) ([]AuditLog, error)
	// Acknowledge acknowledges a finding as id, from origin, recording it
	// where the API's acknowledgements go. A NotFound error: no such
	// finding.
	Acknowledge func(ctx context.Context, id auth.Identity, origin, findingID, reason string) (consistency.Finding, error)
	// Workflows are the configured workflows, for the filters' choices.
	Workflows []consistency.Workflow
}

// Stuck is the stuck list: the clock it was measured against and the
// answer.
type Stuck struct {
	Clock consistency.Clock
	consistency.StuckResult
}

// Order is what the order page shows: the answer of `weft order`.
type Order struct {
	ID string
	// TraceID is the order's OpenTelemetry trace id (docs/tracing.md), ""
	// without a tracing id key.
	TraceID  string
	State    []consistency.WorkflowState
	Events   []consistency.ChainEvent
	Findings []consistency.Finding
	Stuck    []consistency.StuckOrder
	// Evidence holds, for each of Stuck, the lines of evidence under its
	// reason, as `weft order` prints them.
	Evidence [][]string
}

// AuditLog is one Merkle log of the audit trail and its newest
// checkpoint.
type AuditLog struct {
	// Origin names the log (its topic-partition).
	Origin string
	// Checkpointed is how many records the newest checkpoint covers,
	// signed or not, made at CheckpointAt.
	Checkpointed uint64
	Signed       bool
	CheckpointAt time.Time
}

// BadRequest is an error in what the browser asked for (a filter), shown
// with a 400.
type BadRequest struct{ Err error }

func (e BadRequest) Error() string { return e.Err.Error() }
func (e BadRequest) Unwrap() error { return e.Err }

// NotFound is an error for something that does not exist, shown with a 404.
type NotFound struct{ Err error }

func (e NotFound) Error() string { return e.Err.Error() }
func (e NotFound) Unwrap() error { return e.Err }
