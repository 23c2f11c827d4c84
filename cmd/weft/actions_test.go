package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestOperatorActionsLogged: with the audit trail on, an acknowledgement
// from the CLI and one from the API, a refused acknowledgement and a
// verify run each become an entry of the operator-actions log — who,
// from where, what, the outcome — and weft audit verify checks that log.
func TestOperatorActionsLogged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := testenv.Store(t)
	dir := t.TempDir()
	skey, _, err := auditor.GenerateKey("weft-test")
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "signing.key")
	require.NoError(t, os.WriteFile(keyFile, []byte(skey+"\n"), 0o600))
	db := strings.TrimSuffix(store.Table("x"), ".x")
	cfgFile := writeFile(t, fmt.Sprintf("clickhouse:\n  addr: [%s]\n  database: %s\naudit:\n  enabled: true\n  cluster_id: c1\n  signing_key_file: %s\n  checkpoint:\n    dir: %s\n",
		strings.Join(testenv.ClickHouseAddr(t), ", "), db, keyFile, filepath.Join(dir, "checkpoints")))

	now := time.Now().UTC()
	for _, id := range []string{"f-cli", "f-api"} {
		require.NoError(t, store.InsertFindings(ctx, []chstore.FindingRow{{ID: id, Kind: consistency.KindStuck, OrderID: "ORD-" + id,
			Workflow: "bopis", Step: "picked", Since: now, Status: consistency.StatusOpen, Summary: "stuck", Evidence: "{}",
			FirstSeen: now, LastSeen: now}}, now))
	}

	t.Setenv("WEFT_USER", "alice")
	out, err := runCmd(t, "ack", "f-cli", "--reason", "known outage", "--config", cfgFile)
	require.NoError(t, err, out)
	_, err = runCmd(t, "ack", "no-such-finding", "--reason", "typo", "--config", cfgFile)
	require.Error(t, err)
	_, err = runCmd(t, "ack", "f-cli", "--by", "mallory", "--reason", "typo", "--config", cfgFile)
	require.ErrorContains(t, err, "unknown flag: --by", "who acknowledges is not a free-text flag")

	cfg, err := loadConfig(cfgFile)
	require.NoError(t, err)
	actions, err := actionLog(cfg, store)
	require.NoError(t, err)
	require.NotNil(t, actions)
	authn, tokens := testAuth(t, "bob", actions, nil, nil)
	srv := httptest.NewServer(newAPI(consistency.NewEngine(store, nil), store, nil, actions, authn, prometheus.NewRegistry(), zerolog.Nop(), false, nil, nil, nil))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/findings/f-api/ack", strings.NewReader(`{"reason":"on it"}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(withToken(req, tokens[auth.Operator]))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	_, err = runCmd(t, "audit", "erase", "--order", "ORD-f-cli", "--reason", "GDPR", "--config", cfgFile)
	require.ErrorContains(t, err, "pass --yes when not on a terminal")
	_, err = runCmd(t, "audit", "erase", "--order", "ORD-none", "--reason", "GDPR", "--yes", "--config", cfgFile)
	require.ErrorContains(t, err, "order ORD-none: no stored records")

	out, err = runCmd(t, "audit", "verify", "--config", cfgFile)
	require.NoError(t, err, out)
	assert.Contains(t, out, "VERIFIED")

	var got []string
	require.NoError(t, store.ActionRows(ctx, "", func(r chstore.ActionRow) error {
		got = append(got, fmt.Sprintf("%d %s %s %s %s %s", r.LeafIndex, r.Actor, strings.Fields(r.Origin)[0], r.Verb, r.Resource, r.Outcome))
		return nil
	}))
	assert.Equal(t, []string{
		"0 alice cli ack finding/f-cli success",
		"1 alice cli ack finding/no-such-finding failure",
		"2 bob-operator http ack finding/f-api success",
		"3 " + currentUser() + " cli verify logs success",
	}, got)
	var order []string
	require.NoError(t, store.ActionRows(ctx, "ORD-f-api", func(r chstore.ActionRow) error { order = append(order, r.Resource); return nil }))
	assert.Equal(t, []string{"finding/f-api"}, order, "an ack is filed under its finding's order")

	// The log verifies, and removing an action from it is found.
	rep, err := collector.VerifyAudit(ctx, store, collector.AuditVerify{ClusterID: "c1", CheckpointDir: filepath.Join(dir, "checkpoints")})
	require.NoError(t, err)
	assert.Empty(t, rep.Findings)
	testenv.Mutate(t, "ALTER TABLE "+store.Table("audit_actions")+" DELETE WHERE leaf_index = 1")
	out, err = runCmd(t, "audit", "verify", "--config", cfgFile)
	require.Error(t, err)
	assert.Contains(t, out, "broken-log actions #2")
}
