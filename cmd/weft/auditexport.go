package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/chstore"
)

// AuditExportReport is the answer of `weft audit export`.
type AuditExportReport struct {
	File    string `json:"file"`
	OrderID string `json:"order_id"`
	Bytes   int64  `json:"bytes"`
	Events  int    `json:"events"`
	Erased  int    `json:"erased"`
	Actions int    `json:"actions"`
	// Logs counts the logs the proofs reach (partitions' and the actions log).
	Logs int `json:"logs"`
	// Action is the export's own index in the operator-actions log.
	Action uint64 `json:"action"`
	// VerifierKey verifies the bundle's checkpoints; empty when weft signs
	// none (then the bundle cannot be authenticated).
	VerifierKey string `json:"verifier_key,omitempty"`
}

func newAuditExportCmd(g *globalFlags) *cobra.Command {
	var orderID, out string
	var force bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write an order's evidence bundle: its events, leaves, proofs, signed checkpoints and operator actions",
		Long: `export writes one zip file (docs/audit.md, "Evidence bundle") with an order's
stored events — each row with its salt, its leaf and an inclusion proof to
the newest signed checkpoint of its partition's log — and the operator
actions on it (an erased event's erase action among them), each with its
proof in the actions log. Anyone holding the file and the verifier key
checks it with weft audit verify-bundle, offline.

Every record is checked on the way: an export never holds evidence that
would not verify. A row that does not match its leaf, a salt gone without
an erasure, a checkpoint or log that does not hold refuse the export (run
weft audit verify to see every finding), exit 4. Records no checkpoint
covers yet (the tap checkpoints every audit.checkpoint.every, and when it
stops) refuse it too, counted: retry after the next checkpoint. The export
itself is logged in the operator-actions log (verb export, the file and
the records exported). --out is never replaced unless --force. Exit 0
written, 4 the stored evidence does not verify, 1 could not export.`,
		Example: "  weft audit export --order ORD-1042 --out ORD-1042.zip\n  weft audit verify-bundle ORD-1042.zip --key weft+1a2b3c4d+AXx…",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if orderID == "" || out == "" {
				return usageError{errors.New("--order and --out are required")}
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			if !cfg.Audit.Enabled {
				return usageError{errors.New("export reads the audit trail and logs itself in its operator-actions log: set audit.enabled (and audit.cluster_id)")}
			}
			if out, err = filepath.Abs(out); err != nil {
				return err
			}
			if _, err := os.Lstat(out); err == nil && !force {
				return usageError{fmt.Errorf("--out %s exists: pass --force to replace it", out)}
			}
			signer, err := cfg.Audit.LoadSigner()
			if err != nil {
				return err
			}
			opts := collector.ExportOptions{ClusterID: cfg.Audit.ClusterID, OrderID: orderID, CreatedAt: time.Now(),
				WeftVersion: weftVersion(), MaskPolicy: cfg.Collector.Redaction.Policy() + " (as configured for this export)"}
			if signer != nil {
				if opts.Verifier, err = auditor.NewVerifier(signer.VerifierKey()); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: no signing key configured (audit.signing_key_file): if the checkpoints are unsigned, verify-bundle cannot authenticate this bundle")
			}
			store, err := openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			rep, err := exportOrder(cmd.Context(), cfg, store, opts, out, force)
			if err != nil {
				if errors.Is(err, auditor.ErrTampered) {
					return codeError{err, exitTampered}
				}
				return err
			}
			if signer != nil {
				rep.VerifierKey = signer.VerifierKey()
			}
			return g.emit(cmd.OutOrStdout(), rep, func(w io.Writer) { printAuditExport(w, rep) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&orderID, "order", "", "the order to export (required)")
	fl.StringVar(&out, "out", "", "the bundle file to write (required)")
	fl.BoolVar(&force, "force", false, "replace --out if it exists")
	return cmd
}

// exportOrder exports the order to out and logs the export: a failure is
// logged as one (a warning when that cannot be logged either). The file
// is written beside out first and put in place only once the export is
// logged, so no bundle leaves weft unlogged.
func exportOrder(ctx context.Context, cfg Config, store *chstore.Store, o collector.ExportOptions, out string, force bool) (AuditExportReport, error) {
	rep := AuditExportReport{File: out, OrderID: o.OrderID}
	actions, err := actionLog(cfg, store)
	if err != nil {
		return rep, err
	}
	actor, origin := cliActor()
	action := auditor.Action{Actor: actor, Origin: origin, Verb: "export", Resource: "order/" + o.OrderID}
	fail := func(err error) (AuditExportReport, error) {
		action.Outcome, action.Detail = auditor.OutcomeFailure, truncate(fmt.Sprintf("%s: %v", out, err), auditor.MaxDetailLen)
		action.Targets = nil
		if lerr := logAction(ctx, actions, action, o.OrderID); lerr != nil {
			err = errors.Join(err, lerr)
		}
		return rep, err
	}
	b, err := collector.ExportOrder(ctx, store, o)
	if err != nil {
		return fail(err)
	}
	logs := map[string]bool{}
	for _, e := range b.Manifest.Events {
		logs[auditor.LogOrigin(o.ClusterID, e.Topic, e.Partition)] = true
		action.Targets = append(action.Targets, auditor.Position{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset})
		if e.ErasedBy != nil {
			rep.Erased++
		}
	}
	rep.Events, rep.Actions, rep.Logs = len(b.Events), len(b.Actions), len(logs)
	if len(b.Actions) > 0 {
		rep.Logs++
	}
	tmp, size, err := writeBundleBeside(out, b)
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp) //nolint:errcheck // gone once placed
	rep.Bytes = size
	action.Outcome = auditor.OutcomeSuccess
	action.Detail = truncate(fmt.Sprintf("%s: %d events (%d erased), %d operator actions, %d bytes", out, rep.Events, rep.Erased, rep.Actions, size), auditor.MaxDetailLen)
	if rep.Action, err = actions.Record(ctx, action, o.OrderID); err != nil {
		return rep, fmt.Errorf("the export of order %s is not in the operator-actions log, so nothing was written: %w", o.OrderID, err)
	}
	if err := placeFile(tmp, out, force); err != nil {
		return fail(fmt.Errorf("logged as action #%d, but not written: %w", rep.Action, err))
	}
	return rep, nil
}

// writeBundleBeside writes b to a new temporary file in out's directory,
// synced, and returns its name and size.
func writeBundleBeside(out string, b auditor.Bundle) (string, int64, error) {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return "", 0, fmt.Errorf("write bundle: %w", err)
	}
	err = auditor.WriteBundle(f, b)
	if err == nil {
		err = f.Sync()
	}
	size, serr := f.Seek(0, io.SeekCurrent)
	if cerr := f.Close(); err == nil {
		err = errors.Join(serr, cerr)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", 0, fmt.Errorf("write bundle %s: %w", f.Name(), err)
	}
	return f.Name(), size, nil
}

// placeFile moves tmp to out: with force replacing out, else only if out
// does not exist (a link fails on an existing name, atomically).
func placeFile(tmp, out string, force bool) error {
	if force {
		return os.Rename(tmp, out)
	}
	if err := os.Link(tmp, out); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s appeared meanwhile: pass --force to replace it", out)
		}
		return err
	}
	return os.Remove(tmp)
}

func printAuditExport(w io.Writer, r AuditExportReport) {
	fmt.Fprintf(w, "Exported order %s to %s (%d bytes): %d events (%d erased) and %d operator actions, proven in %d logs; logged as operator action #%d.\n",
		r.OrderID, r.File, r.Bytes, r.Events, r.Erased, r.Actions, r.Logs, r.Action)
	if r.VerifierKey != "" {
		fmt.Fprintf(w, "Verify it anywhere with: weft audit verify-bundle %s --key %s\n", r.File, r.VerifierKey)
	}
}

// weftVersion is this build's version, as the Go toolchain recorded it:
// the module version, and the commit (with "+dirty" for uncommitted
// changes) when built from a checkout.
func weftVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev != "" {
		v += " " + rev + dirty
	}
	return v
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
