package tracing

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

func keyFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "id.key")
	require.NoError(t, os.WriteFile(p, append(testKey, '\n'), 0o600))
	return p
}

// grafanaTraceQuery is the Grafana ClickHouse data source's trace view
// query (its trace query builder on the OpenTelemetry schema), for one trace.
const grafanaTraceQuery = `WITH ? AS trace_id,
 (SELECT min(Start) FROM %[1]s.otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_start,
 (SELECT max(End) + 1 FROM %[1]s.otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_end
SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, ServiceName AS serviceName,
 SpanName AS operationName, Timestamp AS startTime, multiply(Duration, 0.000001) AS duration,
 arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags,
 arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes)) AS serviceTags,
 StatusCode AS statusCode
FROM %[1]s.otel_traces
WHERE traceID = trace_id AND startTime >= trace_start AND startTime <= trace_end
ORDER BY startTime ASC`

type viewSpan struct {
	spanID, parent, service, operation, status string
	tags                                       map[string]string
}

// TestTracerStoresEachSpanOnce: events stored in the real ClickHouse are
// turned into spans once — a later pass, a producer's duplicate and a
// redelivery of the same record add nothing — and the Grafana trace view
// query reads them back with their parents, services and attributes.
func TestTracerStoresEachSpanOnce(t *testing.T) {
	store := testenv.Store(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	clock := clockwork.NewFakeClockAt(t0)
	cfg := Default()
	cfg.Enabled, cfg.ClickHouse, cfg.IDKeyFile = true, true, keyFile(t)
	reg := prometheus.NewRegistry()
	tr, err := New(cfg, store, consistency.NewEngine(store, consistency.Builtin()), Settings{Logger: zerolog.Nop(), Registerer: reg,
		Group: "weft-tap", Settle: time.Second, Clock: clock})
	require.NoError(t, err)
	require.NoError(t, tr.Start(ctx))

	ev := func(topic string, off int64, id, typ, svc, cause string, at time.Time) event.Event {
		return event.Event{Topic: topic, Partition: 0, Offset: off, Key: "o-1", EventID: id, Type: typ, Service: svc, OrderID: "o-1",
			EventTime: at, RecordTime: at, CausationID: cause, CorrelationID: "c-1", PayloadHash: id}
	}
	placed := ev("orders", 1, "e1", "OrderPlaced", "orders", "", t0.Add(-time.Minute))
	placed.TraceID, placed.SpanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	reserved := ev("inventory", 1, "e2", "InventoryReserved", "inventory", "e1", t0.Add(-50*time.Second))
	dup := ev("inventory", 2, "e2", "InventoryReserved", "inventory", "e1", t0.Add(-50*time.Second))
	require.NoError(t, store.InsertEvents(ctx, []event.Event{placed, reserved}, t0.Add(time.Second), ""))

	clock.Advance(3 * time.Second)
	n, err := tr.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	// The same records again (a redelivery), and a producer's duplicate.
	require.NoError(t, store.InsertEvents(ctx, []event.Event{placed, dup}, t0.Add(4*time.Second), "redelivery"))
	clock.Advance(3 * time.Second)
	n, err = tr.Pass(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "a redelivery and a duplicate export nothing")
	// Once the first copies are merged away the redelivery looks new to
	// the events table; otel_traces remembers the span.
	testenv.Mutate(t, "OPTIMIZE TABLE "+store.Table("events")+" FINAL")
	require.NoError(t, store.SaveDetectorState(ctx, stateName, `{"cursor_ms":`+itoa(t0.UnixMilli())+`}`, clock.Now()))
	require.NoError(t, tr.Start(ctx)) // restarted from an older cursor
	clock.Advance(time.Second)
	n, err = tr.Pass(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "spans already in otel_traces are not built again")
	assert.Equal(t, 2.0, testutil.ToFloat64(tr.m.spans.WithLabelValues(OutcomeStored)))

	ids := NewIDs(testKey)
	traceID := ids.TraceID("o-1").String()
	rows, err := testenv.Conn(t).Query(ctx, fmt.Sprintf(grafanaTraceQuery, strings.TrimSuffix(store.Table(""), ".")), traceID)
	require.NoError(t, err)
	defer rows.Close()
	var got []viewSpan
	for rows.Next() {
		var tid, sid, parent, svc, op, status string
		var start time.Time
		var dur float64
		var tags, svcTags []map[string]string
		require.NoError(t, rows.Scan(&tid, &sid, &parent, &svc, &op, &start, &dur, &tags, &svcTags, &status))
		s := viewSpan{spanID: sid, parent: parent, service: svc, operation: op, status: status, tags: map[string]string{}}
		for _, kv := range tags {
			s.tags[kv["key"]] = kv["value"]
		}
		got = append(got, s)
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 2, "one row per event in the trace view")
	// Both start at the order's first event (a span runs from its cause).
	sort.Slice(got, func(i, j int) bool { return got[i].parent < got[j].parent })
	e1, e2 := ids.SpanID("o-1", "e1").String(), ids.SpanID("o-1", "e2").String()
	assert.Equal(t, viewSpan{spanID: e1, service: "orders", operation: "send orders", status: "STATUS_CODE_UNSET", tags: got[0].tags}, got[0])
	assert.Equal(t, viewSpan{spanID: e2, parent: e1, service: "inventory", operation: "send inventory", status: "STATUS_CODE_UNSET", tags: got[1].tags}, got[1])
	assert.Equal(t, "kafka", got[1].tags[AttrMessagingSystem])
	assert.Equal(t, "0", got[1].tags[AttrDestinationPartitionID])
	assert.Equal(t, "1", got[1].tags[AttrKafkaOffset])
	assert.Equal(t, "e2", got[1].tags[AttrMessageID])
	assert.Equal(t, "c-1", got[1].tags[AttrConversationID])
	assert.Equal(t, "weft-tap", got[1].tags[AttrConsumerGroupName])

	var linkTrace []string
	var kind string
	require.NoError(t, testenv.Conn(t).QueryRow(ctx, "SELECT `Links.TraceId`, SpanKind FROM "+store.Table("otel_traces")+" WHERE SpanId = ?", e1).Scan(&linkTrace, &kind))
	assert.Equal(t, []string{"4bf92f3577b34da6a3ce929d0e0e4736"}, linkTrace)
	assert.Equal(t, "SPAN_KIND_PRODUCER", kind)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// unsampledTracer is a started Tracer on a fake clock at t0 that exports
// to jg with sampling ratio 0 (only what a finding promotes goes out), its
// exporter running until ctx ends or the test does; with changes the
// config first.
func unsampledTracer(ctx context.Context, t *testing.T, store *chstore.Store, jg testenv.JaegerServer, with func(*Config)) (*Tracer, *clockwork.FakeClock, time.Time) {
	t.Helper()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	clock := clockwork.NewFakeClockAt(t0)
	cfg := Default()
	zero := 0.0
	cfg.Enabled, cfg.IDKeyFile, cfg.Endpoint, cfg.Sampling.Ratio = true, keyFile(t), jg.OTLPHTTP, &zero
	with(&cfg)
	tr, err := New(cfg, store, consistency.NewEngine(store, consistency.Builtin()), Settings{Logger: zerolog.Nop(),
		Registerer: prometheus.NewRegistry(), Settle: time.Second, Clock: clock})
	require.NoError(t, err)
	require.NoError(t, tr.Start(ctx))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { tr.exp.Run(runCtx, time.Second); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	return tr, clock, t0
}

// TestTracerExportsOrdersWithFindings: with sampling.ratio 0 nothing is
// exported, until the detector opens a finding on an order: then its spans
// stored so far reach a real Jaeger at once, its latest marked with the
// finding, and its later spans follow; an order without a finding never
// does.
func TestTracerExportsOrdersWithFindings(t *testing.T) {
	jg := testenv.Jaeger(t)
	store := testenv.Store(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr, clock, t0 := unsampledTracer(ctx, t, store, jg, func(*Config) {})
	require.True(t, tr.WantsFindings())

	ev := func(order, topic string, off int64, id, typ, svc, cause string, at time.Time) event.Event {
		return event.Event{Topic: topic, Offset: off, Key: order, EventID: id, Type: typ, Service: svc, OrderID: order,
			EventTime: at, RecordTime: at, CausationID: cause, PayloadHash: id}
	}
	require.NoError(t, store.InsertEvents(ctx, []event.Event{
		ev("o-ok", "orders", 1, "a1", "OrderPlaced", "orders", "", t0.Add(-time.Minute)),
		ev("o-bad", "orders", 2, "b1", "OrderPlaced", "orders", "", t0.Add(-time.Minute)),
		ev("o-bad", "inventory", 1, "b2", "InventoryReserved", "inventory", "b1", t0.Add(-50*time.Second)),
	}, t0.Add(time.Second), ""))
	clock.Advance(3 * time.Second)
	n, err := tr.Pass(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	assert.Equal(t, 3.0, testutil.ToFloat64(tr.m.spans.WithLabelValues(OutcomeUnsampled)), "ratio 0: nothing exported")

	tr.OnFinding([]consistency.Finding{{ID: "f1", Kind: "stuck", OrderID: "o-bad", Status: consistency.StatusOpen, Summary: "no payment", FirstSeen: t0}})
	require.NoError(t, store.InsertEvents(ctx, []event.Event{
		ev("o-bad", "payments", 1, "b3", "PaymentRequested", "payments", "b2", t0.Add(-40*time.Second)),
		ev("o-ok", "inventory", 2, "a2", "InventoryReserved", "inventory", "a1", t0.Add(-40*time.Second)),
	}, t0.Add(4*time.Second), ""))
	clock.Advance(3 * time.Second)
	n, err = tr.Pass(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)

	bad := tr.b.IDs.TraceID("o-bad").String()
	var got ptrace.Traces
	require.Eventually(t, func() bool {
		got = testenv.JaegerTrace(t, jg.Query, bad)
		return got.SpanCount() >= 4
	}, 60*time.Second, 200*time.Millisecond, "o-bad's spans in jaeger")
	assert.Equal(t, 4, got.SpanCount(), "each span once: two from before the finding, one after, and the finding's")
	spans, svc := spansByID(got)
	marked := spans[tr.b.IDs.SpanID("o-bad", "b2")]
	assert.Equal(t, ptrace.StatusCodeError, marked.Status().Code(), "the latest span when the finding opened carries it")
	require.Equal(t, 1, marked.Events().Len())
	assert.Equal(t, "weft.finding", marked.Events().At(0).Name())
	fspan := spans[tr.b.IDs.FindingSpanID("o-bad", "f1")]
	assert.Equal(t, "weft.finding stuck", fspan.Name())
	assert.Equal(t, FindingService, svc[fspan.SpanID()])
	assert.Equal(t, tr.b.IDs.SpanID("o-bad", "b3"), fspan.ParentSpanID(), "under the order's latest event stored when the pass ran")
	assert.Equal(t, ptrace.StatusCodeError, fspan.Status().Code())
	assert.Equal(t, t0, fspan.EndTimestamp().AsTime(), "it ends when the finding was first seen")
	assert.Zero(t, testenv.JaegerTrace(t, jg.Query, tr.b.IDs.TraceID("o-ok").String()).SpanCount(), "an order without a finding stays unsampled")
}

// TestTracerCatchesUpPageByPage: a backlog larger than a pass reads is
// exported page by page, each event's span once, also where a page ends
// inside one millisecond of stored rows.
func TestTracerCatchesUpPageByPage(t *testing.T) {
	store := testenv.Store(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	clock := clockwork.NewFakeClockAt(t0)
	tr := startStoringTracer(ctx, t, store, clock)
	tr.limit = 4

	// Three inserts of 3, 5 and 2 events, each stamped with one
	// millisecond: pages of 4 cut inside the first two.
	var want []string
	off := int64(0)
	for i, size := range []int{3, 5, 2} {
		var evs []event.Event
		for j := 0; j < size; j++ {
			off++
			id := fmt.Sprintf("e%d-%d", i, j)
			order := fmt.Sprintf("o-%d", j%3)
			evs = append(evs, event.Event{Topic: "orders", Offset: off, Key: order, EventID: id, Type: "OrderPlaced", Service: "orders",
				OrderID: order, EventTime: t0.Add(-time.Minute), RecordTime: t0, PayloadHash: id})
			want = append(want, id)
		}
		require.NoError(t, store.InsertEvents(ctx, evs, t0.Add(time.Duration(i+1)*time.Millisecond), fmt.Sprint("batch", i)))
	}
	clock.Advance(3 * time.Second)
	passes, total := 0, 0
	for more := true; more; passes++ {
		var n int
		var err error
		n, more, err = tr.pass(ctx)
		require.NoError(t, err)
		total += n
		require.Less(t, passes, 20, "the backlog is caught up")
	}
	assert.Equal(t, len(want), total)
	assert.Greater(t, passes, 2, "more than one page")
	var got []string
	rows, err := testenv.Conn(t).Query(ctx, "SELECT SpanAttributes['messaging.message.id'] FROM "+store.Table("otel_traces")+" ORDER BY 1")
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		got = append(got, id)
	}
	rows.Close()
	sort.Strings(want)
	assert.Equal(t, want, got, "every event's span, once")
}

// TestTracerTakesALargeBatch: one tap batch of 10,000 events is stamped
// with one millisecond, so one pass takes it whole. Its lookup of spans
// already stored once overflowed ClickHouse's max_query_size, failing
// every pass from there on (the Tracer stuck behind the batch for good);
// now every span is stored, and a pass repeated from an older cursor
// finds each of them stored and adds none.
func TestTracerTakesALargeBatch(t *testing.T) {
	store := testenv.Store(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	clock := clockwork.NewFakeClockAt(t0)
	tr := startStoringTracer(ctx, t, store, clock)

	const events = 10_000
	evs := make([]event.Event, events)
	for i := range evs {
		id, order := fmt.Sprintf("e-%d", i), fmt.Sprintf("o-%d", i/2)
		evs[i] = event.Event{Topic: "orders", Offset: int64(i), Key: order, EventID: id, Type: "OrderPlaced", Service: "orders",
			OrderID: order, EventTime: t0.Add(-time.Minute), RecordTime: t0, PayloadHash: id}
	}
	require.NoError(t, store.InsertEvents(ctx, evs, t0.Add(time.Millisecond), "one batch"))
	clock.Advance(3 * time.Second)
	n, err := tr.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, events, n)
	var stored uint64
	require.NoError(t, testenv.Conn(t).QueryRow(ctx, "SELECT count() FROM "+store.Table("otel_traces")).Scan(&stored))
	assert.Equal(t, uint64(events), stored)

	require.NoError(t, store.SaveDetectorState(ctx, stateName, `{"cursor_ms":`+itoa(t0.UnixMilli())+`}`, clock.Now()))
	require.NoError(t, tr.Start(ctx))
	clock.Advance(time.Second)
	n, err = tr.Pass(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "every span of the batch is found stored")
}

// startStoringTracer starts a Tracer that stores spans in ClickHouse (no
// OTLP export) on clock, settling for a second.
func startStoringTracer(ctx context.Context, t *testing.T, store *chstore.Store, clock clockwork.Clock) *Tracer {
	t.Helper()
	cfg := Default()
	cfg.Enabled, cfg.ClickHouse, cfg.IDKeyFile = true, true, keyFile(t)
	tr, err := New(cfg, store, consistency.NewEngine(store, consistency.Builtin()), Settings{Logger: zerolog.Nop(),
		Registerer: prometheus.NewRegistry(), Settle: time.Second, Clock: clock})
	require.NoError(t, err)
	require.NoError(t, tr.Start(ctx))
	return tr
}

// TestTracerByCorrelationIDExportsEachSpanOnce: with trace_by
// correlation_id and ratio 0, two orders share a checkout's trace. A
// finding on the first exports its spans stored so far and promotes the
// trace, so both orders' later spans follow as they come; a finding on the
// second then exports only its spans from before the promotion, and a
// second finding on the first exports no event span again: Jaeger holds
// each of the four event spans once, a span per finding, and nothing of
// the order without a finding.
func TestTracerByCorrelationIDExportsEachSpanOnce(t *testing.T) {
	jg := testenv.Jaeger(t)
	store := testenv.Store(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr, clock, t0 := unsampledTracer(ctx, t, store, jg, func(c *Config) { c.TraceBy, c.ClickHouse = TraceByCorrelation, true })

	ev := func(order, corr, topic string, off int64, id, typ, cause string, at time.Time) event.Event {
		return event.Event{Topic: topic, Offset: off, Key: order, EventID: id, Type: typ, Service: topic, OrderID: order,
			EventTime: at, RecordTime: at, CausationID: cause, CorrelationID: corr, PayloadHash: id}
	}
	pass := func(want int) {
		t.Helper()
		clock.Advance(3 * time.Second)
		n, err := tr.Pass(ctx)
		require.NoError(t, err)
		require.Equal(t, want, n)
	}
	stuck := func(id, order string) {
		tr.OnFinding([]consistency.Finding{{ID: id, Kind: "stuck", OrderID: order, Status: consistency.StatusOpen, Summary: "waiting", FirstSeen: clock.Now()}})
	}
	require.NoError(t, store.InsertEvents(ctx, []event.Event{
		ev("o-x", "cart-1", "orders", 1, "x1", "OrderPlaced", "", t0.Add(-time.Minute)),
		ev("o-y", "cart-1", "orders", 2, "y1", "OrderPlaced", "", t0.Add(-time.Minute)),
		ev("o-z", "", "orders", 3, "z1", "OrderPlaced", "", t0.Add(-time.Minute)),
	}, t0.Add(time.Second), ""))
	pass(3)
	stuck("f1", "o-x")
	require.NoError(t, store.InsertEvents(ctx, []event.Event{
		ev("o-x", "cart-1", "inventory", 1, "x2", "InventoryReserved", "x1", t0.Add(-50*time.Second)),
		ev("o-y", "cart-1", "inventory", 2, "y2", "InventoryReserved", "y1", t0.Add(-50*time.Second)),
	}, t0.Add(4*time.Second), ""))
	pass(2) // x1 for the finding; x2 and y2 as they come, the trace promoted
	stuck("f2", "o-y")
	stuck("f3", "o-x")
	pass(0) // y1 for the finding; y2 was sent; o-x was exported already

	cart := tr.b.IDs.TraceID("cart-1").String()
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(tr.m.spans.WithLabelValues(OutcomeExported)) >= 7 && tr.exp.queued.Load() == 0
	}, time.Minute, 100*time.Millisecond, "four event spans and three finding spans exported")
	var got ptrace.Traces
	require.Eventually(t, func() bool {
		got = testenv.JaegerTrace(t, jg.Query, cart)
		return got.SpanCount() >= 7
	}, 60*time.Second, 200*time.Millisecond, "the checkout's spans in jaeger")
	spans, svc := spansByID(got)
	assert.Equal(t, 7, got.SpanCount(), "each span once")
	for _, id := range [][2]string{{"o-x", "f1"}, {"o-y", "f2"}, {"o-x", "f3"}} {
		assert.Equal(t, FindingService, svc[tr.b.IDs.FindingSpanID(id[0], id[1])], "finding %s's span", id[1])
	}
	for _, id := range [][2]string{{"o-x", "x1"}, {"o-x", "x2"}, {"o-y", "y1"}, {"o-y", "y2"}} {
		assert.Contains(t, spans, tr.b.IDs.SpanID(id[0], id[1]), "%s/%s in the checkout's trace", id[0], id[1])
	}
	assert.Equal(t, 7.0, testutil.ToFloat64(tr.m.spans.WithLabelValues(OutcomeExported)))
	assert.Zero(t, testenv.JaegerTrace(t, jg.Query, tr.b.IDs.TraceID("o-z").String()).SpanCount(), "an order without a finding stays unsampled")

	var findings, all uint64
	require.NoError(t, testenv.Conn(t).QueryRow(ctx, "SELECT countIf(SpanName LIKE 'weft.finding %' AND StatusCode = 'STATUS_CODE_ERROR' AND ServiceName = 'weft'), count() FROM "+
		store.Table("otel_traces")).Scan(&findings, &all))
	assert.Equal(t, uint64(3), findings, "the finding spans in otel_traces")
	assert.Equal(t, uint64(8), all, "and every event's span, sampled or not")
}
