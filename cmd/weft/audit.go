package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/auditor"
)

// exitTampered is weft audit's exit code when evidence does not verify.
const exitTampered = 4

func newAuditCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The tamper-evident audit trail: keys and evidence bundles",
		Long: `audit works with weft's audit trail (docs/audit.md): every stored record is a
leaf of a Merkle log per topic-partition, whose checkpoints weft signs.
Exit codes: 0 verified, 4 tampered (the evidence was checked and does not
hold), 1 could not verify.`,
	}
	cmd.AddCommand(newAuditKeyCmd(g), newAuditVerifyCmd(g), newAuditVerifyBundleCmd(g), newAuditExportCmd(g), newAuditEraseCmd(g))
	return cmd
}

// AuditKeyReport is the answer of `weft audit key`.
type AuditKeyReport struct {
	Name          string `json:"name"`
	VerifierKey   string `json:"verifier_key"`
	SignerKeyFile string `json:"signer_key_file,omitempty"`
}

func newAuditKeyCmd(g *globalFlags) *cobra.Command {
	var generate bool
	var name, out string
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Print the public verifier key of the signing key, or generate a key",
		Long: `key prints the public verifier key of the configured checkpoint signing key
(audit.signing_key_file, or the variable audit.signing_key_env names): hand
it to auditors apart from any bundle. With --generate it makes a new Ed25519
key, writes the secret signer key to --out (mode 0600, never over an
existing file) and prints its verifier key.`,
		Example: "  weft audit key\n  weft audit key --generate --name weft-prod --out /etc/weft/audit-signing.key",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "text" && g.output != "json" {
				return usageError{fmt.Errorf("--output %q: want text or json", g.output)}
			}
			if generate {
				if out == "" {
					return usageError{errors.New("--generate needs --out FILE: the signer key is a secret, never printed")}
				}
				skey, vkey, err := auditor.GenerateKey(name)
				if err != nil {
					return usageError{err}
				}
				if err := writeNewSecret(out, skey+"\n"); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Signer key written to %s; set audit.signing_key_file to it.\n", out)
				return g.emit(cmd.OutOrStdout(), AuditKeyReport{Name: name, VerifierKey: vkey, SignerKeyFile: out},
					func(w io.Writer) { fmt.Fprintln(w, vkey) })
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			s, err := cfg.Audit.LoadSigner()
			if err != nil {
				return err
			}
			if s == nil {
				return fmt.Errorf("no signing key configured (audit.signing_key_file, or $%s): checkpoints are unsigned; make one with `weft audit key --generate --out FILE`", cfg.Audit.SigningKeyEnv)
			}
			return g.emit(cmd.OutOrStdout(), AuditKeyReport{Name: s.Name(), VerifierKey: s.VerifierKey()},
				func(w io.Writer) { fmt.Fprintln(w, s.VerifierKey()) })
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&generate, "generate", false, "generate a new key pair")
	fl.StringVar(&name, "name", "weft", "the new key's name, shown in its signature lines (no spaces or '+')")
	fl.StringVar(&out, "out", "", "with --generate: the file to write the secret signer key to")
	return cmd
}

// writeNewSecret writes a file only the owner can read, refusing to
// replace one.
func writeNewSecret(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write signer key: %w", err)
	}
	if _, err := f.WriteString(content); err != nil {
		_ = f.Close()
		return fmt.Errorf("write signer key: %w", err)
	}
	return f.Close()
}

// BundleVerdict is the answer of `weft audit verify-bundle -o json`.
type BundleVerdict struct {
	// Verdict is verified, tampered or unverified.
	Verdict string          `json:"verdict"`
	Error   string          `json:"error,omitempty"`
	Report  *auditor.Report `json:"report,omitempty"`
}

func newAuditVerifyBundleCmd(g *globalFlags) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "verify-bundle FILE",
		Short: "Verify an evidence bundle offline, with the public verifier key",
		Long: `verify-bundle checks an evidence bundle (weft audit export) with nothing but
the file and the verifier key — no ClickHouse, no Kafka: the checkpoints'
signatures, and for every event its stored row against its leaf (with its
salt), the leaf's inclusion in its partition's log under a signed checkpoint,
and every operator action likewise. It prints what the bundle proves.
--key is the verifier key (name+hash+key, from weft audit key) or a file
holding it. Exit 0 verified, 4 tampered, 1 could not verify (no key, the
wrong key, an unreadable file).`,
		Example: "  weft audit verify-bundle ord-1.zip --key weft+1a2b3c4d+AXx…\n  weft audit verify-bundle ord-1.zip --key weft.vkey -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.output != "text" && g.output != "json" {
				return usageError{fmt.Errorf("--output %q: want text or json", g.output)}
			}
			vkey, err := readVerifierKey(key)
			if err != nil {
				return usageError{err}
			}
			rep, verr := verifyBundleFile(args[0], vkey)
			v := BundleVerdict{Verdict: "verified"}
			switch {
			case errors.Is(verr, auditor.ErrTampered):
				v.Verdict, v.Error = "tampered", verr.Error()
				verr = codeError{verr, exitTampered}
			case verr != nil:
				v.Verdict, v.Error = "unverified", verr.Error()
			case !rep.Authenticated:
				v.Verdict = "unverified"
				verr = errors.New("no --key: the bundle is consistent, but nothing is authenticated")
			}
			if verr == nil || rep.Format != "" {
				v.Report = &rep
			}
			if err := g.emit(cmd.OutOrStdout(), v, func(w io.Writer) { printBundleVerdict(w, v) }); err != nil {
				return err
			}
			return verr
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the verifier key, or a file holding it")
	return cmd
}

// readVerifierKey takes a key or the name of a file holding one.
func readVerifierKey(key string) (string, error) {
	if key == "" {
		return "", nil
	}
	if _, err := auditor.NewVerifier(key); err == nil {
		return key, nil
	}
	b, err := os.ReadFile(key)
	if err != nil {
		return "", fmt.Errorf("--key %q is neither a verifier key nor a readable file", key)
	}
	k := strings.TrimSpace(string(b))
	if _, err := auditor.NewVerifier(k); err != nil {
		return "", fmt.Errorf("--key %s: %w", key, err)
	}
	return k, nil
}

func verifyBundleFile(path, vkey string) (auditor.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return auditor.Report{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return auditor.Report{}, err
	}
	b, err := auditor.ReadBundle(f, st.Size())
	if err != nil {
		return auditor.Report{}, err
	}
	return auditor.VerifyBundle(b, vkey)
}

func printBundleVerdict(w io.Writer, v BundleVerdict) {
	switch v.Verdict {
	case "tampered":
		fmt.Fprintln(w, "TAMPERED:", v.Error)
		return
	case "unverified":
		if v.Report == nil {
			fmt.Fprintln(w, "NOT VERIFIED:", v.Error)
			return
		}
		fmt.Fprintln(w, "NOT VERIFIED:", v.Report.Summary())
	default:
		fmt.Fprintf(w, "VERIFIED with %s: %s\n", v.Report.VerifierKey, v.Report.Summary())
	}
	r := v.Report
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nLOG\tSIZE\tROOT\tSIGNED")
	for _, c := range r.Checkpoints {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%v\n", c.Origin, c.Size, c.Root, c.Signed)
	}
	fmt.Fprintln(tw, "\nEVENT\tLEAF\tTIMESTAMP\tSTATUS")
	for _, e := range r.Events {
		status := e.Status
		if e.Erasure != nil {
			status = fmt.Sprintf("erased by action %d (%s, %s: %q)", e.Erasure.Action, e.Erasure.Actor, e.Erasure.Time.Time().Format("2006-01-02 15:04"), e.Erasure.Reason)
		} else if t := e.Row.Columns["event_type"]; t != "" {
			status += " " + t
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", e.Position, e.LeafIndex, e.Timestamp.Time().Format("2006-01-02 15:04:05.000"), status)
	}
	if len(r.Actions) > 0 {
		fmt.Fprintln(tw, "\nACTION\tTIME\tWHO\tFROM\tWHAT\tOUTCOME")
		for i, a := range r.Actions {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s %s\t%s\n", i, a.Time.Time().Format("2006-01-02 15:04:05"), a.Actor, a.Origin, a.Verb, a.Resource, a.Outcome)
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nClaimed by the exporter (not signed): created %s, query %q, weft %s, mask policy %q.\n",
		r.Claims.CreatedAt.Format("2006-01-02 15:04:05Z07:00"), r.Claims.Query, r.Claims.WeftVersion, r.Claims.MaskPolicy)
}
