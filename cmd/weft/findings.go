package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
)

// FindingsReport is the answer of `weft findings` and GET /api/v1/findings.
type FindingsReport struct {
	Findings []consistency.Finding `json:"findings"`
}

func newFindingsCmd(g *globalFlags) *cobra.Command {
	f := consistency.FindingFilter{Status: "active"}
	cmd := &cobra.Command{
		Use:   "findings",
		Short: "List findings by kind and status",
		Long: `findings lists what the detector found: stuck orders, gaps, causality
violations, orphans, concurrent conflicts, duplicates, invariant violations
and divergences, each with a summary; -o json adds the evidence (the events,
vectors and rule that prove it). By default only active (open or
acknowledged) findings are shown.`,
		Example: "  weft findings\n  weft findings --kind gap\n  weft findings --status resolved --order ord-1\n  weft findings -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.Kind != "" && !contains(consistency.Kinds, f.Kind) {
				return usageError{fmt.Errorf("--kind %q: want one of %s", f.Kind, strings.Join(consistency.Kinds, ", "))}
			}
			switch f.Status {
			case "all":
				f.Status = ""
			case "active", consistency.StatusOpen, consistency.StatusAcknowledged, consistency.StatusResolved:
			default:
				return usageError{fmt.Errorf("--status %q: want active, open, acknowledged, resolved or all", f.Status)}
			}
			return g.withEngine(cmd.Context(), func(e *consistency.Engine) error {
				fs, err := e.Findings(cmd.Context(), f)
				if err != nil {
					return err
				}
				if fs == nil {
					fs = []consistency.Finding{}
				}
				rep := FindingsReport{Findings: fs}
				return g.emit(cmd.OutOrStdout(), rep, func(w io.Writer) { printFindings(w, fs) })
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Kind, "kind", "", "only this kind: "+strings.Join(consistency.Kinds, ", "))
	fl.StringVar(&f.Status, "status", f.Status, "active (open or acknowledged), open, acknowledged, resolved or all")
	fl.StringVar(&f.OrderID, "order", "", "only this order's findings")
	fl.IntVar(&f.Limit, "limit", 200, "show at most this many (0: all)")
	return cmd
}

func printFindings(w io.Writer, fs []consistency.Finding) {
	if len(fs) == 0 {
		fmt.Fprintln(w, "No findings.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tORDER\tSTATUS\tFIRST SEEN\tSUMMARY")
	for _, f := range fs {
		status := f.Status
		if f.AckBy != "" && f.Status == consistency.StatusAcknowledged {
			status += " by " + f.AckBy
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.ID, f.Kind, f.OrderID, status,
			f.FirstSeen.Format("2006-01-02 15:04"), f.Summary)
	}
	_ = tw.Flush()
}

func newAckCmd(g *globalFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "ack FINDING_ID",
		Short: "Acknowledge a finding: who, when and why",
		Long: `ack records that a person has seen a finding and why it may stay open. It
stays acknowledged while the problem lasts and resolves itself when the
order is fixed.

This command writes to ClickHouse directly, so it has no login of weft's
to go by: the acknowledgement is recorded as by $WEFT_USER, else your OS
login name, and the operator-actions log (docs/audit.md) records it with
the origin "cli <login>@<host>" — the OS user and host it ran as. There is
no --by: through the API (POST /api/v1/findings/{id}/ack) the
acknowledgement is recorded under the caller's token or OIDC identity.`,
		Example: `  weft ack 3f9c0a1b2c3d4e5f6a7b --reason "payments outage, replay scheduled"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageError{fmt.Errorf("--reason is required: say why")}
			}
			ctx := cmd.Context()
			return g.withStore(ctx, func(cfg Config, store *chstore.Store) error {
				actions, err := actionLog(cfg, store)
				if err != nil {
					return err
				}
				engine, err := newEngine(cfg, store)
				if err != nil {
					return err
				}
				by, origin := cliActor()
				f, err := engine.Acknowledge(ctx, args[0], by, reason)
				outcome, detail := outcomeOf(err, reason)
				if lerr := logAction(ctx, actions, auditor.Action{Actor: by, Origin: origin, Verb: "ack", Resource: "finding/" + args[0],
					Outcome: outcome, Detail: detail}, f.OrderID); lerr != nil {
					return errors.Join(err, lerr)
				}
				if err != nil {
					return err
				}
				return g.emit(cmd.OutOrStdout(), f, func(w io.Writer) {
					fmt.Fprintf(w, "Acknowledged %s (%s, order %s) by %s: %s\n", f.ID, f.Kind, f.OrderID, f.AckBy, f.AckReason)
				})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	return cmd
}

func currentUser() string {
	if u := os.Getenv("WEFT_USER"); u != "" {
		return u
	}
	return osUser()
}

// osUser is the login name of the process's user, or "".
func osUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
