package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/collector"
)

func newAuditEraseCmd(g *globalFlags) *cobra.Command {
	var orderID, reason string
	var yes bool
	cmd := &cobra.Command{
		Use:   "erase",
		Short: "Erase an order's personal data (GDPR) while every log and proof still verifies",
		Long: `erase removes the payload, record key, headers and payload hash of every
stored row of an order, and the salts of their audit leaves, after logging
the erasure — with the reason and every record it erases — in the
operator-actions log. Its identifiers (order, event and trace ids, types,
times, offsets) stay. Every log, checkpoint and proof still verifies, and
weft audit verify reports these rows as erased by that action, not as
tampering (docs/audit.md, "Erasure"). It cannot be undone. On a terminal
it asks first; elsewhere it needs --yes.

What weft cannot erase: Kafka still holds the original records until its
retention removes them, and a consumer group reset that reads them again
stores them again — weft audit verify names such a row, and erasing again
removes it.`,
		Example: `  weft audit erase --order ORD-1042 --reason "GDPR request #5521"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if orderID == "" || strings.TrimSpace(reason) == "" {
				return usageError{errors.New("--order and --reason are required")}
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			if !cfg.Audit.Enabled {
				return usageError{errors.New("erase logs the erasure in the audit trail's operator-actions log: set audit.enabled (and audit.cluster_id)")}
			}
			if !yes {
				if !isatty.IsTerminal(os.Stdin.Fd()) {
					return usageError{errors.New("erasing cannot be undone: pass --yes when not on a terminal")}
				}
				if !confirm(cmd.InOrStdin(), cmd.ErrOrStderr(), fmt.Sprintf("Erase the personal data of order %s? It cannot be undone. [y/N] ", orderID)) {
					return errors.New("not erased")
				}
			}
			store, err := openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			actions, err := actionLog(cfg, store)
			if err != nil {
				return err
			}
			actor, origin := cliActor()
			res, err := actions.EraseOrder(cmd.Context(), collector.Erase{OrderID: orderID, Reason: reason, Actor: actor, Origin: origin})
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), res, func(w io.Writer) {
				fmt.Fprintf(w, "Erased %d records of order %s (operator action #%d, by %s from %s).\n", len(res.Records), orderID, res.Action, actor, origin)
			})
		},
	}
	cmd.Flags().StringVar(&orderID, "order", "", "the order whose personal data to erase (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, e.g. the request's reference (required; logged)")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask")
	return cmd
}

// confirm asks question on w and reads a yes from r.
func confirm(r io.Reader, w io.Writer, question string) bool {
	fmt.Fprint(w, question)
	line, _ := bufio.NewReader(r).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}
