package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/console"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestConsoleAccess: the console's session and CSRF rules over HTTP, on
// the real ClickHouse (the browser test, console/browsertest, drives the
// same in chromium): no session goes to the login form; a bad token logs
// in nobody and is counted; a good one sets an HttpOnly, SameSite=Strict
// cookie; a viewer reads and is refused (403) an acknowledgement; an
// operator's acknowledgement without its session's CSRF token, or from
// another site, is refused; every refusal leaves the finding open; then
// the operator's goes through under the token's name, and the audit
// trail records the denied and the done acknowledgements.
func TestConsoleAccess(t *testing.T) {
	ctx := context.Background()
	store := testenv.Store(t)
	now := time.Now().UTC()
	require.NoError(t, store.InsertFindings(ctx, []chstore.FindingRow{{ID: "f-console", Kind: consistency.KindStuck, OrderID: "ORD-console",
		Workflow: "bopis", Step: "picked", Since: now, Status: consistency.StatusOpen, Summary: "stuck", Evidence: "{}",
		FirstSeen: now, LastSeen: now}}, now))
	actions, _ := auditedConfig(t, store)
	reg := prometheus.NewRegistry()
	authn, tokens := testAuth(t, "dana", actions, reg, nil)
	engine := consistency.NewEngine(store, DefaultConfig().Consistency.AllWorkflows())
	cons, err := newConsole(engine, store, actions, authn, zerolog.Nop(), nil)
	require.NoError(t, err)
	srv := httptest.NewServer(newAPI(engine, store, nil, actions, authn, reg, zerolog.Nop(), false, cons, nil, nil))
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, form url.Values, session string, header map[string]string) *http.Response {
		t.Helper()
		var body *strings.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		} else {
			body = strings.NewReader("")
		}
		req, err := http.NewRequest(method, srv.URL+path, body)
		require.NoError(t, err)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if session != "" {
			req.AddCookie(&http.Cookie{Name: console.CookieName, Value: session})
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { _ = res.Body.Close() })
		return res
	}
	csrfOf := func(session string) string {
		t.Helper()
		res := do("GET", "/findings", nil, session, nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		m := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(string(b))
		require.NotNil(t, m, "the page carries its CSRF token")
		return m[1]
	}
	stillOpen := func(msg string) {
		t.Helper()
		fs, err := engine.Findings(ctx, consistency.FindingFilter{ID: "f-console"})
		require.NoError(t, err)
		require.Len(t, fs, 1)
		assert.Equal(t, consistency.StatusOpen, fs[0].Status, msg)
		assert.Empty(t, fs[0].AckBy, msg)
	}
	same := map[string]string{"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"}

	// No session: to the login form, and back after; not counted.
	res := do("GET", "/orders/ORD-console?x=1", nil, "", nil)
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/login?next="+url.QueryEscape("/orders/ORD-console?x=1"), res.Header.Get("Location"))
	assert.Zero(t, testutil.ToFloat64(authn.Refused(auth.NoToken)))
	// A link from another site: one reload from weft's own page brings
	// the SameSite=Strict cookie along.
	res = do("GET", "/", nil, "", map[string]string{"Sec-Fetch-Site": "cross-site"})
	assert.Equal(t, http.StatusOK, res.StatusCode)
	// A session whose token is no longer valid: to the login form, counted.
	unknown, _, err := auth.GenerateToken()
	require.NoError(t, err)
	res = do("GET", "/", nil, unknown, nil)
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, 1.0, testutil.ToFloat64(authn.Refused(auth.BadToken)))
	// The assets are open; the pages are not framed nor cached.
	res = do("GET", "/assets/console.css", nil, "", nil)
	assert.Equal(t, http.StatusOK, res.StatusCode)

	// Logging in.
	res = do("POST", "/login", url.Values{"token": {tokens[auth.Viewer]}, "next": {"/queues"}}, "", map[string]string{"Origin": "https://evil.example"})
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "a login form posted from another site")
	assert.Empty(t, res.Cookies())
	res = do("POST", "/login", url.Values{"token": {unknown}}, "", same)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Empty(t, res.Cookies())
	assert.Equal(t, 2.0, testutil.ToFloat64(authn.Refused(auth.BadToken)))
	res = do("POST", "/login", url.Values{"token": {tokens[auth.Viewer]}, "next": {"//evil.example/x"}}, "", same)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/", res.Header.Get("Location"), "never on to another site")
	require.Len(t, res.Cookies(), 1)
	c := res.Cookies()[0]
	assert.Equal(t, console.CookieName, c.Name)
	assert.Equal(t, tokens[auth.Viewer], c.Value)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.False(t, c.Secure, "plain HTTP: a Secure cookie would not come back")
	assert.Equal(t, "/", c.Path)

	// A viewer reads every page, and may not acknowledge.
	viewer, operator := tokens[auth.Viewer], tokens[auth.Operator]
	for _, p := range []string{"/", "/?reason=no-answer&sort=reason&dir=asc", "/findings?kind=stuck", "/queues", "/audit"} {
		res = do("GET", p, nil, viewer, nil)
		assert.Equal(t, http.StatusOK, res.StatusCode, p)
		assert.Contains(t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'", p)
		assert.Equal(t, "no-store", res.Header.Get("Cache-Control"), p)
	}
	assert.Equal(t, http.StatusBadRequest, do("GET", "/?reason=bored", nil, viewer, nil).StatusCode)
	assert.Equal(t, http.StatusBadRequest, do("GET", "/findings?kind=nope", nil, viewer, nil).StatusCode)
	assert.Equal(t, http.StatusNotFound, do("GET", "/orders/ORD-none", nil, viewer, nil).StatusCode)
	ack := func(session, csrf string, header map[string]string) int {
		return do("POST", "/findings/f-console/ack", url.Values{"csrf": {csrf}, "reason": {"looked at it"}, "back": {"/orders/ORD-console"}},
			session, header).StatusCode
	}
	viewerCSRF, operatorCSRF := csrfOf(viewer), csrfOf(operator)
	assert.Equal(t, http.StatusForbidden, ack(viewer, viewerCSRF, same), "a viewer's acknowledgement")
	stillOpen("after a viewer's acknowledgement")
	assert.Equal(t, 1.0, testutil.ToFloat64(authn.Refused(auth.ForbiddenRole)))

	// An operator's, without its session's CSRF token or from elsewhere.
	assert.Equal(t, http.StatusForbidden, ack(operator, "", same), "no CSRF token")
	assert.Equal(t, http.StatusForbidden, ack(operator, viewerCSRF, same), "another session's CSRF token")
	assert.Equal(t, http.StatusForbidden, ack(operator, operatorCSRF, map[string]string{"Sec-Fetch-Site": "cross-site"}), "posted from another site")
	assert.Equal(t, http.StatusForbidden, ack(operator, operatorCSRF, map[string]string{"Origin": "null"}), "an opaque origin")
	assert.Equal(t, http.StatusUnauthorized, ack("", operatorCSRF, same), "no session")
	stillOpen("after the refused acknowledgements")

	// Then the operator's own: under the token's name, back to the order.
	res = do("POST", "/findings/f-console/ack", url.Values{"csrf": {operatorCSRF}, "reason": {"replay scheduled"}, "back": {"/orders/ORD-console"}}, operator, same)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/orders/ORD-console?acked=f-console", res.Header.Get("Location"))
	fs, err := engine.Findings(ctx, consistency.FindingFilter{ID: "f-console"})
	require.NoError(t, err)
	require.Len(t, fs, 1)
	assert.Equal(t, consistency.StatusAcknowledged, fs[0].Status)
	assert.Equal(t, "dana-operator", fs[0].AckBy)
	assert.Equal(t, "replay scheduled", fs[0].AckReason)

	// The operator-actions log: the viewer's denial and the operator's ack.
	count := func(actor, outcome string) uint64 {
		var n uint64
		require.NoError(t, testenv.Conn(t).QueryRow(ctx, "SELECT count() FROM "+store.Table("audit_actions")+
			" WHERE actor = ? AND resource = 'finding/f-console' AND outcome = ?", actor, outcome).Scan(&n))
		return n
	}
	assert.Equal(t, uint64(1), count("dana-viewer", "denied"))
	assert.Equal(t, uint64(1), count("dana-operator", "success"))
	assert.Equal(t, uint64(1), count("dana-operator", "success")+count("dana-operator", "failure")+count("dana-operator", "denied"),
		"the refused posts of the operator wrote nothing")

	// Logging out forgets the cookie, also when its token is no longer
	// valid (the session cannot be left otherwise).
	res = do("POST", "/logout", url.Values{"csrf": {csrfOf(operator)}}, unknown, same)
	require.Equal(t, http.StatusForbidden, res.StatusCode, "another session's CSRF token")
	res = do("POST", "/logout", url.Values{}, unknown, same)
	require.Equal(t, http.StatusForbidden, res.StatusCode, "no CSRF token")
	// Logging out forgets the cookie.
	res = do("POST", "/logout", url.Values{"csrf": {operatorCSRF}}, operator, same)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Len(t, res.Cookies(), 1)
	assert.Equal(t, -1, res.Cookies()[0].MaxAge)
}

// TestConsoleRoutesInRouteTable: every console route has a role in the
// route table (newAPI panics otherwise), and the table names no console
// route that does not exist.
func TestConsoleRoutesInRouteTable(t *testing.T) {
	authn, _ := testAuth(t, "tbl", nil, nil, nil)
	cons, err := newConsole(consistency.NewEngine(nil, nil), nil, nil, authn, zerolog.Nop(), nil)
	require.NoError(t, err)
	assert.NotPanics(t, func() {
		newAPI(nil, nil, nil, nil, authn, prometheus.NewRegistry(), zerolog.Nop(), false, cons, nil, nil)
	})
	have := map[string]bool{}
	for _, r := range cons.Routes() {
		have[r.Pattern] = true
	}
	for pattern, role := range routeRoles {
		if strings.Contains(pattern, "/api/") || strings.HasPrefix(pattern, "/debug/") {
			continue
		}
		assert.True(t, have[pattern], "route table entry %q (%s) is no console route", pattern, role)
	}
	assert.Equal(t, auth.Operator, routeRoles["POST /findings/{id}/ack"])
	assert.Equal(t, auth.Viewer, routeRoles["GET /orders/{id}"])
}
