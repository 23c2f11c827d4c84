package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"

	"github.com/weft-sh/weft/internal/humanize"
)

// StuckReport is the answer of `weft stuck` and GET /api/v1/stuck.
type StuckReport struct {
	Clock consistency.Clock `json:"clock"`
	consistency.StuckResult
}

// defaultStuckLimit is how many stuck orders are listed unless asked otherwise.
const defaultStuckLimit = 1000

func stuckReport(ctx context.Context, e *consistency.Engine, f consistency.Filter) (StuckReport, error) {
	clock, err := e.Clock(ctx)
	if err != nil {
		return StuckReport{}, err
	}
	res, err := e.Stuck(ctx, clock, f)
	if err != nil {
		return StuckReport{}, err
	}
	if res.Orders == nil {
		res.Orders = []consistency.StuckOrder{}
	}
	if res.Reasons == nil {
		res.Reasons = map[string]int{}
	}
	return StuckReport{Clock: clock, StuckResult: res}, nil
}

func newStuckCmd(g *globalFlags) *cobra.Command {
	var f consistency.Filter
	cmd := &cobra.Command{
		Use:   "stuck",
		Short: "List orders stuck past their step's SLA",
		Long: `stuck lists every order that made no progress within its current step's SLA:
order id, workflow, current step, time in step, last event, the service
that owes the next event, and why the order is stuck, longest in its step
first. Time is measured against the event-time watermark. While weft run's
detector is running the list is its open stuck findings (fast on any number of
orders); otherwise, or with --live, every order is evaluated now.

Why an order is stuck (REASON), from the owner's consumer groups as queue
health last sampled them (docs/consistency.md, "Why is it stuck?"):
  not-delivered  the owner's group has not read the record that should trigger it
  no-answer      the group read it (or the owner emitted it itself) and nothing followed
  dead-lettered  a record of the order sits in a dead-letter topic
  no-consumer    no group of the owner reads the trigger's topic
  unknown        the evidence is missing (no queue-health sample, no owner, …)`,
		Example: "  weft stuck\n  weft stuck --reason not-delivered\n  weft stuck --workflow bopis --older-than 30m\n  weft stuck -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkReason(f.Reason); err != nil {
				return usageError{fmt.Errorf("--reason: %w", err)}
			}
			return g.withEngine(cmd.Context(), func(e *consistency.Engine) error {
				rep, err := stuckReport(cmd.Context(), e, f)
				if err != nil {
					return err
				}
				return g.emit(cmd.OutOrStdout(), rep, func(w io.Writer) { printStuck(w, rep) })
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Workflow, "workflow", "", "only this workflow")
	fl.StringVar(&f.Step, "step", "", "only orders in this step")
	fl.StringVar(&f.Service, "service", "", "only orders waiting on this service")
	fl.StringVar(&f.Reason, "reason", "", "only orders stuck for this reason: "+strings.Join(consistency.Reasons, ", "))
	fl.DurationVar(&f.OlderThan, "older-than", 0, "only orders at least this long in their step")
	fl.IntVar(&f.Limit, "limit", defaultStuckLimit, "show at most this many orders (0: all)")
	fl.BoolVar(&f.Live, "live", false, "evaluate every order now instead of reading the detector's findings")
	return cmd
}

func printStuck(w io.Writer, rep StuckReport) {
	if rep.CatchingUp {
		fmt.Fprintln(w, "The detector is still working through the history: orders it has not reached yet are missing.")
	}
	if rep.Source == "live" && rep.LastPass.IsZero() {
		fmt.Fprintln(w, "No detector has run against this database: every order was evaluated now.")
	} else if rep.Source == "live" {
		fmt.Fprintf(w, "Evaluated every order now (the detector's last pass was %s).\n", rep.LastPass.Format(time.RFC3339))
	}
	if len(rep.Orders) == 0 {
		fmt.Fprintf(w, "No stuck orders (watermark %s).\n", rep.Clock.Now.Format(time.RFC3339))
		return
	}
	if rep.Total > len(rep.Orders) {
		fmt.Fprintf(w, "%d stuck orders, the %d longest stuck shown (--limit) (watermark %s)\n", rep.Total, len(rep.Orders), rep.Clock.Now.Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "%d stuck orders (watermark %s)\n", len(rep.Orders), rep.Clock.Now.Format(time.RFC3339))
	}
	if r := reasonCounts(rep.Reasons); r != "" {
		fmt.Fprintf(w, "Why: %s\n", r)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tWORKFLOW\tSTEP\tIN STEP\tSLA\tLAST EVENT\tAT\tWAITING ON\tREASON\tWHY")
	for _, s := range rep.Orders {
		reason, why := s.Reason, ""
		if reason == "" {
			reason = "-"
		}
		if s.Why != nil {
			why = s.Why.Text
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s → %s\t%s\t%s\n", s.OrderID, s.Workflow, s.Step,
			humanize.Duration(s.InStep), humanize.Duration(s.SLA), s.LastEventType, s.LastEventTime.Format("2006-01-02 15:04:05"),
			s.Owner, strings.Join(s.Expects, "|"), reason, why)
	}
	_ = tw.Flush()
}

// checkReason accepts "" (any reason) and the reasons weft gives.
func checkReason(r string) error {
	if r != "" && !slices.Contains(consistency.Reasons, r) {
		return fmt.Errorf("%q is not one of %s", r, strings.Join(consistency.Reasons, ", "))
	}
	return nil
}

// reasonCounts says how many orders are stuck for each reason, most first:
// "7 not-delivered, 4 no-answer, 1 dead-lettered".
func reasonCounts(by map[string]int) string {
	type rc struct {
		reason string
		n      int
	}
	var rs []rc
	for r, n := range by {
		if r == "" {
			r = "not yet explained"
		}
		rs = append(rs, rc{r, n})
	}
	slices.SortFunc(rs, func(a, b rc) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.reason, b.reason)) })
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d %s", r.n, r.reason)
	}
	return strings.Join(parts, ", ")
}

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// withEngine loads the config, opens ClickHouse and runs fn with a
// consistency engine over the configured workflows.
func (g *globalFlags) withEngine(ctx context.Context, fn func(*consistency.Engine) error) error {
	return g.withStore(ctx, func(cfg Config, store *chstore.Store) error {
		e, err := newEngine(cfg, store)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// newEngine is the consistency engine of cfg: its workflows, and what it
// needs to say why stuck orders are stuck — the services' consumer groups
// (consistency.services), the dead-letter topics (collector.lag.dlq_pattern),
// weft's own group (collector.group, nobody's service), and how old a
// queue-health sample may be (three sampling intervals and a minute).
func newEngine(cfg Config, store *chstore.Store) (*consistency.Engine, error) {
	e := consistency.NewEngine(store, cfg.Consistency.AllWorkflows())
	err := e.SetDiagnosis(consistency.Diagnosis{Services: cfg.Consistency.Services, DLQPattern: cfg.Collector.Lag.DLQPattern,
		IgnoreGroups: []string{cfg.Collector.Group}, SampleMaxAge: 3*cfg.Collector.Lag.Interval + time.Minute})
	return e, err
}

// withStore loads the configuration, opens the store (migrated, or checked:
// prepareSchema), and runs fn with both.
func (g *globalFlags) withStore(ctx context.Context, fn func(Config, *chstore.Store) error) error {
	cfg, err := g.load()
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(cfg, store)
}

// emit writes v as indented JSON with -o json, else as text.
func (g *globalFlags) emit(w io.Writer, v any, text func(io.Writer)) error {
	if g.output == "json" {
		return writeIndentedJSON(w, v)
	}
	text(w)
	return nil
}

func openStore(ctx context.Context, cfg Config) (*chstore.Store, error) {
	store, err := chstore.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return nil, err
	}
	// Reading commands also migrate, so they work against a database weft
	// has not written yet (answering "nothing stuck" rather than an error);
	// with clickhouse.migrate external they only check, as weft run does.
	if err := prepareSchema(ctx, store, cfg.ClickHouse); err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}
