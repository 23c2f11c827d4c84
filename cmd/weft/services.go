package main

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/consistency"
)

func newServicesCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "services",
		Short: "Which consumer groups belong to which service",
		Long: `weft says why a stuck order is stuck from the consumer groups of the service
that owes its next event (docs/consistency.md, "Why is it stuck?"). Those
groups come from consistency.services in weft.yaml; a service not listed has
the groups whose name equals or starts with its name.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newServicesSuggestCmd(g))
	return cmd
}

func newServicesSuggestCmd(g *globalFlags) *cobra.Command {
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "suggest",
		Short: "Propose consistency.services from the groups reading each service's events",
		Long: `suggest looks, for every service a workflow step names as owner, at the topics
the events it must answer were stored from (since --since ago) and at the
consumer groups reading those topics in the newest queue-health sample, and
prints a consistency.services block to review and paste into weft.yaml: the
groups mapped to the service now, else the readers whose name mentions it.
Events a service emits itself, dead-letter topics and weft's own group are
left out.`,
		Example: "  weft services suggest\n  weft services suggest --since 1h -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since <= 0 {
				return usageError{fmt.Errorf("--since must be positive, got %s", since)}
			}
			return g.withEngine(cmd.Context(), func(e *consistency.Engine) error {
				s, err := e.SuggestServices(cmd.Context(), time.Now().Add(-since))
				if err != nil {
					return err
				}
				return g.emit(cmd.OutOrStdout(), s, func(w io.Writer) { printServices(w, s) })
			})
		},
	}
	cmd.Flags().DurationVar(&since, "since", 24*time.Hour, "look at the events stored this long ago and since")
	return cmd
}

// printServices prints the suggestion as a weft.yaml block, each service
// with what it answers and who reads it as comments.
func printServices(w io.Writer, s consistency.ServicesSuggestion) {
	fmt.Fprintf(w, "# consistency.services as weft observes it: events stored since %s,\n", s.Since.Format(time.RFC3339))
	if s.SampledAt.IsZero() {
		fmt.Fprintln(w, "# and no queue-health sample yet (weft run samples with collector.lag.enabled): no readers known.")
	} else {
		fmt.Fprintf(w, "# consumer groups from the queue-health sample of %s. Review, then paste into weft.yaml.\n", s.SampledAt.Format(time.RFC3339))
	}
	fmt.Fprintln(w, "consistency:\n  services:")
	for _, sg := range s.Services {
		fmt.Fprintf(w, "    %s:\n", sg.Service)
		switch {
		case len(sg.Triggers) == 0:
			fmt.Fprintln(w, "      # no event it must answer was stored (or it answers only its own events)")
		case len(sg.Readers) == 0:
			fmt.Fprintf(w, "      # answers %s on %s, which no consumer group reads\n", strings.Join(sg.Triggers, ", "), strings.Join(sg.Topics, ", "))
		default:
			fmt.Fprintf(w, "      # answers %s on %s, read by %s\n", strings.Join(sg.Triggers, ", "), strings.Join(sg.Topics, ", "), strings.Join(sg.Readers, ", "))
		}
		if len(sg.Suggested) == 0 && len(sg.Readers) > 0 {
			fmt.Fprintf(w, "      # no reader's name mentions %s: pick its groups among the readers\n", sg.Service)
		}
		if sg.Configured && len(sg.Mapped) > 0 {
			fmt.Fprintln(w, "      # (as configured now)")
		} else if len(sg.Mapped) > 0 {
			fmt.Fprintln(w, "      # (what the default rule gives it now: groups named after it)")
		}
		quoted := make([]string, len(sg.Suggested))
		for i, g := range sg.Suggested {
			quoted[i] = "'" + strings.ReplaceAll(regexp.QuoteMeta(g), "'", "''") + "'"
		}
		fmt.Fprintf(w, "      groups: [%s]\n", strings.Join(quoted, ", "))
	}
}
