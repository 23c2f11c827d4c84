package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
)

// AuditVerifyVerdict is the answer of `weft audit verify -o json`.
type AuditVerifyVerdict struct {
	// Verdict is verified, tampered or unverified.
	Verdict string `json:"verdict"`
	Error   string `json:"error,omitempty"`
	collector.AuditVerifyReport
}

func newAuditVerifyCmd(g *globalFlags) *cobra.Command {
	var key, topic string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit logs against their checkpoints, and every stored row against its leaf",
		Long: `verify rebuilds every topic-partition's Merkle log from audit_leaves and checks
that its leaves are dense and their offsets contiguous, that every checkpoint
(in ClickHouse and in audit.checkpoint.dir) has a valid signature and the
root of the log at its size, and that every events and quarantine row
recomputes to its leaf's C_stored. It names each problem with its
topic/partition/offset and order id: changed, missing, extra, duplicated or
reordered row; broken log; rewritten or missing checkpoint. Erased rows are
not checked yet. --key is the verifier key (or a file holding it); without
it the configured signing key's verifier is used, and without either the
checkpoints are not authenticated. Exit 0 verified, 4 tampering or loss,
1 could not verify.`,
		Example: "  weft audit verify\n  weft audit verify --topic orders -o json --key weft.vkey",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			vkey, err := readVerifierKey(key)
			if err != nil {
				return usageError{err}
			}
			if vkey == "" {
				s, err := cfg.Audit.LoadSigner()
				if err != nil {
					return err
				}
				if s != nil {
					vkey = s.VerifierKey()
				}
			}
			var verifier *auditor.Verifier
			if vkey != "" {
				if verifier, err = auditor.NewVerifier(vkey); err != nil {
					return usageError{err}
				}
			}
			store, err := openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			opts := collector.AuditVerify{ClusterID: cfg.Audit.ClusterID, Topic: topic, Verifier: verifier,
				CheckpointDir: cfg.Audit.Checkpoint.Dir}
			var bar *progressbar.ProgressBar
			if f, ok := cmd.ErrOrStderr().(*os.File); ok && g.output == "text" && isatty.IsTerminal(f.Fd()) {
				bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription("verifying leaves"),
					progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSpinnerType(14),
					progressbar.OptionOnCompletion(func() { fmt.Fprintln(f) }))
				opts.Progress = func(n uint64) { _ = bar.Set64(int64(n)) }
			}
			rep, verr := collector.VerifyAudit(cmd.Context(), store, opts)
			if bar != nil {
				_ = bar.Finish()
			}
			v := AuditVerifyVerdict{Verdict: "verified", AuditVerifyReport: rep}
			switch {
			case verr != nil:
				v.Verdict, v.Error = "unverified", verr.Error()
			case len(rep.Findings) > 0:
				v.Verdict = "tampered"
				verr = codeError{fmt.Errorf("%d findings", len(rep.Findings)), exitTampered}
			}
			if err := g.emit(cmd.OutOrStdout(), v, func(w io.Writer) { printAuditVerify(w, v) }); err != nil {
				return err
			}
			return verr
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the verifier key, or a file holding it (default: the configured signing key's)")
	cmd.Flags().StringVar(&topic, "topic", "", "verify only this topic's logs")
	return cmd
}

func printAuditVerify(w io.Writer, v AuditVerifyVerdict) {
	for _, f := range v.Findings {
		fmt.Fprintln(w, f)
	}
	var leaves, rows, before, after, erased uint64
	for _, l := range v.Logs {
		leaves, rows, before, after, erased = leaves+l.Leaves, rows+l.Rows, before+l.Before, after+l.After, erased+l.Erased
	}
	summary := fmt.Sprintf("%d logs, %d leaves, %d rows", len(v.Logs), leaves, rows)
	if before+after > 0 {
		summary += fmt.Sprintf(" (%d rows outside the logs: %d before their first leaf, %d after their last)", before+after, before, after)
	}
	if erased > 0 {
		summary += fmt.Sprintf(", %d erased rows not checked", erased)
	}
	auth := "checkpoints verified with " + v.VerifierKey
	if !v.Authenticated {
		auth = "checkpoints NOT AUTHENTICATED (no verifier key)"
	}
	switch v.Verdict {
	case "unverified":
		fmt.Fprintln(w, "NOT VERIFIED:", v.Error)
	case "tampered":
		fmt.Fprintf(w, "TAMPERED: %d findings in %s; %s\n", len(v.Findings), summary, auth)
	default:
		fmt.Fprintf(w, "VERIFIED: %s; %s\n", summary, auth)
	}
}
