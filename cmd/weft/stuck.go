package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
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
	return StuckReport{Clock: clock, StuckResult: res}, nil
}

func newStuckCmd(g *globalFlags) *cobra.Command {
	var f consistency.Filter
	cmd := &cobra.Command{
		Use:   "stuck",
		Short: "List orders stuck past their step's SLA",
		Long: `stuck lists every order that made no progress within its current step's SLA:
order id, workflow, current step, time in step, last event, and the service
that owes the next event, longest in its step first. Time is measured against
the event-time watermark. While weft run's detector is running the list is its
open stuck findings (fast on any number of orders); otherwise, or with --live,
every order is evaluated now.`,
		Example: "  weft stuck\n  weft stuck --workflow bopis --older-than 30m\n  weft stuck -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
		fmt.Fprintf(w, "%d stuck orders, the %d longest stuck shown (--limit) (watermark %s)\n\n", rep.Total, len(rep.Orders), rep.Clock.Now.Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "%d stuck orders (watermark %s)\n\n", len(rep.Orders), rep.Clock.Now.Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tWORKFLOW\tSTEP\tIN STEP\tSLA\tLAST EVENT\tAT\tWAITING ON")
	for _, s := range rep.Orders {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s → %s\n", s.OrderID, s.Workflow, s.Step,
			human(s.InStep), human(s.SLA), s.LastEventType, s.LastEventTime.Format("2006-01-02 15:04:05"),
			s.Owner, strings.Join(s.Expects, "|"))
	}
	_ = tw.Flush()
}

// human renders a duration the way a person reads it: 2h05m, 7m30s, 45s.
func human(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return d.String()
	}
}

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// withEngine loads the config, opens ClickHouse and runs fn with a
// consistency engine over the configured workflows.
func (g *globalFlags) withEngine(ctx context.Context, fn func(*consistency.Engine) error) error {
	cfg, err := g.load()
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(consistency.NewEngine(store, cfg.Consistency.AllWorkflows()))
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
	// has not written yet (answering "nothing stuck" rather than an error).
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("clickhouse schema: %w", err)
	}
	return store, nil
}
