package main

import (
	"context"
	"errors"
	"net/url"

	"github.com/rs/zerolog"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/console"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/queuehealth"
)

// newConsole is the web console of `weft run` (docs/console.md), reading
// through the functions behind the CLI and the JSON API: stuckReport,
// orderReport, the engine's findings, the stored queue-health sample, and
// acknowledge. actions is nil when the audit trail is off; traceID, when
// not nil, gives the trace id the order page shows (orderTraceIDs).
func newConsole(engine *consistency.Engine, store *chstore.Store, actions *collector.ActionLog, authn *auth.Authenticator, log zerolog.Logger, traceID traceIDFunc) (*console.Console, error) {
	d := console.Data{
		Workflows: engine.Workflows(),
		Stuck: func(ctx context.Context, q url.Values) (console.Stuck, error) {
			f, err := stuckFilterFromQuery(q)
			if err != nil {
				return console.Stuck{}, console.BadRequest{Err: err}
			}
			rep, err := stuckReport(ctx, engine, f)
			return console.Stuck{Clock: rep.Clock, StuckResult: rep.StuckResult}, err
		},
		Order: func(ctx context.Context, id string) (console.Order, error) {
			rep, err := orderReport(ctx, engine, id)
			if err != nil {
				return console.Order{}, err
			}
			o := console.Order{ID: rep.OrderID, State: rep.State, Events: rep.Events, Findings: rep.Findings, Stuck: rep.Stuck}
			if traceID != nil {
				o.TraceID = traceID(rep.OrderID, rep.Events)
			}
			for _, s := range rep.Stuck {
				var lines []string
				if s.Why != nil {
					lines = whyDetails(*s.Why)
				}
				o.Evidence = append(o.Evidence, lines)
			}
			return o, nil
		},
		Findings: func(ctx context.Context, q url.Values) ([]consistency.Finding, error) {
			f, err := findingFilterFromQuery(q)
			if err != nil {
				return nil, console.BadRequest{Err: err}
			}
			return engine.Findings(ctx, f)
		},
		Queues: func(ctx context.Context) (queuehealth.Report, error) { return queuehealth.LatestStored(ctx, store) },
		Acknowledge: func(ctx context.Context, who auth.Identity, origin, findingID, reason string) (consistency.Finding, error) {
			f, err := acknowledge(ctx, engine, actions, log, who, origin, findingID, reason)
			if errors.Is(err, consistency.ErrNoFinding) {
				return f, console.NotFound{Err: err}
			}
			return f, err
		},
	}
	if actions != nil {
		d.Audit = func(ctx context.Context) ([]console.AuditLog, error) {
			heads, err := store.LatestCheckpoints(ctx)
			out := make([]console.AuditLog, len(heads))
			for i, h := range heads {
				out[i] = console.AuditLog{Origin: h.Origin, Checkpointed: h.Size, Signed: h.Signed, CheckpointAt: h.CreatedAt}
			}
			return out, err
		}
	}
	return console.New(d, console.Settings{Auth: authn, Logger: log.With().Str("component", "console").Logger()})
}
