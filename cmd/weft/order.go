package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/consistency"
)

// OrderReport is the answer of `weft order` and GET /api/v1/orders/{id}.
type OrderReport struct {
	OrderID string `json:"order_id"`
	// State is where the order stands in each of its workflows, the one it
	// waits in first.
	State []consistency.WorkflowState `json:"state"`
	// Events in causal order; Depth is the indentation of the tree.
	Events []consistency.ChainEvent `json:"events"`
	// Findings that are open or acknowledged.
	Findings []consistency.Finding `json:"findings"`
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
	rep := OrderReport{OrderID: id, Events: evs, State: consistency.OrderStates(e.Workflows(), evs), Findings: fs}
	if rep.Events == nil {
		rep.Events = []consistency.ChainEvent{}
	}
	if rep.State == nil {
		rep.State = []consistency.WorkflowState{}
	}
	if rep.Findings == nil {
		rep.Findings = []consistency.Finding{}
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
			return g.withEngine(cmd.Context(), func(e *consistency.Engine) error {
				rep, err := orderReport(cmd.Context(), e, args[0])
				if err != nil {
					return err
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
	fmt.Fprintf(w, "Order %s: %d events\n\n", rep.OrderID, len(rep.Events))
	for _, st := range rep.State {
		if st.Terminal {
			fmt.Fprintf(w, "  %-14s %s (finished %s)\n", st.Workflow, st.Step, st.Entered.Format("2006-01-02 15:04:05"))
			continue
		}
		fmt.Fprintf(w, "  %-14s %s since %s; next: %s from %s\n", st.Workflow, st.Step,
			st.Entered.Format("2006-01-02 15:04:05"), strings.Join(st.Expects, " or "), st.Owner)
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
