package tracing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
)

var testKey = []byte("0123456789abcdef-test-key")

func TestIDsAreDeterministicAndKeyed(t *testing.T) {
	a, b := NewIDs(testKey), NewIDs(testKey)
	assert.Equal(t, a.TraceID("o-1"), b.TraceID("o-1"), "same key, same order: same trace")
	assert.NotEqual(t, a.TraceID("o-1"), a.TraceID("o-2"))
	assert.NotEqual(t, a.TraceID("o-1"), NewIDs([]byte("another-key-of-16+")).TraceID("o-1"), "the key changes the id")
	assert.Equal(t, a.SpanID("o-1", "ev-1"), b.SpanID("o-1", "ev-1"))
	assert.NotEqual(t, a.SpanID("o-1", "ev-1"), a.SpanID("o-2", "ev-1"), "span ids are per order")
	// Not a bare hash of the order id: parts are separated, so "o-1"+"x"
	// and "o-1x" differ.
	assert.NotEqual(t, a.SpanID("o-1", "xev"), a.SpanID("o-1x", "ev"))
}

func row(order, topic string, off int64, id, typ, svc, cause string, at time.Time) chstore.TraceEventRow {
	return chstore.TraceEventRow{OrderID: order, Topic: topic, Partition: 1, Offset: off, Key: order, EventID: id, Type: typ,
		Service: svc, EventTime: at, RecordTime: at, FirstIngestedAt: at.Add(time.Second), CausationID: cause, CorrelationID: "corr-" + order}
}

func chainOf(rows []chstore.TraceEventRow, parents map[string]string, via string) []consistency.ChainEvent {
	var out []consistency.ChainEvent
	for _, r := range rows {
		out = append(out, consistency.ChainEvent{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, EventID: r.EventID,
			Type: r.Type, Service: r.Service, EventTime: r.EventTime, IngestedAt: r.FirstIngestedAt, CausationID: r.CausationID,
			Parent: parents[r.EventID], Via: via})
	}
	return out
}

// spansByID flattens td with each span's service.
func spansByID(td ptrace.Traces) (map[pcommon.SpanID]ptrace.Span, map[pcommon.SpanID]string) {
	spans, svc := map[pcommon.SpanID]ptrace.Span{}, map[pcommon.SpanID]string{}
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		name, _ := rs.Resource().Attributes().Get(AttrServiceName)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				s := ss.Spans().At(k)
				spans[s.SpanID()], svc[s.SpanID()] = s, name.Str()
			}
		}
	}
	return spans, svc
}

func TestBuildSpans(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	placed := row("o-1", "orders", 7, "ev-placed", "OrderPlaced", "orders", "", t0)
	placed.TraceID, placed.SpanID, placed.TraceState = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "vendor=1"
	reserved := row("o-1", "inventory", 3, "ev-res", "InventoryReserved", "inventory", "ev-placed", t0.Add(2*time.Second))
	// A producer's retry: the same event in another record, stored later.
	retry := row("o-1", "inventory", 4, "ev-res", "InventoryReserved", "inventory", "ev-placed", t0.Add(2*time.Second))
	retry.FirstIngestedAt = reserved.FirstIngestedAt.Add(time.Second)
	// No causation id: the chain infers its parent from the workflow.
	paid := row("o-1", "payments", 9, "ev-paid", "PaymentAuthorized", "payments", "", t0.Add(5*time.Second))
	rows := []chstore.TraceEventRow{placed, reserved, retry, paid}
	chain := chainOf(rows, map[string]string{"ev-res": "ev-placed", "ev-paid": "ev-res"}, consistency.ViaWorkflow)

	evs := Assemble(rows, chain)
	require.Len(t, evs, 4)
	assert.False(t, evs[1].Duplicate)
	assert.True(t, evs[2].Duplicate, "the later record of ev-res is a duplicate")
	assert.Equal(t, []string{"inventory/1@4"}, evs[1].Copies)
	assert.Equal(t, consistency.ViaCausation, evs[1].Via, "a causation id is the parent, whatever the chain says")
	assert.Equal(t, consistency.ViaWorkflow, evs[3].Via)

	b := Builder{IDs: NewIDs(testKey), Group: "weft-tap"}
	td := ptrace.NewTraces()
	fs := map[string][]Finding{"o-1": {{ID: "f1", Kind: "stuck", Summary: "waiting on fulfillment", Reason: "no-answer", At: t0.Add(time.Hour)}}}
	require.Equal(t, 3, b.Build(td, evs, fs), "one span per event, the duplicate folded in")
	require.Equal(t, 3, td.ResourceSpans().Len(), "one resource per emitting service")
	spans, svc := spansByID(td)

	ids := b.IDs
	sPlaced, sRes, sPaid := spans[ids.SpanID("o-1", "ev-placed")], spans[ids.SpanID("o-1", "ev-res")], spans[ids.SpanID("o-1", "ev-paid")]
	for _, s := range []ptrace.Span{sPlaced, sRes, sPaid} {
		assert.Equal(t, ids.TraceID("o-1"), s.TraceID())
		assert.Equal(t, ptrace.SpanKindProducer, s.Kind())
	}
	assert.Equal(t, "orders", svc[sPlaced.SpanID()])
	assert.Equal(t, "inventory", svc[sRes.SpanID()])
	assert.True(t, sPlaced.ParentSpanID().IsEmpty(), "the first event is the root")
	assert.Equal(t, sPlaced.SpanID(), sRes.ParentSpanID(), "parent from the causation id")
	assert.Equal(t, sRes.SpanID(), sPaid.ParentSpanID(), "parent from the chain when there is no causation id")
	assert.Equal(t, "send inventory", sRes.Name())
	assert.Equal(t, t0, sRes.StartTimestamp().AsTime(), "a span runs from its cause")
	assert.Equal(t, t0.Add(2*time.Second), sRes.EndTimestamp().AsTime())

	want := map[string]any{
		AttrMessagingSystem: "kafka", AttrOperationName: "send", AttrOperationType: "send",
		AttrDestinationName: "inventory", AttrDestinationPartitionID: "1", AttrKafkaOffset: int64(3),
		AttrKafkaMessageKey: "o-1", AttrMessageID: "ev-res", AttrConversationID: "corr-o-1",
		AttrConsumerGroupName: "weft-tap", AttrOrderID: "o-1", AttrEventType: "InventoryReserved",
		AttrParentVia: "explicit", AttrCausationID: "ev-placed",
	}
	assert.Equal(t, want, sRes.Attributes().AsRaw())
	require.Equal(t, 1, sRes.Events().Len())
	assert.Equal(t, "weft.redelivered", sRes.Events().At(0).Name())

	require.Equal(t, 1, sPlaced.Links().Len(), "the producer's traceparent is a link")
	l := sPlaced.Links().At(0)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", l.TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", l.SpanID().String())
	assert.Equal(t, "vendor=1", l.TraceState().AsRaw())
	assert.Equal(t, 0, sRes.Links().Len())

	// The finding marks the latest event's span.
	assert.Equal(t, ptrace.StatusCodeError, sPaid.Status().Code())
	assert.Contains(t, sPaid.Status().Message(), "stuck")
	require.Equal(t, 1, sPaid.Events().Len())
	kind, _ := sPaid.Events().At(0).Attributes().Get("weft.finding.kind")
	assert.Equal(t, "stuck", kind.Str())
	assert.Equal(t, ptrace.StatusCodeUnset, sRes.Status().Code())
}

func TestCausationOutOfOrderStillAssembles(t *testing.T) {
	// The effect stored before its cause: its parent span id is the one
	// the cause will get, so the trace assembles once both are exported.
	t0 := time.Now().UTC()
	effect := row("o-9", "payments", 1, "ev-2", "PaymentAuthorized", "payments", "ev-1", t0)
	b := Builder{IDs: NewIDs(testKey)}
	td := ptrace.NewTraces()
	b.Build(td, Assemble([]chstore.TraceEventRow{effect}, nil), nil)
	td2 := ptrace.NewTraces()
	cause := row("o-9", "orders", 1, "ev-1", "OrderPlaced", "orders", "", t0.Add(-time.Second))
	b.Build(td2, Assemble([]chstore.TraceEventRow{cause}, nil), nil)
	s1, _ := spansByID(td)
	s2, _ := spansByID(td2)
	assert.Equal(t, b.IDs.SpanID("o-9", "ev-1"), s1[b.IDs.SpanID("o-9", "ev-2")].ParentSpanID())
	_, ok := s2[b.IDs.SpanID("o-9", "ev-1")]
	assert.True(t, ok)
}

func TestSampledByTraceID(t *testing.T) {
	ids := NewIDs(testKey)
	n := 0
	for i := 0; i < 10000; i++ {
		id := ids.TraceID("o-" + string(rune('a'+i%26)) + time.Duration(i).String())
		if Sampled(id, 0.1) {
			n++
		}
		assert.Equal(t, Sampled(id, 0.1), Sampled(id, 0.1))
		assert.True(t, Sampled(id, 1))
		assert.False(t, Sampled(id, 0))
	}
	assert.InDelta(t, 1000, n, 150, "about a tenth of the orders")
}

func TestConfigValidate(t *testing.T) {
	c := Default()
	require.NoError(t, c.Validate())
	c.Enabled = true
	require.ErrorContains(t, c.Validate(), "spans go nowhere")
	c.Endpoint = "localhost:4318"
	bad := 1.5
	c.Sampling.Ratio = &bad
	c.QueueSpans = 0
	c.TraceBy = "checkout"
	c.BacklogInterval = -time.Second
	err := c.Validate()
	require.Error(t, err)
	for _, key := range []string{"id_key_file", "endpoint", "sampling.ratio", "queue_spans", "trace_by", "backlog_interval"} {
		assert.Contains(t, err.Error(), key)
	}
}

// TestTraceByCorrelationID: with trace_by correlation_id, an event with a
// correlation id is in that id's trace, shared by the orders that carry
// it; one without stays in its order's trace; span and parent ids are the
// same as by order, and by order every event is in its order's trace.
func TestTraceByCorrelationID(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	a1 := row("o-a", "orders", 1, "a1", "OrderPlaced", "orders", "", t0)
	a2 := row("o-a", "payments", 2, "a2", "PaymentAuthorized", "payments", "a1", t0.Add(time.Second))
	b1 := row("o-b", "orders", 3, "b1", "OrderPlaced", "orders", "", t0)
	c1 := row("o-c", "orders", 4, "c1", "OrderPlaced", "orders", "", t0)
	a1.CorrelationID, a2.CorrelationID, b1.CorrelationID, c1.CorrelationID = "checkout-7", "checkout-7", "checkout-7", ""
	var evs []Event
	for _, rows := range [][]chstore.TraceEventRow{{a1, a2}, {b1}, {c1}} {
		evs = append(evs, Assemble(rows, chainOf(rows, nil, ""))...)
	}

	cfg := Default()
	cfg.TraceBy = TraceByCorrelation
	b := cfg.Builder(testKey, "g")
	require.True(t, b.ByCorrelation)
	td := ptrace.NewTraces()
	require.Equal(t, 4, b.Build(td, evs, nil))
	spans, _ := spansByID(td)
	ids := b.IDs
	checkout := ids.TraceID("checkout-7")
	for _, id := range []pcommon.SpanID{ids.SpanID("o-a", "a1"), ids.SpanID("o-a", "a2"), ids.SpanID("o-b", "b1")} {
		assert.Equal(t, checkout, spans[id].TraceID(), "the correlation id's trace")
	}
	assert.Equal(t, ids.TraceID("o-c"), spans[ids.SpanID("o-c", "c1")].TraceID(), "no correlation id: the order's trace")
	assert.Equal(t, ids.SpanID("o-a", "a1"), spans[ids.SpanID("o-a", "a2")].ParentSpanID())

	byOrder := Default().Builder(testKey, "g")
	require.False(t, byOrder.ByCorrelation)
	td = ptrace.NewTraces()
	byOrder.Build(td, evs, nil)
	spans, _ = spansByID(td)
	assert.Equal(t, ids.TraceID("o-b"), spans[ids.SpanID("o-b", "b1")].TraceID(), "by order, the order's trace")
	assert.Equal(t, ids.TraceID("o-a"), spans[ids.SpanID("o-a", "a2")].TraceID())
}
