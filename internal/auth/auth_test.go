package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/auth/authtest"
)

// fixture is an authenticator with a token per role and a test issuer.
type fixture struct {
	a       *Authenticator
	reg     *prometheus.Registry
	iss     *authtest.Issuer
	now     time.Time
	tokens  map[Role]string
	denied  []string
	logs    *bytes.Buffer
	handler http.Handler
}

func newFixture(t testing.TB, edit func(*Config)) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), iss: authtest.NewIssuer(t, "weft-api"), tokens: map[Role]string{},
		now: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), logs: &bytes.Buffer{}}
	cfg := Default()
	for _, r := range Roles {
		tok, hash, err := GenerateToken()
		require.NoError(t, err)
		f.tokens[r] = tok
		cfg.Tokens = append(cfg.Tokens, Token{Name: "tok-" + string(r), Roles: []Role{r}, Hash: hash})
	}
	cfg.OIDC.Issuer, cfg.OIDC.Audience = f.iss.URL, "weft-api"
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg, Settings{Logger: zerolog.New(f.logs), Registerer: f.reg, Now: func() time.Time { return f.now },
		OnDenied: func(r *http.Request, id Identity, need Role) {
			f.denied = append(f.denied, id.Name+" "+r.Method+" "+r.URL.Path+" needs "+string(need))
		}})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	f.a = a
	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := IdentityFrom(r.Context())
		_, _ = w.Write([]byte(id.Name))
	})
	mux.Handle("GET /read", a.Require(Viewer, ok))
	mux.Handle("POST /act", a.Require(Operator, ok))
	mux.Handle("POST /audit", a.Require(Auditor, ok))
	f.handler = mux
	return f
}

// do sends method path with the Authorization header auth ("" none).
func (f *fixture) do(method, path, auth string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec
}

// TestRolesAndRefusals: each kind of caller against a route per role
// gets exactly the expected status, reason and identity; refusals are
// counted by reason, and only 403s reach OnDenied.
func TestRolesAndRefusals(t *testing.T) {
	f := newFixture(t, nil)
	iss := f.iss
	claims := func(user string, roles ...string) map[string]any { return iss.Claims(user, roles, f.now) }
	with := func(c map[string]any, k string, v any) map[string]any { c[k] = v; return c }
	bearer := func(s string) string { return "Bearer " + s }
	unknown, _, _ := GenerateToken()

	type want struct {
		read, act, audit int
		reason           Reason // of every refusal
		name             string // of every success
	}
	for _, tc := range []struct {
		caller string
		auth   string
		want   want
	}{
		{"token viewer", bearer(f.tokens[Viewer]), want{200, 403, 403, ForbiddenRole, "tok-viewer"}},
		{"token operator", bearer(f.tokens[Operator]), want{200, 200, 403, ForbiddenRole, "tok-operator"}},
		{"token auditor", bearer(f.tokens[Auditor]), want{200, 403, 200, ForbiddenRole, "tok-auditor"}},
		{"token scheme in lower case", "bearer " + f.tokens[Operator], want{200, 200, 403, ForbiddenRole, "tok-operator"}},
		{"oidc viewer", bearer(iss.Sign(t, claims("vera", "viewer"))), want{200, 403, 403, ForbiddenRole, "vera"}},
		{"oidc operator", bearer(iss.Sign(t, claims("otto", "operator"))), want{200, 200, 403, ForbiddenRole, "otto"}},
		{"oidc auditor", bearer(iss.Sign(t, claims("ada", "auditor"))), want{200, 403, 200, ForbiddenRole, "ada"}},
		{"oidc operator and auditor", bearer(iss.Sign(t, claims("both", "operator", "auditor"))), want{200, 200, 200, "", "both"}},
		{"oidc without roles", bearer(iss.Sign(t, claims("nobody"))), want{403, 403, 403, ForbiddenRole, ""}},
		{"oidc unknown role", bearer(iss.Sign(t, claims("root", "admin"))), want{403, 403, 403, ForbiddenRole, ""}},
		{"no token", "", want{401, 401, 401, NoToken, ""}},
		{"basic auth", "Basic YWxpY2U6c2VjcmV0", want{401, 401, 401, BadToken, ""}},
		{"empty bearer", "Bearer ", want{401, 401, 401, BadToken, ""}},
		{"unknown token", bearer(unknown), want{401, 401, 401, BadToken, ""}},
		{"a token's hash", bearer(HashToken(f.tokens[Operator])), want{401, 401, 401, BadToken, ""}},
		{"not a jwt", bearer("abc.def.ghi"), want{401, 401, 401, BadToken, ""}},
		{"expired", bearer(iss.Sign(t, with(claims("otto", "operator"), "exp", f.now.Add(-time.Minute).Unix()))), want{401, 401, 401, Expired, ""}},
		{"forged signature", bearer(iss.Forge(t, claims("otto", "operator"))), want{401, 401, 401, BadToken, ""}},
		{"wrong audience", bearer(iss.Sign(t, with(claims("otto", "operator"), "aud", "other-app"))), want{401, 401, 401, WrongAudience, ""}},
		{"wrong issuer", bearer(iss.Sign(t, with(claims("otto", "operator"), "iss", "https://evil.example.com"))), want{401, 401, 401, WrongIssuer, ""}},
		{"not yet valid", bearer(iss.Sign(t, with(claims("otto", "operator"), "nbf", f.now.Add(time.Hour).Unix()))), want{401, 401, 401, BadToken, ""}},
	} {
		t.Run(tc.caller, func(t *testing.T) {
			for _, rt := range []struct {
				method, path string
				code         int
			}{{"GET", "/read", tc.want.read}, {"POST", "/act", tc.want.act}, {"POST", "/audit", tc.want.audit}} {
				before := testutil.ToFloat64(f.a.refused.WithLabelValues(string(tc.want.reason)))
				rec := f.do(rt.method, rt.path, tc.auth)
				require.Equal(t, rt.code, rec.Code, "%s %s: %s", rt.method, rt.path, rec.Body)
				if rt.code == http.StatusOK {
					assert.Equal(t, tc.want.name, rec.Body.String())
					continue
				}
				var body struct{ Error, Reason string }
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
				assert.Equal(t, string(tc.want.reason), body.Reason)
				assert.NotEmpty(t, body.Error)
				assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `Bearer realm="weft"`)
				assert.Equal(t, before+1, testutil.ToFloat64(f.a.refused.WithLabelValues(string(tc.want.reason))), "counted")
			}
		})
	}
	assert.Contains(t, f.denied, "tok-viewer POST /act needs operator")
	assert.Contains(t, f.denied, "nobody GET /read needs viewer")
	n403 := 0
	for _, l := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(l, `"status":403`) {
			n403++
		}
	}
	assert.Equal(t, n403, len(f.denied), "OnDenied for every 403, and only for them")
	assert.Equal(t, float64(n403), testutil.ToFloat64(f.a.refused.WithLabelValues(string(ForbiddenRole))))
}

// A refusal is one warning naming the route, the remote address and the
// reason; the metric is registered with every reason at 0.
func TestRefusalLoggedAndCounted(t *testing.T) {
	f := newFixture(t, nil)
	req := httptest.NewRequest("POST", "/act", nil)
	req.RemoteAddr = "10.1.2.3:5555"
	req.Header.Set("Authorization", "Bearer "+f.tokens[Viewer])
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	require.Equal(t, http.StatusForbidden, rec.Code)
	const msg = "tok-viewer (roles: viewer) may not do this: it needs the operator role"
	assert.JSONEq(t, `{"error":"`+msg+`","reason":"forbidden_role"}`, rec.Body.String())
	var line map[string]any
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &line))
	assert.Equal(t, map[string]any{"level": "warn", "status": float64(403), "route": "POST /act", "remote": "10.1.2.3:5555",
		"reason": "forbidden_role", "error": msg, "identity": "tok-viewer", "method": "token",
		"message": "http request refused"}, line)

	n, err := testutil.GatherAndCount(f.reg, "weft_http_requests_refused_total")
	require.NoError(t, err)
	assert.Equal(t, len(Reasons), n, "every reason exported from the start")
}

// The clock is injected: a token valid now is expired two hours later.
func TestExpiryUsesTheClock(t *testing.T) {
	f := newFixture(t, nil)
	tok := "Bearer " + f.iss.Sign(t, f.iss.Claims("otto", []string{"operator"}, f.now))
	require.Equal(t, http.StatusOK, f.do("GET", "/read", tok).Code)
	f.now = f.now.Add(2 * time.Hour)
	rec := f.do("GET", "/read", tok)
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Contains(t, rec.Body.String(), `"reason":"expired"`)
	assert.Contains(t, rec.Body.String(), "token expired at 2026-12-01T04:00:00Z")
}

// Role map, a nested roles claim, a namespaced claim and the username's
// fallback to sub.
func TestOIDCClaims(t *testing.T) {
	t.Run("role map", func(t *testing.T) {
		f := newFixture(t, func(c *Config) {
			c.OIDC.RolesClaim = "groups"
			c.OIDC.RoleMap = map[string]Role{"shop-oncall": Operator, "shop-dev": Viewer}
		})
		c := f.iss.Claims("otto", nil, f.now)
		c["groups"] = []string{"shop-oncall", "operator-of-something-else"}
		assert.Equal(t, 200, f.do("POST", "/act", "Bearer "+f.iss.Sign(t, c)).Code)
		c["groups"] = []string{"operator", "auditor"}
		assert.Equal(t, 403, f.do("GET", "/read", "Bearer "+f.iss.Sign(t, c)).Code, "with a role map, only mapped values grant roles")
	})
	t.Run("nested and namespaced", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.OIDC.RolesClaim = "realm_access.roles" })
		c := f.iss.Claims("otto", nil, f.now)
		c["realm_access"] = map[string]any{"roles": []string{"auditor"}}
		assert.Equal(t, 200, f.do("POST", "/audit", "Bearer "+f.iss.Sign(t, c)).Code)
		f = newFixture(t, func(c *Config) { c.OIDC.RolesClaim = "https://weft.example.com/roles" })
		c = f.iss.Claims("otto", nil, f.now)
		c["https://weft.example.com/roles"] = "operator"
		assert.Equal(t, 200, f.do("POST", "/act", "Bearer "+f.iss.Sign(t, c)).Code, "a single string")
	})
	t.Run("username", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.OIDC.UsernameClaim = "email" })
		c := f.iss.Claims("otto", []string{"viewer"}, f.now)
		c["email"] = "otto@example.com"
		assert.Equal(t, "otto@example.com", f.do("GET", "/read", "Bearer "+f.iss.Sign(t, c)).Body.String())
		delete(c, "email")
		assert.Equal(t, "sub-otto", f.do("GET", "/read", "Bearer "+f.iss.Sign(t, c)).Body.String(), "sub when the claim is missing")
	})
}

// Authentication on with nothing to authenticate against refuses every
// request with a body saying how to configure, and says so at start.
func TestNotConfigured(t *testing.T) {
	var logs bytes.Buffer
	a, err := New(Default(), Settings{Logger: zerolog.New(&logs)})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	assert.Contains(t, logs.String(), "no token and no OIDC issuer configured: every /api/ request is refused (401)")
	rec := httptest.NewRecorder()
	a.Require(Viewer, http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/stuck", nil))
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Contains(t, rec.Body.String(), `"reason":"not_configured"`)
	assert.Contains(t, rec.Body.String(), "weft auth token --name NAME --role viewer")
	assert.Contains(t, rec.Body.String(), "http.auth.disabled: true")
}

// Disabled: everyone is "anonymous" with every role, and start-up warns.
func TestDisabled(t *testing.T) {
	var logs bytes.Buffer
	cfg := Default()
	cfg.Disabled = true
	a, err := New(cfg, Settings{Logger: zerolog.New(&logs)})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	assert.Contains(t, logs.String(), `"level":"warn"`)
	assert.Contains(t, logs.String(), "http.auth.disabled is true")
	rec := httptest.NewRecorder()
	a.Require(Operator, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := IdentityFrom(r.Context())
		_, _ = w.Write([]byte(id.Name))
	})).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/findings/x/ack", nil))
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, "anonymous", rec.Body.String())
}

// Authenticate alone (the /api/ prefix) refuses the unauthenticated and
// lets any identity through.
func TestAuthenticate(t *testing.T) {
	f := newFixture(t, nil)
	h := f.a.Authenticate(http.NotFoundHandler())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v9/nothing", nil))
	assert.Equal(t, 401, rec.Code)
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v9/nothing", nil)
	req.Header.Set("Authorization", "Bearer "+f.tokens[Viewer])
	h.ServeHTTP(rec, req)
	assert.Equal(t, 404, rec.Code)
}

func TestTokensFile(t *testing.T) {
	dir := t.TempDir()
	tok, h, _ := GenerateToken()
	file := filepath.Join(dir, "tokens.yaml")
	require.NoError(t, os.WriteFile(file, []byte("- name: ci-bot\n  roles: [operator]\n  hash: "+h+"\n"), 0o600))
	cfg := Default()
	cfg.TokensFile = file
	a, err := New(cfg, Settings{})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/act", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	a.Require(Operator, http.NotFoundHandler()).ServeHTTP(rec, req)
	assert.Equal(t, 404, rec.Code, "through to the handler")

	cfg.Tokens = []Token{{Name: "ci-bot", Roles: []Role{Viewer}, Hash: HashToken("weft_other")}}
	a, err = New(cfg, Settings{})
	require.NoError(t, err)
	assert.EqualError(t, a.Start(context.Background()), "http.auth.tokens_file "+file+`: [0].name "ci-bot" is also http.auth.tokens[0]'s name`)

	cfg.TokensFile = filepath.Join(dir, "missing.yaml")
	a, err = New(cfg, Settings{})
	require.NoError(t, err)
	assert.ErrorContains(t, a.Start(context.Background()), "http.auth.tokens_file "+cfg.TokensFile+": open")
}

// An issuer that does not answer fails Start with one line naming the key.
func TestUnreachableIssuer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	cfg := Default()
	cfg.OIDC.Issuer, cfg.OIDC.Audience = url, "weft"
	a, err := New(cfg, Settings{})
	require.NoError(t, err)
	err = a.Start(context.Background())
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "http.auth.oidc.issuer "+url+": discovery failed: "), err.Error())
	assert.NotContains(t, err.Error(), "\n")
}
