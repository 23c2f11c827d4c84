package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/internal/auth"
)

func newAuthCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Who may call the HTTP API: bearer tokens (docs/security.md)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newAuthTokenCmd(g))
	return cmd
}

// TokenReport is the answer of `weft auth token`: the token, once, and
// the entry to configure.
type TokenReport struct {
	Name  string      `json:"name"`
	Roles []auth.Role `json:"roles"`
	Hash  string      `json:"hash"`
	Token string      `json:"token"`
}

func newAuthTokenCmd(g *globalFlags) *cobra.Command {
	var name string
	var roles []string
	cmd := &cobra.Command{
		Use:   "token --name NAME --role ROLE [--role ROLE]",
		Short: "Generate a bearer token for the API: shown once, configured as its hash",
		Long: `token generates a bearer token for weft's HTTP API — "weft_" and 256 random
bits — prints it once, and prints the entry to add to http.auth.tokens (or
to the list in http.auth.tokens_file): its name, its roles and the SHA-256
of the token. weft keeps only the hash, so a lost token cannot be shown
again: generate another and remove the old entry.

NAME is who the token is: what acknowledgements and the operator-actions
log record for its requests. Roles: viewer (every GET under /api/),
operator (viewer, and acknowledging findings, and /debug/pprof/),
auditor (viewer, and the audit routes).`,
		Example: "  weft auth token --name alice --role operator\n  weft auth token --name grafana --role viewer\n  weft auth token --name audit-2026 --role auditor -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := auth.Token{Name: name, Hash: auth.HashToken("")}
			for _, r := range roles {
				t.Roles = append(t.Roles, auth.Role(r))
			}
			if err := t.Validate(); err != nil {
				msg := strings.TrimPrefix(err.Error(), "invalid configuration: ")
				msg = strings.NewReplacer("name: ", "--name ", "roles: ", "--role: ").Replace(msg)
				for i := range t.Roles {
					msg = strings.ReplaceAll(msg, fmt.Sprintf("roles[%d]: ", i), "--role: ")
				}
				return usageError{fmt.Errorf("%s", msg)}
			}
			httpCfg := DefaultConfig().HTTP
			if g.configPath != "" {
				cfg, err := g.load()
				if err != nil {
					return err
				}
				httpCfg = cfg.HTTP
			}
			token, hash, err := auth.GenerateToken()
			if err != nil {
				return err
			}
			rep := TokenReport{Name: t.Name, Roles: t.Roles, Hash: hash, Token: token}
			return g.emit(cmd.OutOrStdout(), rep, func(w io.Writer) { printToken(w, rep, apiURL(httpCfg)) })
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "who the token is (required): letters, digits, '.', '_', '@', '-'")
	cmd.Flags().StringArrayVar(&roles, "role", nil, "a role it has: viewer, operator or auditor (repeat for more)")
	return cmd
}

func printToken(w io.Writer, rep TokenReport, base string) {
	roles := make([]string, len(rep.Roles))
	for i, r := range rep.Roles {
		roles[i] = string(r)
	}
	fmt.Fprintf(w, `Token for %s (roles: %s). It is shown only now: weft keeps only its hash.

  %s

Add this entry to http.auth.tokens in weft.yaml (or to the list in the
file http.auth.tokens_file names), then restart weft:

  - name: %s
    roles: [%s]
    hash: %s

Use it:
  curl -H "Authorization: Bearer %s" %s/api/v1/stuck
`, rep.Name, strings.Join(roles, ", "), rep.Token, rep.Name, strings.Join(roles, ", "), rep.Hash, rep.Token, base)
}

// apiURL is the base URL the HTTP server of c answers on.
func apiURL(c HTTPConfig) string {
	if c.TLS.Enabled() {
		return "https://" + c.Listen
	}
	return "http://" + c.Listen
}
