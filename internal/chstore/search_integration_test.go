package chstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// searchT0 is the event time of the fixture's first event.
var searchT0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// searchFixture is 40 events of 8 orders, 5 each, on two topics; event
// i happens i seconds after searchT0, except that events 20 to 23 share
// one event time (ties are ordered by topic, partition, offset).
func searchFixture() []event.Event {
	types := []string{"OrderPlaced", "PaymentAuthorized", "ReadyForPickup", "PickedUp", "OrderCompleted"}
	services := []string{"orders", "payments", "fulfillment", "pickup", "orders"}
	tiers := []string{"gold", "silver"}
	out := make([]event.Event, 40)
	for i := range out {
		order, step := i/5, i%5
		topic := "orders"
		if step%2 == 1 {
			topic = "payments"
		}
		at := searchT0.Add(time.Duration(i) * time.Second)
		if i >= 20 && i < 24 {
			at = searchT0.Add(20 * time.Second)
		}
		out[i] = event.Event{
			Topic: topic, Partition: int32(order % 3), Offset: int64(i), Key: fmt.Sprintf("key-%d", order),
			RecordTime: at, EventID: fmt.Sprintf("ev-%02d", i), Type: types[step], Service: services[step],
			OrderID: fmt.Sprintf("o-%d", order), EventTime: at, PayloadHash: fmt.Sprintf("%064d", i),
			Headers: map[string]string{"correlation-id": fmt.Sprintf("corr-%d", order), "content-type": "application/json"},
			Payload: fmt.Appendf(nil, `{"amount":%d.50,"customer":{"id":"cus_%d","tier":%q},"items":[{"sku":"SKU-%d","qty":%d}],"paid":%v,"note":null,"odd.key":"v%d"}`,
				10+order, order, tiers[order%2], i, step+1, step > 0, order),
		}
	}
	return out
}

// searchStore is a fresh store holding the fixture.
func searchStore(t *testing.T) *chstore.Store {
	t.Helper()
	store := testenv.Store(t)
	require.NoError(t, store.InsertEvents(context.Background(), searchFixture(), time.Now().UTC(), "search-fixture"))
	return store
}

// ids are the event ids of a page, in its order.
func ids(p chstore.EventPage) []string {
	out := []string{}
	for _, e := range p.Events {
		out = append(out, e.EventID)
	}
	return out
}

// evs names fixture events by index: "ev-03", ….
func evs(idx ...int) []string {
	out := []string{}
	for _, i := range idx {
		out = append(out, fmt.Sprintf("ev-%02d", i))
	}
	return out
}

func field(t *testing.T, path, value string) chstore.FieldMatch {
	t.Helper()
	p, err := chstore.ParseFieldPath(path)
	require.NoError(t, err)
	return chstore.FieldMatch{Path: p, Value: value}
}

// TestSearchFilters: every filter kind on its own and combined (AND), on
// the real ClickHouse; results newest first.
func TestSearchFilters(t *testing.T) {
	store := searchStore(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		q    chstore.EventSearch
		want []string
	}{
		{"order", chstore.EventSearch{OrderID: "o-2"}, evs(14, 13, 12, 11, 10)},
		{"event id", chstore.EventSearch{EventID: "ev-07"}, evs(7)},
		{"record key", chstore.EventSearch{RecordKey: "key-7"}, evs(39, 38, 37, 36, 35)},
		{"type", chstore.EventSearch{Type: "PickedUp"}, evs(38, 33, 28, 23, 18, 13, 8, 3)},
		{"service", chstore.EventSearch{Service: "fulfillment"}, evs(37, 32, 27, 22, 17, 12, 7, 2)},
		{"topic", chstore.EventSearch{Topic: "payments", OrderID: "o-0"}, evs(3, 1)},
		{"header", chstore.EventSearch{Headers: []chstore.HeaderMatch{{Name: "correlation-id", Value: "corr-5"}}}, evs(29, 28, 27, 26, 25)},
		{"header name is exact", chstore.EventSearch{Headers: []chstore.HeaderMatch{{Name: "Correlation-Id", Value: "corr-5"}}}, nil},
		{"header value elsewhere", chstore.EventSearch{Headers: []chstore.HeaderMatch{{Name: "content-type", Value: "corr-5"}}}, nil},
		{"empty header value is not a missing header", chstore.EventSearch{Headers: []chstore.HeaderMatch{{Name: "missing", Value: ""}}}, nil},
		{"field string", chstore.EventSearch{Fields: []chstore.FieldMatch{field(t, "data.customer.id", "cus_6")}}, evs(34, 33, 32, 31, 30)},
		{"field array element", chstore.EventSearch{Fields: []chstore.FieldMatch{field(t, "data.items[0].sku", "SKU-17")}}, evs(17)},
		{"field quoted key", chstore.EventSearch{Fields: []chstore.FieldMatch{field(t, `data["odd.key"]`, "v1")}}, evs(9, 8, 7, 6, 5)},
		{"field number as written", chstore.EventSearch{Fields: []chstore.FieldMatch{field(t, "data.amount", "13.50")}}, evs(19, 18, 17, 16, 15)},
		{"field number by value", chstore.EventSearch{Fields: []chstore.FieldMatch{field(t, "data.amount", "1.35e1")}}, evs(19, 18, 17, 16, 15)},
		{"field integer", chstore.EventSearch{Fields: []chstore.FieldMatch{field(t, "data.items[0].qty", "5"), field(t, "data.customer.id", "cus_1")}}, evs(9)},
		{"field bool", chstore.EventSearch{OrderID: "o-4", Fields: []chstore.FieldMatch{field(t, "data.paid", "false")}}, evs(20)},
		{"field null", chstore.EventSearch{OrderID: "o-4", Fields: []chstore.FieldMatch{field(t, "data.note", "null")}}, evs(24, 23, 21, 22, 20)}, // ties: payments before orders
		{"field missing is not null", chstore.EventSearch{OrderID: "o-4", Fields: []chstore.FieldMatch{field(t, "data.nothing", "null")}}, nil},
		{"field missing is not empty", chstore.EventSearch{OrderID: "o-4", Fields: []chstore.FieldMatch{field(t, "data.nothing", "")}}, nil},
		{"field object matches nothing", chstore.EventSearch{Fields: []chstore.FieldMatch{field(t, "data.customer", `{"id":"cus_1","tier":"silver"}`)}}, nil},
		{"field string is not a prefix", chstore.EventSearch{Fields: []chstore.FieldMatch{field(t, "data.customer.id", "cus")}}, nil},
		{"every filter must match", chstore.EventSearch{Type: "OrderPlaced", Service: "orders", Headers: []chstore.HeaderMatch{{Name: "correlation-id", Value: "corr-3"}},
			Fields: []chstore.FieldMatch{field(t, "data.customer.tier", "silver")}}, evs(15)},
		{"filters that exclude each other", chstore.EventSearch{OrderID: "o-1", RecordKey: "key-2"}, nil},
		{"hostile value", chstore.EventSearch{OrderID: `o-1' OR 1=1 --`, Fields: []chstore.FieldMatch{field(t, `data["'\\"]`, `'); DROP TABLE x; --\`)}}, nil},
		{"time range", chstore.EventSearch{Since: searchT0.Add(30 * time.Second), Until: searchT0.Add(33 * time.Second)}, evs(32, 31, 30)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Limit = 100
			page, err := store.SearchEvents(ctx, tc.q)
			require.NoError(t, err)
			if tc.want == nil {
				tc.want = []string{}
			}
			assert.Equal(t, tc.want, ids(page))
			assert.Nil(t, page.Next)
		})
	}
	// A found event comes back whole.
	page, err := store.SearchEvents(ctx, chstore.EventSearch{EventID: "ev-07", Limit: 1})
	require.NoError(t, err)
	want := searchFixture()[7]
	got := page.Events[0]
	assert.Equal(t, []any{want.Topic, want.Partition, want.Offset, want.Key, want.OrderID, want.Type, want.Service, want.Headers, string(want.Payload)},
		[]any{got.Topic, got.Partition, got.Offset, got.RecordKey, got.OrderID, got.Type, got.Service, got.Headers, got.Payload})
	assert.True(t, want.EventTime.Equal(got.EventTime))
}

// TestSearchTimeRange: since is included, until excluded, to the
// millisecond; ties at the edge are all in or all out.
func TestSearchTimeRange(t *testing.T) {
	store := searchStore(t)
	ctx := context.Background()
	at := func(s int) time.Time { return searchT0.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name         string
		since, until time.Time
		want         []string
	}{
		{"since is included", at(38), time.Time{}, evs(39, 38)},
		{"a millisecond later excludes it", at(38).Add(time.Millisecond), time.Time{}, evs(39)},
		{"until is excluded", time.Time{}, at(2), evs(1, 0)},
		{"a millisecond later includes it", time.Time{}, at(2).Add(time.Millisecond), evs(2, 1, 0)},
		{"ties at since all in", at(20), at(25), evs(24, 23, 22, 21, 20)},
		{"ties at until all out", at(19), at(20), evs(19)},
		{"one millisecond", at(5), at(5).Add(time.Millisecond), evs(5)},
		{"before everything", at(-100), at(-1), nil},
		{"after everything", at(40), time.Time{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := store.SearchEvents(ctx, chstore.EventSearch{Since: tc.since, Until: tc.until, Limit: 100})
			require.NoError(t, err)
			if tc.want == nil {
				tc.want = []string{}
			}
			if tc.name == "ties at since all in" {
				slices.Sort(tc.want) // their order is checked by TestSearchPagination
				got := ids(page)
				slices.Sort(got)
				assert.Equal(t, tc.want, got)
				return
			}
			assert.Equal(t, tc.want, ids(page))
		})
	}
	_, err := store.SearchEvents(ctx, chstore.EventSearch{Since: at(5), Until: at(5), Limit: 10})
	assert.ErrorIs(t, err, chstore.ErrBadSearch, "an empty range is a mistake")
}

// TestSearchPagination: paging through a search with every page size, in
// both orders, gives every matching event once, in order, with no gap;
// copies of records ClickHouse has not merged yet are shown once.
func TestSearchPagination(t *testing.T) {
	store := searchStore(t)
	ctx := context.Background()
	// Copies of 12 records (a batch re-read after a crash), stored again
	// under another token: in the table twice until a merge, which the
	// test holds off.
	require.NoError(t, testenv.Conn(t).Exec(ctx, "SYSTEM STOP MERGES "+store.Table("events")))
	copies := searchFixture()[14:26]
	require.NoError(t, store.InsertEvents(ctx, copies, time.Now().UTC().Add(time.Second), "search-copies"))
	require.Equal(t, uint64(52), scalar(t, store, "SELECT count() FROM "+store.Table("events")))

	all := searchFixture()
	byOrder := func(oldestFirst bool) []string {
		s := slices.Clone(all)
		slices.SortFunc(s, func(a, b event.Event) int {
			c := a.EventTime.Compare(b.EventTime)
			if c == 0 {
				c = cmpTuple(a.Topic, b.Topic, a.Partition, b.Partition, a.Offset, b.Offset)
			}
			if !oldestFirst {
				c = -c
			}
			return c
		})
		out := []string{}
		for _, e := range s {
			out = append(out, e.EventID)
		}
		return out
	}
	for _, oldestFirst := range []bool{false, true} {
		want := byOrder(oldestFirst)
		for _, limit := range []int{1, 2, 3, 7, 13, 39, 40, 41, 1000} {
			t.Run(fmt.Sprintf("oldest first %v, limit %d", oldestFirst, limit), func(t *testing.T) {
				q := chstore.EventSearch{Limit: limit, OldestFirst: oldestFirst}
				var got []string
				for pages := 0; ; pages++ {
					require.Less(t, pages, 100, "pagination does not end")
					page, err := store.SearchEvents(ctx, q)
					require.NoError(t, err)
					require.LessOrEqual(t, len(page.Events), limit)
					got = append(got, ids(page)...)
					if page.Next == nil {
						break
					}
					// The cursor goes through its text, as a client passes it back.
					c, err := chstore.ParseCursor(page.Next.String())
					require.NoError(t, err)
					q.After = &c
				}
				assert.Equal(t, want, got)
			})
		}
	}
	// Paging a filtered search with a time range.
	q := chstore.EventSearch{Service: "orders", Since: searchT0.Add(10 * time.Second), Until: searchT0.Add(35 * time.Second), Limit: 2}
	var got []string
	for {
		page, err := store.SearchEvents(ctx, q)
		require.NoError(t, err)
		got = append(got, ids(page)...)
		if page.Next == nil {
			break
		}
		q.After = page.Next
	}
	assert.Equal(t, evs(34, 30, 29, 25, 24, 20, 19, 15, 14, 10), got)

	// A cursor of one order is refused by the other.
	page, err := store.SearchEvents(ctx, chstore.EventSearch{Limit: 1})
	require.NoError(t, err)
	_, err = store.SearchEvents(ctx, chstore.EventSearch{Limit: 1, OldestFirst: true, After: page.Next})
	assert.ErrorIs(t, err, chstore.ErrBadSearch)
	for _, limit := range []int{0, -1, chstore.MaxSearchLimit + 1} {
		_, err = store.SearchEvents(ctx, chstore.EventSearch{Limit: limit})
		assert.ErrorIs(t, err, chstore.ErrBadSearch, "limit %d", limit)
	}
}

func cmpTuple(ta, tb string, pa, pb int32, oa, ob int64) int {
	switch {
	case ta != tb:
		if ta < tb {
			return -1
		}
		return 1
	case pa != pb:
		return int(pa - pb)
	case oa < ob:
		return -1
	case oa > ob:
		return 1
	}
	return 0
}

// granules reads, from an EXPLAIN indexes = 1 plan, the granules the index
// named (a skip index's name, or PrimaryKey) kept out of those it was given.
func granules(t *testing.T, plan, index string) (kept, of int) {
	t.Helper()
	pat := `Name: ` + regexp.QuoteMeta(index) + `\n(?:.*\n)*?\s*Granules: (\d+)/(\d+)`
	if index == "PrimaryKey" {
		pat = `PrimaryKey\n(?:.*\n)*?\s*Granules: (\d+)/(\d+)`
	}
	m := regexp.MustCompile(pat).FindStringSubmatch(plan)
	require.NotNil(t, m, "index %s is not in the plan:\n%s", index, plan)
	kept, _ = strconv.Atoi(m[1])
	of, _ = strconv.Atoi(m[2])
	return kept, of
}

// TestSearchUsesIndexes: ClickHouse's own plan of each selective filter
// shows its index leaving a small share of the table's granules to read.
// 100,000 events of 10,000 orders, in two inserts an hour apart, make ~100
// granules of 1,024 rows.
func TestSearchUsesIndexes(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	batch := func(from, n int, at time.Time, prefix string) []event.Event {
		out := make([]event.Event, n)
		for i := range out {
			k := from + i
			order := fmt.Sprintf("%s%05d", prefix, k/10)
			out[i] = event.Event{Topic: "orders", Partition: int32(k % 6), Offset: int64(k), Key: "key-" + order,
				RecordTime: at, EventID: fmt.Sprintf("ev-%06d", k), Type: "OrderPlaced", Service: "orders", OrderID: order,
				EventTime: at.Add(time.Duration(k-from) * time.Millisecond), PayloadHash: fmt.Sprintf("%064d", k),
				Headers: map[string]string{"correlation-id": fmt.Sprintf("corr-%06d", k)},
				Payload: fmt.Appendf(nil, `{"customer":{"id":"cus_%06d","tier":"gold"},"store_id":"store-%03d"}`, k, k%420)}
		}
		return out
	}
	// Order ids of the later insert sort after the earlier's, so their
	// granules stay apart when the two parts merge.
	require.NoError(t, store.InsertEvents(ctx, batch(0, 50_000, searchT0, "a-"), time.Now().UTC(), "idx-1"))
	require.NoError(t, store.InsertEvents(ctx, batch(50_000, 50_000, searchT0.Add(time.Hour), "b-"), time.Now().UTC(), "idx-2"))

	for _, tc := range []struct {
		name, index string
		q           chstore.EventSearch
		found       string
	}{
		{"order id", "PrimaryKey", chstore.EventSearch{OrderID: "a-01234"}, "ev-012349"},
		{"event id", "idx_event_id", chstore.EventSearch{EventID: "ev-077777"}, "ev-077777"},
		{"record key", "idx_record_key", chstore.EventSearch{RecordKey: "key-b-07777"}, "ev-077779"},
		{"header value", "idx_header_values", chstore.EventSearch{Headers: []chstore.HeaderMatch{{Name: "correlation-id", Value: "corr-033333"}}}, "ev-033333"},
		{"payload field", "idx_payload_tokens", chstore.EventSearch{Fields: []chstore.FieldMatch{field(t, "data.customer.id", "cus_066666")}}, "ev-066666"},
		{"event time", "idx_event_time", chstore.EventSearch{Since: searchT0.Add(time.Hour + 49_999*time.Millisecond)}, "ev-099999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Limit = 10
			plan, err := store.ExplainEventSearch(ctx, tc.q)
			require.NoError(t, err)
			kept, of := granules(t, plan, tc.index)
			minGranules, share := 90, 10 // ~100 granules, a tenth at most kept
			if testenv.OnCluster() {
				// The plan is one shard's, of about half the rows, in
				// blocks of 4 granules (GRANULARITY 4): one false
				// positive of a bloom filter weighs twice as much.
				minGranules, share = 30, 4
			}
			assert.Greater(t, of, minGranules, "the table has ~100 granules:\n%s", plan)
			assert.LessOrEqual(t, kept*share, of, "%s keeps %d of %d granules:\n%s", tc.index, kept, of, plan)
			page, err := store.SearchEvents(ctx, tc.q)
			require.NoError(t, err)
			require.NotEmpty(t, page.Events)
			assert.Equal(t, tc.found, page.Events[0].EventID)
		})
	}
}

// TestSearchHostileValues: values with quotes, backslashes, escapes and
// control characters are bound, never spliced: each finds exactly the
// record that holds it.
func TestSearchHostileValues(t *testing.T) {
	store := searchStore(t)
	ctx := context.Background()
	hostile := []string{`o'1`, `o\`, `o\'`, `o\n spelled`, "o\nreal newline\t", `o'); DROP TABLE x; --`, `o\x41`, "o\x00nul"}
	var batch []event.Event
	for i, v := range hostile {
		payload, err := json.Marshal(map[string]any{"v": v, v: "key"})
		require.NoError(t, err)
		batch = append(batch, event.Event{Topic: "orders", Offset: int64(100 + i), Key: v, RecordTime: searchT0,
			EventID: fmt.Sprintf("hostile-%d", i), Type: "OrderPlaced", OrderID: v, EventTime: searchT0,
			PayloadHash: fmt.Sprintf("%064d", 100+i), Headers: map[string]string{v: v}, Payload: payload})
	}
	require.NoError(t, store.InsertEvents(ctx, batch, time.Now().UTC(), "hostile"))
	for i, v := range hostile {
		want := []string{fmt.Sprintf("hostile-%d", i)}
		key, err := json.Marshal(v)
		require.NoError(t, err)
		for name, q := range map[string]chstore.EventSearch{
			"order":       {OrderID: v},
			"key":         {RecordKey: v},
			"event id":    {EventID: want[0], OrderID: v},
			"header":      {Headers: []chstore.HeaderMatch{{Name: v, Value: v}}},
			"field value": {Fields: []chstore.FieldMatch{field(t, "data.v", v)}},
			"field key":   {Fields: []chstore.FieldMatch{field(t, "data["+string(key)+"]", "key")}},
		} {
			q.Limit = 10
			page, err := store.SearchEvents(ctx, q)
			require.NoError(t, err, "%s %q", name, v)
			assert.Equal(t, want, ids(page), "%s %q", name, v)
		}
	}
}
