package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/auth/authtest"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// caller is one kind of API client: a bearer token or a JWT, or nothing.
type caller struct {
	name  string
	token string
	// roles it holds once authenticated; nil with authenticated false:
	// refused with 401 for reason.
	roles         []auth.Role
	authenticated bool
	reason        auth.Reason
}

// callers are one of every kind: a token per role, an OIDC user per role
// and one without roles, and each way of failing to authenticate.
func callers(t *testing.T, tokens map[auth.Role]string, iss *authtest.Issuer) []caller {
	now := time.Now()
	claims := func(user string, roles ...string) map[string]any { return iss.Claims(user, roles, now) }
	with := func(c map[string]any, k string, v any) map[string]any { c[k] = v; return c }
	unknown, _, err := auth.GenerateToken()
	require.NoError(t, err)
	cs := []caller{}
	for _, r := range auth.Roles {
		cs = append(cs,
			caller{name: "token " + string(r), token: tokens[r], roles: []auth.Role{r}, authenticated: true},
			caller{name: "oidc " + string(r), token: iss.Sign(t, claims("oidc-"+string(r), string(r))), roles: []auth.Role{r}, authenticated: true})
	}
	return append(cs,
		caller{name: "oidc without roles", token: iss.Sign(t, claims("oidc-nobody")), authenticated: true},
		caller{name: "no token", reason: auth.NoToken},
		caller{name: "unknown token", token: unknown, reason: auth.BadToken},
		caller{name: "expired", token: iss.Sign(t, with(claims("oidc-operator", "operator"), "exp", now.Add(-time.Minute).Unix())), reason: auth.Expired},
		caller{name: "forged signature", token: iss.Forge(t, claims("oidc-operator", "operator")), reason: auth.BadToken},
		caller{name: "wrong audience", token: iss.Sign(t, with(claims("oidc-operator", "operator"), "aud", "another-app")), reason: auth.WrongAudience},
		caller{name: "wrong issuer", token: iss.Sign(t, with(claims("oidc-operator", "operator"), "iss", "https://login.evil.example")), reason: auth.WrongIssuer},
	)
}

// allowed is docs/security.md's table: every role reads, operator and
// auditor add their own.
func allowed(roles []auth.Role, need auth.Role) bool {
	if need == auth.Viewer {
		return len(roles) > 0
	}
	return slices.Contains(roles, need)
}

// TestAPIAccessMatrix: every route × every kind of caller answers exactly
// the expected status, on the real ClickHouse: what a role may do answers
// as the route does (200, or 404 for an order that does not exist), a
// missing role 403, a failed authentication 401; /metrics, /healthz and
// /readyz answer everyone. Every refusal is counted by its reason.
func TestAPIAccessMatrix(t *testing.T) {
	ctx := context.Background()
	store := testenv.Store(t)
	now := time.Now().UTC()
	require.NoError(t, store.InsertFindings(ctx, []chstore.FindingRow{{ID: "f-matrix", Kind: consistency.KindStuck, OrderID: "ORD-matrix",
		Workflow: "bopis", Step: "picked", Since: now, Status: consistency.StatusOpen, Summary: "stuck", Evidence: "{}",
		FirstSeen: now, LastSeen: now}}, now))
	cfg := DefaultConfig()
	col, err := collector.New(cfg.Collector.Config, cfg.Kafka, store, collector.Settings{Logger: zerolog.Nop(), Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	iss := authtest.NewIssuer(t, "weft-api")
	reg := prometheus.NewRegistry()
	authn, tokens := testAuth(t, "matrix", nil, reg, func(c *auth.Config) { c.OIDC.Issuer, c.OIDC.Audience = iss.URL, "weft-api" })
	h := newAPI(consistency.NewEngine(store, cfg.Consistency.AllWorkflows()), store, col, nil, authn, reg, zerolog.Nop(), true, nil, nil, nil)

	type route struct {
		method, path string
		need         auth.Role // "" open to all
		ok           int       // the status of a caller allowed in
	}
	routes := []route{
		{"GET", "/api/v1/stuck", auth.Viewer, 200},
		{"GET", "/api/v1/findings?status=all", auth.Viewer, 200},
		{"GET", "/api/v1/orders/ORD-none", auth.Viewer, 404},
		{"GET", "/api/v1/events?order=ORD-matrix", auth.Viewer, 200},
		{"POST", "/api/v1/findings/f-matrix/ack", auth.Operator, 200},
		{"GET", "/debug/pprof/cmdline", auth.Operator, 200},
		// Replay is off here: an operator is told so, nothing else acts.
		{"POST", "/api/v1/replay/jobs", auth.Operator, 409},
		{"GET", "/api/v1/replay/jobs/rpl-0000000000000000", auth.Viewer, 404},
		{"POST", "/api/v1/replay/jobs/rpl-0000000000000000/confirm", auth.Operator, 409},
		{"POST", "/api/v1/replay/jobs/rpl-0000000000000000/cancel", auth.Operator, 404},
		{"GET", "/api/v2/nothing", "", 404}, // any identity, even without roles
		{"GET", "/metrics", "", 200},
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 503}, // the collector is not started: not ready, but answered
	}
	refused := map[auth.Reason]float64{}
	for _, c := range callers(t, tokens, iss) {
		t.Run(c.name, func(t *testing.T) {
			for _, rt := range routes {
				open := rt.path == "/metrics" || rt.path == "/healthz" || rt.path == "/readyz"
				want := rt.ok
				switch {
				case open:
				case !c.authenticated:
					want = http.StatusUnauthorized
					refused[c.reason]++
				case rt.need != "" && !allowed(c.roles, rt.need):
					want = http.StatusForbidden
					refused[auth.ForbiddenRole]++
				}
				var body *strings.Reader
				if rt.method == "POST" {
					body = strings.NewReader(`{"reason":"matrix"}`)
				} else {
					body = strings.NewReader("")
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, withToken(httptest.NewRequest(rt.method, rt.path, body), c.token))
				require.Equal(t, want, rec.Code, "%s %s: %s", rt.method, rt.path, rec.Body)
				if want == http.StatusUnauthorized || want == http.StatusForbidden {
					var e struct{ Error, Reason string }
					require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
					wantReason := c.reason
					if want == http.StatusForbidden {
						wantReason = auth.ForbiddenRole
					}
					assert.Equal(t, string(wantReason), e.Reason)
				}
			}
		})
	}
	for _, r := range auth.Reasons {
		assert.Equal(t, refused[r], testutil.ToFloat64(authn.Refused(r)), "weft_http_requests_refused_total{reason=%q}", r)
	}
	fs, err := consistency.NewEngine(store, nil).Findings(ctx, consistency.FindingFilter{ID: "f-matrix"})
	require.NoError(t, err)
	require.Len(t, fs, 1)
	assert.Equal(t, consistency.StatusAcknowledged, fs[0].Status)
	assert.Contains(t, []string{"matrix-operator", "oidc-operator"}, fs[0].AckBy, "acknowledged by an authenticated operator")
}

// auditedConfig writes a config with the audit trail on in store's
// database, and returns it loaded and the operator-actions log.
func auditedConfig(t *testing.T, store *chstore.Store) (*collector.ActionLog, string) {
	t.Helper()
	dir := t.TempDir()
	skey, _, err := auditor.GenerateKey("weft-test")
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "signing.key")
	require.NoError(t, os.WriteFile(keyFile, []byte(skey+"\n"), 0o600))
	db := strings.TrimSuffix(store.Table("x"), ".x")
	cfgFile := writeFile(t, fmt.Sprintf("clickhouse:\n  addr: [%s]\n  database: %s\naudit:\n  enabled: true\n  cluster_id: c1\n  signing_key_file: %s\n  checkpoint:\n    dir: %s\n",
		strings.Join(testenv.ClickHouseAddr(t), ", "), db, keyFile, filepath.Join(dir, "checkpoints")))
	cfg, err := loadConfig(cfgFile)
	require.NoError(t, err)
	actions, err := actionLog(cfg, store)
	require.NoError(t, err)
	require.NotNil(t, actions)
	return actions, filepath.Join(dir, "checkpoints")
}

// TestRefusedAckWritesNothing: with the audit trail on, acknowledgements
// refused for want of an identity (401) or of the role (403), or sent
// with a free-text "by", leave the finding open and write no ack; a 403
// of an authenticated identity is logged as a denied action, a 401 is
// not logged at all; then an operator's ack goes through under its name,
// and the log, denied actions included, verifies.
func TestRefusedAckWritesNothing(t *testing.T) {
	ctx := context.Background()
	store := testenv.Store(t)
	now := time.Now().UTC()
	require.NoError(t, store.InsertFindings(ctx, []chstore.FindingRow{{ID: "f-refused", Kind: consistency.KindStuck, OrderID: "ORD-refused",
		Workflow: "bopis", Step: "picked", Since: now, Status: consistency.StatusOpen, Summary: "stuck", Evidence: "{}",
		FirstSeen: now, LastSeen: now}}, now))
	actions, checkpoints := auditedConfig(t, store)
	iss := authtest.NewIssuer(t, "weft-api")
	reg := prometheus.NewRegistry()
	authn, tokens := testAuth(t, "carol", actions, reg, func(c *auth.Config) { c.OIDC.Issuer, c.OIDC.Audience = iss.URL, "weft-api" })
	engine := consistency.NewEngine(store, nil)
	h := newAPI(engine, store, nil, actions, authn, reg, zerolog.Nop(), false, nil, nil, nil)
	ack := func(token, body string) int {
		req := withToken(httptest.NewRequest("POST", "/api/v1/findings/f-refused/ack", strings.NewReader(body)), token)
		req.RemoteAddr = "198.51.100.7:40000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	expired := iss.Claims("eve", []string{"operator"}, now.Add(-2*time.Hour))
	bad, _, err := auth.GenerateToken()
	require.NoError(t, err)
	assert.Equal(t, 401, ack("", `{"reason":"x"}`))
	assert.Equal(t, 401, ack(bad, `{"reason":"x"}`))
	assert.Equal(t, 401, ack(iss.Sign(t, expired), `{"reason":"x"}`))
	assert.Equal(t, 403, ack(tokens[auth.Viewer], `{"reason":"x"}`))
	assert.Equal(t, 403, ack(tokens[auth.Auditor], `{"reason":"x"}`))
	assert.Equal(t, 400, ack(tokens[auth.Operator], `{"by":"mallory","reason":"x"}`), "who acknowledges is not the body's to say")

	status := func() (string, string) {
		fs, err := engine.Findings(ctx, consistency.FindingFilter{ID: "f-refused"})
		require.NoError(t, err)
		require.Len(t, fs, 1)
		return fs[0].Status, fs[0].AckBy
	}
	st, by := status()
	assert.Equal(t, consistency.StatusOpen, st, "no refused request acknowledged")
	assert.Empty(t, by)
	logged := func() []string {
		var got []string
		require.NoError(t, store.ActionRows(ctx, "", func(r chstore.ActionRow) error {
			got = append(got, fmt.Sprintf("%s|%s|%s|%s|%s|%s", r.Actor, r.Origin, r.Verb, r.Resource, r.Outcome, r.Detail))
			return nil
		}))
		return got
	}
	assert.Equal(t, []string{
		"carol-viewer|http 198.51.100.7:40000|ack|finding/f-refused|denied|POST /api/v1/findings/f-refused/ack needs the operator role; carol-viewer has viewer",
		"carol-auditor|http 198.51.100.7:40000|ack|finding/f-refused|denied|POST /api/v1/findings/f-refused/ack needs the operator role; carol-auditor has auditor",
	}, logged(), "the 403s only: no ack, and nothing from unauthenticated callers")
	for r, n := range map[auth.Reason]float64{auth.NoToken: 1, auth.BadToken: 1, auth.Expired: 1, auth.ForbiddenRole: 2, auth.WrongAudience: 0} {
		assert.Equal(t, n, testutil.ToFloat64(authn.Refused(r)), string(r))
	}

	assert.Equal(t, 200, ack(tokens[auth.Operator], `{"reason":"on it"}`))
	st, by = status()
	assert.Equal(t, consistency.StatusAcknowledged, st)
	assert.Equal(t, "carol-operator", by, "recorded under the authenticated identity")
	got := logged()
	require.Len(t, got, 3)
	assert.Equal(t, "carol-operator|http 198.51.100.7:40000|ack|finding/f-refused|success|on it", got[2])

	rep, err := collector.VerifyAudit(ctx, store, collector.AuditVerify{ClusterID: "c1", CheckpointDir: checkpoints})
	require.NoError(t, err)
	assert.Empty(t, rep.Findings, "the log with its denied actions verifies")
}
