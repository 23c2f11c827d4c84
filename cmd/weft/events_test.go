package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestSearchRequestMistakes: every mistake in a search names the flag (or
// parameter) it is in; several are reported at once.
func TestSearchRequestMistakes(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ok := searchRequest{Limit: 50}
	for _, tc := range []struct {
		name string
		edit func(*searchRequest)
		want []string
	}{
		{"header without =", func(r *searchRequest) { r.Headers = []string{"correlation-id"} }, []string{`--header "correlation-id": want NAME=VALUE`}},
		{"header without name", func(r *searchRequest) { r.Headers = []string{"=x"} }, []string{`--header "=x"`}},
		{"field without =", func(r *searchRequest) { r.Fields = []string{"data.x"} }, []string{`--field "data.x": want PATH=VALUE`}},
		{"field not from data", func(r *searchRequest) { r.Fields = []string{"customer.tier=gold"} }, []string{`--field "customer.tier=gold"`, "does not start at data"}},
		{"field bad index", func(r *searchRequest) { r.Fields = []string{"data.items[x]=1"} }, []string{`--field "data.items[x]=1"`, "index [x]"}},
		{"since unreadable", func(r *searchRequest) { r.Since = "yesterday" }, []string{`--since "yesterday": want an RFC 3339 time`}},
		{"until negative", func(r *searchRequest) { r.Until = "-2h" }, []string{`--until "-2h"`}},
		{"empty range", func(r *searchRequest) { r.Since, r.Until = "1h", "2h" }, []string{"--since 2026-11-24T11:00:00Z is not before --until 2026-11-24T10:00:00Z"}},
		{"limit zero", func(r *searchRequest) { r.Limit = 0 }, []string{`--limit "0": want 1 to 1000`}},
		{"limit too big", func(r *searchRequest) { r.Limit = 1001 }, []string{`--limit "1001"`}},
		{"cursor not ours", func(r *searchRequest) { r.Cursor = "abc" }, []string{`--cursor "abc": not a cursor weft made`}},
		{"two mistakes", func(r *searchRequest) { r.Since, r.Limit = "soon", -1 }, []string{`--since "soon"`, `--limit "-1"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			_, err := r.search(now, flagParam)
			require.Error(t, err)
			assert.ErrorAs(t, err, new(badSearch))
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	// Time bounds: RFC 3339, a date, a duration back from now.
	r := searchRequest{Limit: 1, Since: "2026-11-23", Until: "2026-11-24T11:30:00+01:00"}
	s, err := r.search(now, flagParam)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), s.Since)
	assert.Equal(t, time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC), s.Until)
	for in, back := range map[string]time.Duration{"90s": 90 * time.Second, "2h": 2 * time.Hour, "7d": 7 * 24 * time.Hour, "1h30m": 90 * time.Minute} {
		s, err := searchRequest{Limit: 1, Since: in}.search(now, flagParam)
		require.NoError(t, err, in)
		assert.Equal(t, now.Add(-back), s.Since, in)
	}
}

// TestEventsUsageErrorExit2: a mistake in `weft events`' flags is a usage
// error, exit 2, one line naming the flag, before anything is connected.
func TestEventsUsageErrorExit2(t *testing.T) {
	for args, want := range map[string]string{
		"events --header nokv --since soon":       `--header "nokv": want NAME=VALUE; --since "soon"`,
		"events --header nokv":                    `--header "nokv": want NAME=VALUE`,
		"events --field customer.tier=gold":       `--field "customer.tier=gold"`,
		"events --since yesterday":                `--since "yesterday"`,
		"events --limit 0":                        `--limit "0"`,
		"events --cursor zzz":                     `--cursor "zzz"`,
		"events --oldest-first=maybe":             "--oldest-first",
		"events --order o-1 --no-such-filter x-1": "unknown flag: --no-such-filter",
	} {
		code, stderr := runMain(t, []string{"WEFT_CLICKHOUSE_DIAL_TIMEOUT=1s"}, append(strings.Fields(args), "--clickhouse", "127.0.0.1:1")...)
		assert.Equal(t, 2, code, "%s: %s", args, stderr)
		assert.Contains(t, stderr, want, args)
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %q", stderr)
	}
}

// record is a Kafka record as a producer wrote it, before weft decodes it.
func record(offset int64, key, value string, headers ...string) *kgo.Record {
	r := &kgo.Record{Topic: "commerce.orders", Partition: 0, Offset: offset, Key: []byte(key), Value: []byte(value),
		Timestamp: time.Date(2026, 11, 24, 10, 0, int(offset), 0, time.UTC)}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: headers[i], Value: []byte(headers[i+1])})
	}
	return r
}

// TestEventsAPI: GET /api/v1/events on the real ClickHouse, over records
// decoded and masked by the collector's decoder as `weft run` stores them:
// each filter, pages chained by next, a 400 naming the parameter for each
// mistake, and personal data that cannot be found by its value in clear.
func TestEventsAPI(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	dec, err := collector.NewDecoder(collector.Default())
	require.NoError(t, err)
	var evs []event.Event
	for i := range 12 {
		v := fmt.Sprintf(`{"specversion":"1.0","id":"ev-%02d","type":"OrderPlaced","source":"orders","time":"2026-11-24T10:00:%02dZ",`+
			`"subject":"o-%d","data":{"customer":{"tier":%q,"email":"jane.doe%d@example.com"},"payment":{"card_number":"4111 1111 1111 1111"},"store_id":"store-%04d"}}`,
			i, i, i%4, []string{"gold", "silver", "bronze"}[i%3], i, 100+i%2)
		e, err := dec.Decode(record(int64(i), fmt.Sprintf("o-%d", i%4), v, "correlation-id", fmt.Sprintf("chk-%d", i%4), "x-customer-email", "jane@example.com"))
		require.NoError(t, err)
		evs = append(evs, e)
	}
	require.NoError(t, store.InsertEvents(ctx, evs, time.Now().UTC(), "api-1"))
	authn, tokens := testAuth(t, "test", nil, nil, nil)
	h := newAPI(nil, store, nil, nil, authn, prometheus.NewRegistry(), zerolog.Nop(), false, nil, nil, nil)
	get := func(query string) (int, EventsReport, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, withToken(httptest.NewRequest(http.MethodGet, "/api/v1/events?"+query, nil), tokens[auth.Viewer]))
		var (
			rep  EventsReport
			fail struct{ Error string }
		)
		if rec.Code == http.StatusOK {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &rep), rec.Body.String())
		} else {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &fail), rec.Body.String())
		}
		return rec.Code, rep, fail.Error
	}
	idsOf := func(rep EventsReport) []string {
		out := []string{}
		for _, e := range rep.Events {
			out = append(out, e.EventID)
		}
		return out
	}
	for query, want := range map[string][]string{
		"order=o-1":      {"ev-09", "ev-05", "ev-01"},
		"event_id=ev-07": {"ev-07"},
		"key=o-2&type=OrderPlaced&service=orders":                          {"ev-10", "ev-06", "ev-02"},
		"topic=commerce.orders&order=o-3&oldest_first=true":                {"ev-03", "ev-07", "ev-11"},
		"header=correlation-id%3Dchk-2":                                    {"ev-10", "ev-06", "ev-02"},
		"field=data.customer.tier%3Dgold&field=data.store_id%3Dstore-0100": {"ev-06", "ev-00"},
		"since=2026-11-24T10:00:10Z":                                       {"ev-11", "ev-10"},
		"until=2026-11-24T10:00:01Z":                                       {"ev-00"},
		// Masked before storing: the value in clear finds nothing.
		"field=data.payment.card_number%3D4111%201111%201111%201111": {},
		"field=data.payment.card_number%3D4111111111111111":          {},
		"field=data.customer.email%3Djane.doe4%40example.com":        {},
		"header=x-customer-email%3Djane%40example.com":               {},
	} {
		code, rep, body := get(query)
		require.Equal(t, http.StatusOK, code, "%s: %s", query, body)
		assert.Equal(t, want, idsOf(rep), query)
	}
	// What the events do hold in place of those values.
	_, rep, _ := get("event_id=ev-04")
	require.Len(t, rep.Events, 1)
	assert.NotContains(t, string(rep.Events[0].Payload), "4111")
	assert.NotContains(t, string(rep.Events[0].Payload), "jane")
	assert.NotContains(t, rep.Events[0].Headers["x-customer-email"], "jane")

	// Pages of 5, chained by next.
	var got []string
	query := "limit=5"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		code, rep, body := get(query)
		require.Equal(t, http.StatusOK, code, body)
		got = append(got, idsOf(rep)...)
		if rep.Next == nil {
			break
		}
		query = "limit=5&cursor=" + url.QueryEscape(*rep.Next)
	}
	assert.Equal(t, []string{"ev-11", "ev-10", "ev-09", "ev-08", "ev-07", "ev-06", "ev-05", "ev-04", "ev-03", "ev-02", "ev-01", "ev-00"}, got)

	// Mistakes: 400, naming the parameter.
	_, first, _ := get("limit=1")
	require.NotNil(t, first.Next)
	for query, want := range map[string]string{
		"header=nokv":                `header "nokv": want NAME=VALUE`,
		"field=customer.tier%3Dgold": `field "customer.tier=gold"`,
		"since=yesterday":            `since "yesterday"`,
		"since=1h&until=2h":          "is not before until",
		"limit=0":                    `limit "0"`,
		"limit=many":                 `limit "many"`,
		"cursor=zzz":                 `cursor "zzz"`,
		"oldest_first=yes":           `oldest_first "yes"`,
		"oldest_first=true&cursor=" + url.QueryEscape(*first.Next): "made for a search without oldest_first",
		"evnt_id=ev-01": "unknown parameter evnt_id",
	} {
		code, _, body := get(query)
		assert.Equal(t, http.StatusBadRequest, code, query)
		assert.Contains(t, body, want, query)
	}
}

// TestEventsCommand: `weft events` on the real ClickHouse, as text and as
// JSON.
func TestEventsCommand(t *testing.T) {
	chCfg := testenv.ClickHouse(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := range 3 {
		evs = append(evs, event.Event{Topic: "commerce.payments", Partition: 2, Offset: int64(40 + i), Key: "o-7",
			RecordTime: t0, EventID: fmt.Sprintf("ev-%d", i), Type: "PaymentFailed", Service: "payments", OrderID: "o-7",
			EventTime: t0.Add(time.Duration(i) * time.Minute), PayloadHash: fmt.Sprintf("%064d", i), Payload: []byte(`{"reason":"declined"}`)})
	}
	s2, err := openStore(ctx, Config{ClickHouse: chCfg})
	require.NoError(t, err)
	defer s2.Close()
	require.NoError(t, s2.InsertEvents(ctx, evs, time.Now().UTC(), "cmd-1"))
	args := []string{"events", "--clickhouse", chCfg.Addr[0], "--database", chCfg.Database, "--type", "PaymentFailed", "--limit", "2"}
	out, err := execWeft(t, args...)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 5, out)
	assert.Regexp(t, `^WHERE\s+EVENT TIME\s+ORDER\s+TYPE\s+SERVICE\s+EVENT ID$`, lines[0])
	assert.Regexp(t, `^commerce\.payments/2@42\s+2026-11-24 10:02:00\.000\s+o-7\s+PaymentFailed\s+payments\s+ev-2$`, lines[1])
	assert.Regexp(t, `^commerce\.payments/2@41\s`, lines[2])
	assert.Regexp(t, `^2 events; more with --cursor \S+$`, lines[4])
	cursor := strings.Fields(lines[4])[5]

	out, err = execWeft(t, append(args, "--cursor", cursor, "-o", "json")...)
	require.NoError(t, err)
	var rep EventsReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.Len(t, rep.Events, 1)
	assert.Nil(t, rep.Next)
	e := rep.Events[0]
	assert.Equal(t, []any{"commerce.payments", int32(2), int64(40), "ev-0", "o-7"}, []any{e.Topic, e.Partition, e.Offset, e.EventID, e.OrderID})
	assert.JSONEq(t, `{"reason":"declined"}`, string(e.Payload))

	out, err = execWeft(t, "events", "--clickhouse", chCfg.Addr[0], "--database", chCfg.Database, "--type", "NoSuchType")
	require.NoError(t, err)
	assert.Equal(t, "No events found.\n", out)

	out, err = execWeft(t, "events", "--clickhouse", chCfg.Addr[0], "--database", chCfg.Database, "--event-id", "ev-1", "--explain")
	require.NoError(t, err)
	assert.Contains(t, out, "idx_event_id")
}
