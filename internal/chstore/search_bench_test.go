package chstore_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/scalegen"
	"github.com/weft-sh/weft/internal/testenv"
)

// BenchmarkSearch is `make bench-search` (docs/search.md): the latency of
// `weft events` lookups, by filter kind, over the scale benchmark's
// generated history (internal/scalegen; loaded, or reused when
// `make bench-scale` or a previous run loaded it). Each kind runs on
// values sampled from the stored events, and every answer is checked (the
// sampled event is found). It prints p50 and p95 per kind and runs once
// whatever b.N is (use -benchtime 1x). Knobs, from the environment:
//
//	WEFT_SCALE_ORDERS   orders in the workload (default 10000000, ~10 events each)
//	WEFT_SCALE_CHUNK    orders per INSERT … SELECT of the load (default 250000)
//	WEFT_SEARCH_RUNS    lookups per filter kind (default 40)
func BenchmarkSearch(b *testing.B) {
	ctx := context.Background()
	w := scalegen.Workload{Orders: testenv.EnvInt(b, "WEFT_SCALE_ORDERS", 10_000_000), ChunkOrders: testenv.EnvInt(b, "WEFT_SCALE_CHUNK", 0)}
	runs := testenv.EnvInt(b, "WEFT_SEARCH_RUNS", 40)
	cfg := chstore.Default()
	cfg.Addr, cfg.Database = testenv.ClickHouseAddr(b), w.Database()
	gen, err := scalegen.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer gen.Close()
	out := os.Stdout
	fmt.Fprintf(out, "\n== weft search benchmark: %d orders, database %s on %s\n", w.Orders, w.Database(), strings.Join(cfg.Addr, ","))
	res, err := scalegen.Load(ctx, gen, w, scalegen.Options{Progress: out})
	if err != nil {
		b.Fatal(err)
	}
	store, err := chstore.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if res.Reused {
		materializeSearchIndexes(ctx, b, store)
	}
	for waited := time.Duration(0); waited < 10*time.Minute; waited += 2 * time.Second {
		if n, err := gen.RunningMerges(ctx); err != nil || n == 0 {
			break
		}
		time.Sleep(2 * time.Second)
	}
	m := res.Manifest
	fmt.Fprintf(out, "workload: %d orders, %d events, watermark %s\n", m.Orders, m.Rows, m.Watermark.Format(time.RFC3339))
	printIndexSizes(ctx, b, store, m.Rows)

	s := sampleEvents(ctx, b, store, runs)
	hour := m.Watermark.Add(-time.Hour)
	kinds := []struct {
		name string
		// q is the search of run i; want, when set, must be among the events found.
		q    func(i int) chstore.EventSearch
		want func(i int) string
	}{
		{"order id", func(i int) chstore.EventSearch { return chstore.EventSearch{OrderID: s[i].order} }, func(i int) string { return s[i].event }},
		{"event id", func(i int) chstore.EventSearch { return chstore.EventSearch{EventID: s[i].event} }, func(i int) string { return s[i].event }},
		{"record key", func(i int) chstore.EventSearch { return chstore.EventSearch{RecordKey: s[i].key} }, func(i int) string { return s[i].event }},
		{"header value", func(i int) chstore.EventSearch {
			return chstore.EventSearch{Headers: []chstore.HeaderMatch{{Name: "correlation-id", Value: s[i].correlation}}}
		}, nil},
		{"payload field", func(i int) chstore.EventSearch {
			p, _ := chstore.ParseFieldPath("data.payment_id")
			return chstore.EventSearch{Fields: []chstore.FieldMatch{{Path: p, Value: s[i].payment}}}
		}, nil},
		{"type, last hour", func(i int) chstore.EventSearch { return chstore.EventSearch{Type: s[i].typ, Since: hour} }, nil},
		{"type, all time", func(i int) chstore.EventSearch { return chstore.EventSearch{Type: s[i].typ} }, nil},
		{"service, all time", func(i int) chstore.EventSearch { return chstore.EventSearch{Service: s[i].service} }, nil},
		{"last hour, no filter", func(int) chstore.EventSearch { return chstore.EventSearch{Since: hour} }, nil},
		{"order id + type + time", func(i int) chstore.EventSearch {
			return chstore.EventSearch{OrderID: s[i].order, Type: s[i].typ, Since: s[i].at, Until: s[i].at.Add(time.Millisecond)}
		}, func(i int) string { return s[i].event }},
		{"payload field, broad, last hour", func(i int) chstore.EventSearch {
			p, _ := chstore.ParseFieldPath("data.currency")
			return chstore.EventSearch{Fields: []chstore.FieldMatch{{Path: p, Value: s[i].currency}}, Since: hour}
		}, nil},
	}
	b.ResetTimer()
	fmt.Fprintf(out, "\n%-32s %10s %10s %10s  %s\n", "filter (newest first, 50 a page)", "p50", "p95", "found", "")
	for _, k := range kinds {
		var lat []time.Duration
		found := 0
		for i := -1; i < len(s); i++ { // run -1 warms the caches up and is not counted
			q := k.q(max(i, 0))
			q.Limit = 50
			t0 := time.Now()
			page, err := store.SearchEvents(ctx, q)
			took := time.Since(t0)
			if err != nil {
				b.Fatalf("%s: %v", k.name, err)
			}
			if len(page.Events) == 0 {
				b.Fatalf("%s (run %d, %+v): nothing found", k.name, i, q)
			}
			if k.want != nil && !slices.ContainsFunc(page.Events, func(e chstore.FoundEvent) bool { return e.EventID == k.want(max(i, 0)) }) {
				b.Fatalf("%s (run %d): event %s not found", k.name, i, k.want(max(i, 0)))
			}
			if i >= 0 {
				lat = append(lat, took)
				found += len(page.Events)
			}
		}
		p50, p95 := testenv.Percentiles(lat)
		fmt.Fprintf(out, "%-32s %10s %10s %10.1f\n", k.name, benchMS(p50), benchMS(p95), float64(found)/float64(len(lat)))
		b.ReportMetric(float64(p95.Microseconds())/1000, strings.ReplaceAll(strings.ReplaceAll(k.name, " ", "-"), ",", "")+"-p95-ms")
	}
	// A page after the first, through the cursor, of a broad search.
	var lat []time.Duration
	for i := range s {
		q := chstore.EventSearch{Type: s[i].typ, Limit: 50}
		first, err := store.SearchEvents(ctx, q)
		if err != nil || first.Next == nil {
			b.Fatalf("type %s: %v (next %v)", s[i].typ, err, first.Next)
		}
		q.After = first.Next
		t0 := time.Now()
		if _, err := store.SearchEvents(ctx, q); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	p50, p95 := testenv.Percentiles(lat)
	fmt.Fprintf(out, "%-32s %10s %10s\n", "type, all time, second page", benchMS(p50), benchMS(p95))
}

// searchSample is one stored event whose values the benchmark searches for.
type searchSample struct {
	order, event, key, typ, service, correlation, payment, currency string
	at                                                              time.Time
}

// sampleEvents picks n stored payment events at random (they carry a
// payment id, a currency and a correlation-id header).
func sampleEvents(ctx context.Context, b *testing.B, store *chstore.Store, n int) []searchSample {
	rows, err := testenv.Conn(b).Query(ctx, `
		SELECT order_id, event_id, record_key, event_type, service, headers['correlation-id'],
		       JSONExtractString(payload, 'payment_id'), JSONExtractString(payload, 'currency'), event_time
		FROM `+store.Table("events")+`
		WHERE cityHash64(event_id) % 997 = 1 AND JSONHas(payload, 'payment_id') AND JSONHas(payload, 'currency')
		  AND mapContains(headers, 'correlation-id')
		ORDER BY cityHash64(event_id, ?) LIMIT ?`, time.Now().UnixNano(), n)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out []searchSample
	for rows.Next() {
		var s searchSample
		if err := rows.Scan(&s.order, &s.event, &s.key, &s.typ, &s.service, &s.correlation, &s.payment, &s.currency, &s.at); err != nil {
			b.Fatal(err)
		}
		out = append(out, s)
	}
	if len(out) < n {
		b.Fatalf("sampled %d events, want %d", len(out), n)
	}
	return out
}

// materializeSearchIndexes builds the search indexes (migration 010) of
// the parts a load wrote before the migration existed.
func materializeSearchIndexes(ctx context.Context, b *testing.B, store *chstore.Store) {
	var old uint64
	if err := testenv.Conn(b).QueryRow(ctx, `SELECT count() FROM system.parts WHERE database = ? AND table = 'events' AND active
		AND modification_time < (SELECT max(applied_at) FROM `+store.Table("schema_migrations")+` WHERE name = '010_events_search_indexes.sql')`,
		strings.TrimSuffix(store.Table(""), ".")).Scan(&old); err != nil {
		b.Fatal(err)
	}
	if old == 0 {
		return
	}
	fmt.Fprintf(os.Stdout, "%d parts predate the search indexes: materializing them\n", old)
	t0 := time.Now()
	for _, idx := range []string{"idx_record_key", "idx_header_values", "idx_payload_tokens", "idx_event_time"} {
		if err := testenv.Conn(b).Exec(ctx, "ALTER TABLE "+store.Table("events")+" MATERIALIZE INDEX "+idx+" SETTINGS mutations_sync = 2"); err != nil {
			b.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stdout, "materialized in %s\n", time.Since(t0).Round(time.Second))
}

// printIndexSizes prints the events table's skipping indexes, their size
// on disk and per event, beside the table's.
func printIndexSizes(ctx context.Context, b *testing.B, store *chstore.Store, events int64) {
	rows, err := testenv.Conn(b).Query(ctx, `
		SELECT name, type_full, data_compressed_bytes FROM system.data_skipping_indices
		WHERE database = ? AND table = 'events' ORDER BY name`, strings.TrimSuffix(store.Table(""), "."))
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name, typ string
			bytes     uint64
		)
		if err := rows.Scan(&name, &typ, &bytes); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(os.Stdout, "index %-20s %-28s %10.1f MiB %6.2f bytes/event\n", name, typ, float64(bytes)/(1<<20), float64(bytes)/float64(events))
	}
	var total uint64
	if err := testenv.Conn(b).QueryRow(ctx, "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = ? AND table = 'events'",
		strings.TrimSuffix(store.Table(""), ".")).Scan(&total); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "events table on disk: %.1f MiB, %.1f bytes/event\n", float64(total)/(1<<20), float64(total)/float64(events))
}

func benchMS(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
