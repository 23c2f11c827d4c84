package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"

	"github.com/weft-sh/weft/internal/humanize"
)

// OrderReport is the answer of `weft order` and GET /api/v1/orders/{id}.
type OrderReport struct {
	OrderID string `json:"order_id"`
	// TraceID is the order's OpenTelemetry trace id (docs/tracing.md), when
	// tracing.id_key_file is configured.
	TraceID string `json:"trace_id,omitempty"`
	// State is where the order stands in each of its workflows, the one it
	// waits in first.
	State []consistency.WorkflowState `json:"state"`
	// Events in causal order; Depth is the indentation of the tree.
	Events []consistency.ChainEvent `json:"events"`
	// Findings that are open or acknowledged.
	Findings []consistency.Finding `json:"findings"`
	// Stuck is where the order is stuck past its step's SLA, and why
	// (reason and evidence); empty when it is not stuck.
	Stuck []consistency.StuckOrder `json:"stuck"`
}

func orderReport(ctx context.Context, e *consistency.Engine, id string) (OrderReport, error) {
	evs, err := e.Chain(ctx, id)
	if err != nil {
		return OrderReport{}, err
	}
	fs, err := e.Findings(ctx, consistency.FindingFilter{OrderID: id, Status: "active"})
	if err != nil {
		return OrderReport{}, err
	}
	clock, err := e.Clock(ctx)
	if err != nil {
		return OrderReport{}, err
	}
	stuck, err := e.StuckOf(ctx, clock, id, evs)
	if err != nil {
		return OrderReport{}, err
	}
	rep := OrderReport{OrderID: id, Events: evs, State: consistency.OrderStates(e.Workflows(), evs), Findings: fs, Stuck: stuck}
	if rep.Events == nil {
		rep.Events = []consistency.ChainEvent{}
	}
	if rep.State == nil {
		rep.State = []consistency.WorkflowState{}
	}
	if rep.Findings == nil {
		rep.Findings = []consistency.Finding{}
	}
	if rep.Stuck == nil {
		rep.Stuck = []consistency.StuckOrder{}
	}
	return rep, nil
}

func newOrderCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "order ORDER_ID",
		Short:   "Show an order's events in causal order",
		Long:    "order prints the order's events, each after its cause, with where weft read it (topic/partition@offset), the producing service, the event time and when weft stored it.",
		Example: "  weft order o-000123\n  weft order o-000123 -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd.Context(), func(cfg Config, store *chstore.Store) error {
				e, err := newEngine(cfg, store)
				if err != nil {
					return err
				}
				rep, err := orderReport(cmd.Context(), e, args[0])
				if err != nil {
					return err
				}
				if traceID := orderTraceIDs(cfg); traceID != nil {
					rep.TraceID = traceID(args[0], rep.Events)
				}
				if len(rep.Events) == 0 {
					return fmt.Errorf("order %s: no events stored", args[0])
				}
				return g.emit(cmd.OutOrStdout(), rep, func(w io.Writer) { printOrder(w, rep) })
			})
		},
	}
}

func printOrder(w io.Writer, rep OrderReport) {
	fmt.Fprintf(w, "Order %s: %d events\n", rep.OrderID, len(rep.Events))
	if rep.TraceID != "" {
		fmt.Fprintf(w, "Trace %s (weft trace %s)\n", rep.TraceID, rep.OrderID)
	}
	fmt.Fprintln(w)
	for _, st := range rep.State {
		if st.Terminal {
			fmt.Fprintf(w, "  %-14s %s (finished %s)\n", st.Workflow, st.Step, st.Entered.Format("2006-01-02 15:04:05"))
			continue
		}
		fmt.Fprintf(w, "  %-14s %s since %s; next: %s from %s\n", st.Workflow, st.Step,
			st.Entered.Format("2006-01-02 15:04:05"), strings.Join(st.Expects, " or "), st.Owner)
	}
	for _, s := range rep.Stuck {
		fmt.Fprintf(w, "\nStuck in %s/%s for %s (SLA %s), waiting on %s for %s.\n", s.Workflow, s.Step, humanize.Duration(s.InStep), humanize.Duration(s.SLA),
			s.Owner, strings.Join(s.Expects, " or "))
		if s.Why != nil {
			fmt.Fprintf(w, "  Why: %s — %s\n", s.Reason, s.Why.Text)
			for _, line := range whyDetails(*s.Why) {
				fmt.Fprintf(w, "       %s\n", line)
			}
		}
	}
	if len(rep.Findings) > 0 {
		fmt.Fprintf(w, "\nFindings:\n")
		for _, f := range rep.Findings {
			fmt.Fprintf(w, "  %-20s %s  [%s %s]\n", f.Kind, f.Summary, f.Status, f.ID)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tLINK\tSERVICE\tEVENT TIME\tSEEN\tWHERE\tVECTOR")
	for _, e := range rep.Events {
		link := e.Via
		if link == "" {
			link = "root"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s/%d@%d\t%s\n", strings.Repeat("  ", e.Depth), e.Type, link, e.Service,
			e.EventTime.Format("2006-01-02 15:04:05.000"), e.IngestedAt.Format("15:04:05.000"),
			e.Topic, e.Partition, e.Offset, vector(e.VersionVector))
	}
	_ = tw.Flush()
}

func vector(vv map[string]uint64) string {
	if len(vv) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(vv))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, vv[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// whyDetails are the lines of evidence under a stuck order's reason: the
// trigger, every group of the owner on its partition, the dead letter,
// when queue health was sampled.
func whyDetails(w consistency.Why) []string {
	var out []string
	if t := w.Trigger; t != nil {
		out = append(out, fmt.Sprintf("trigger:     %s %s from %s at %s (event %s)", t.Type, t, t.Service,
			t.EventTime.Format("2006-01-02 15:04:05"), t.EventID))
	}
	for _, g := range w.Groups {
		read := "has not read it"
		if g.Read {
			read = "read it"
		}
		lag := fmt.Sprintf("lag %d", g.LagMessages)
		if g.LagSeconds >= 0 {
			lag += ", " + humanize.Duration(time.Duration(g.LagSeconds*float64(time.Second)))
		}
		members := ""
		if g.Members >= 0 {
			members = fmt.Sprintf(", %d members", g.Members)
		}
		out = append(out, fmt.Sprintf("group:       %s %s (committed %d; %s; %s%s)", g.Group, read, g.CommittedOffset, lag, g.State, members))
	}
	if d := w.DeadLetter; d != nil {
		line := fmt.Sprintf("dead letter: %s %s", d.Type, d.Record)
		if d.ErrorHeader != "" {
			line += fmt.Sprintf(", %s: %s", d.ErrorHeader, d.Error)
		}
		out = append(out, line)
	}
	if len(w.Readers) > 0 {
		out = append(out, "read by:     "+strings.Join(w.Readers, ", "))
	}
	if !w.SampledAt.IsZero() {
		out = append(out, "queue health sampled "+w.SampledAt.Format("2006-01-02 15:04:05Z"))
	}
	return out
}
