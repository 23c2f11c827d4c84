package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/weft-sh/weft/internal/auth"
)

// devTokens keeps `weft dev`'s API authenticated: one token per role,
// generated on first use into dataDir/auth/<role>.token (0600) and reused
// by later runs, configured by their hashes as dev-<role>. It returns the
// tokens by role, for the banner.
func devTokens(cfg *Config, dataDir string) (map[auth.Role]string, error) {
	dir := filepath.Join(dataDir, "auth")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth dir: %w", err)
	}
	tokens := map[auth.Role]string{}
	cfg.HTTP.Auth.Tokens = nil
	for _, role := range auth.Roles {
		file := filepath.Join(dir, string(role)+".token")
		b, err := os.ReadFile(file)
		tok := strings.TrimSpace(string(b))
		switch {
		case err == nil && auth.ValidToken(tok):
		case err == nil || errors.Is(err, os.ErrNotExist):
			if tok, _, err = auth.GenerateToken(); err != nil {
				return nil, err
			}
			if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
				return nil, fmt.Errorf("dev token: %w", err)
			}
		default:
			return nil, fmt.Errorf("dev token: %w", err)
		}
		tokens[role] = tok
		cfg.HTTP.Auth.Tokens = append(cfg.HTTP.Auth.Tokens, auth.Token{Name: "dev-" + string(role), Roles: []auth.Role{role}, Hash: auth.HashToken(tok)})
	}
	return tokens, cfg.HTTP.Auth.Validate()
}

// tokensNote lists the dev tokens for the banner, as Jupyter prints its
// token URL.
func tokensNote(tokens map[auth.Role]string, dataDir, self string) string {
	can := map[auth.Role]string{auth.Viewer: "reads", auth.Operator: "reads, acknowledges findings, replay jobs", auth.Auditor: "reads, audit routes"}
	var b strings.Builder
	for i, role := range auth.Roles {
		label := ""
		if i == 0 {
			label = "API tokens:"
		}
		fmt.Fprintf(&b, "  %-18s%-9s %s  (%s)\n", label, role, tokens[role], can[role])
	}
	fmt.Fprintf(&b, "  %-18sin %s; more: %s auth token --name NAME --role ROLE\n", "", filepath.Join(dataDir, "auth"), self)
	return b.String()
}
