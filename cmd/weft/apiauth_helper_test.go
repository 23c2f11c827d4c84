package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/auth"
)

// testAuth is an authenticator with one bearer token per role, named
// <prefix>-<role>, recording 403s into actions when it is not nil.
func testAuth(t *testing.T, prefix string, actions *collector.ActionLog, reg prometheus.Registerer, edit func(*auth.Config)) (*auth.Authenticator, map[auth.Role]string) {
	t.Helper()
	cfg := auth.Default()
	tokens := map[auth.Role]string{}
	for _, r := range auth.Roles {
		tok, hash, err := auth.GenerateToken()
		require.NoError(t, err)
		tokens[r] = tok
		cfg.Tokens = append(cfg.Tokens, auth.Token{Name: prefix + "-" + string(r), Roles: []auth.Role{r}, Hash: hash})
	}
	if edit != nil {
		edit(&cfg)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a, err := startAuth(context.Background(), cfg, actions, reg, zerolog.Nop())
	require.NoError(t, err)
	return a, tokens
}

// withToken sets req's bearer token and returns req.
func withToken(req *http.Request, token string) *http.Request {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}
