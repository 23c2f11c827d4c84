package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestOrderTraceIDInAPIAndConsole: on the real ClickHouse, with a tracing
// id key configured, GET /api/v1/orders/{id} and the console's order page
// carry the order's trace id, the one its spans have (`weft trace`); without
// a key, neither shows one.
func TestOrderTraceIDInAPIAndConsole(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	ev := func(off int64, id, typ, svc, cause string) event.Event {
		return event.Event{Topic: "orders", Offset: off, Key: "o-trace", EventID: id, Type: typ, Service: svc, OrderID: "o-trace",
			EventTime: at.Add(time.Duration(off) * time.Second), RecordTime: at, CausationID: cause, PayloadHash: id}
	}
	require.NoError(t, store.InsertEvents(ctx, []event.Event{ev(1, "e1", "OrderPlaced", "orders", ""),
		ev(2, "e2", "InventoryReserved", "inventory", "e1")}, time.Now().UTC(), ""))

	cfg := DefaultConfig()
	cfg.Tracing.IDKeyFile = filepath.Join(t.TempDir(), "id.key")
	require.NoError(t, os.WriteFile(cfg.Tracing.IDKeyFile, []byte("order-trace-test-key-0123456789\n"), 0o600))
	td, err := orderTrace(ctx, cfg, store, "o-trace")
	require.NoError(t, err)
	want := firstTraceID(td)
	require.Len(t, want, 32)

	serve := func(traceID traceIDFunc) (*httptest.Server, map[auth.Role]string) {
		reg := prometheus.NewRegistry()
		authn, tokens := testAuth(t, "trace", nil, reg, nil)
		engine := consistency.NewEngine(store, cfg.Consistency.AllWorkflows())
		cons, err := newConsole(engine, store, nil, authn, zerolog.Nop(), traceID)
		require.NoError(t, err)
		srv := httptest.NewServer(newAPI(engine, store, nil, nil, authn, reg, zerolog.Nop(), false, cons, nil, traceID))
		t.Cleanup(srv.Close)
		return srv, tokens
	}
	apiTrace := func(srv *httptest.Server, token string) (string, bool) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/orders/o-trace", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		var body map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
		assert.Equal(t, "o-trace", body["order_id"])
		id, ok := body["trace_id"].(string)
		return id, ok
	}
	consolePage := func(srv *httptest.Server, token string) string {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		browser := &http.Client{Jar: jar}
		res, err := browser.PostForm(srv.URL+"/login", url.Values{"token": {token}})
		require.NoError(t, err)
		res.Body.Close()
		res, err = browser.Get(srv.URL + "/orders/o-trace")
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return string(b)
	}

	srv, tokens := serve(orderTraceIDs(cfg))
	got, ok := apiTrace(srv, tokens[auth.Viewer])
	assert.True(t, ok, "trace_id in the answer")
	assert.Equal(t, want, got, "the API's trace id is the spans'")
	assert.Contains(t, consolePage(srv, tokens[auth.Viewer]), `<code id="trace-id">`+want+`</code>`)

	// No key: no trace id, and orderTraceIDs says so with nil.
	noKey := DefaultConfig()
	require.Nil(t, orderTraceIDs(noKey))
	srv, tokens = serve(orderTraceIDs(noKey))
	_, ok = apiTrace(srv, tokens[auth.Viewer])
	assert.False(t, ok, "no trace_id without an id key")
	page := consolePage(srv, tokens[auth.Viewer])
	assert.Contains(t, page, "o-trace")
	assert.NotContains(t, page, `id="trace-id"`)
}
