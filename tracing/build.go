package tracing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
)

// ScopeName is the instrumentation scope of every span weft builds.
const ScopeName = "github.com/weft-sh/weft/tracing"

// Attribute names: the OpenTelemetry messaging semantic conventions
// (Kafka), then weft's own.
const (
	AttrMessagingSystem        = "messaging.system"
	AttrOperationName          = "messaging.operation.name"
	AttrOperationType          = "messaging.operation.type"
	AttrDestinationName        = "messaging.destination.name"
	AttrDestinationPartitionID = "messaging.destination.partition.id"
	AttrKafkaOffset            = "messaging.kafka.offset"
	AttrKafkaMessageKey        = "messaging.kafka.message.key"
	AttrMessageID              = "messaging.message.id"
	AttrConversationID         = "messaging.message.conversation_id"
	AttrConsumerGroupName      = "messaging.consumer.group.name"
	AttrServiceName            = "service.name"

	AttrOrderID     = "weft.order.id"
	AttrEventType   = "weft.event.type"
	AttrParentVia   = "weft.parent.via"
	AttrCausationID = "weft.causation.id"
)

// IDs derives trace and span ids with a keyed hash (HMAC-SHA-256): the
// same order and event always give the same ids, and the ids say nothing
// about the order id to whoever lacks the key.
type IDs struct{ key []byte }

// NewIDs returns the derivation under key.
func NewIDs(key []byte) IDs { return IDs{key: append([]byte(nil), key...)} }

func (x IDs) sum(parts ...string) []byte {
	m := hmac.New(sha256.New, x.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// TraceID is the trace of an order, or of a correlation id
// (tracing.trace_by): one derivation, so a correlation id that is an
// order's id gives that order's trace.
func (x IDs) TraceID(key string) pcommon.TraceID {
	var id pcommon.TraceID
	copy(id[:], x.sum("trace", key))
	if id.IsEmpty() {
		id[15] = 1
	}
	return id
}

// SpanID is the span of an order's event (by event id).
func (x IDs) SpanID(orderID, eventID string) pcommon.SpanID {
	var id pcommon.SpanID
	copy(id[:], x.sum("span", orderID, eventID))
	if id.IsEmpty() {
		id[7] = 1
	}
	return id
}

// FindingSpanID is the span of a finding about an order: one per finding,
// so a restart or a second pass never makes another.
func (x IDs) FindingSpanID(orderID, findingID string) pcommon.SpanID {
	var id pcommon.SpanID
	copy(id[:], x.sum("finding", orderID, findingID))
	if id.IsEmpty() {
		id[7] = 1
	}
	return id
}

// Event is one stored record of an order, with its place in the order's
// causal chain (consistency.Engine.Chain).
type Event struct {
	chstore.TraceEventRow
	// Parent is the event id of the event this one hangs under in the
	// chain, "" for a root; Via how that edge was found (explicit, trace,
	// inferred); ParentTime the parent's event time.
	Parent     string
	Via        string
	ParentTime time.Time
	// Duplicate is set on a record whose event id an earlier stored
	// record of the order already has (a producer's retry, a replay): its
	// span is that record's, not a second one.
	Duplicate bool
	// Copies are the coordinates (topic/partition@offset) of the
	// duplicates of this event, in a whole order's build.
	Copies []string
}

func coord(topic string, partition int32, offset int64) string {
	return topic + "/" + strconv.Itoa(int(partition)) + "@" + strconv.FormatInt(offset, 10)
}

// Assemble places rows (some or all records of one order) in the order's
// chain: parent, how it was found, and whether a row repeats an event an
// earlier record already carries. chain is the order's whole chain.
func Assemble(rows []chstore.TraceEventRow, chain []consistency.ChainEvent) []Event {
	byCoord := make(map[string]consistency.ChainEvent, len(chain))
	byID := make(map[string]consistency.ChainEvent, len(chain))
	// first is, per event id, the coordinates of the record stored first.
	first := map[string]consistency.ChainEvent{}
	for _, c := range chain {
		byCoord[coord(c.Topic, c.Partition, c.Offset)] = c
		if _, ok := byID[c.EventID]; !ok {
			byID[c.EventID] = c
		}
		if f, ok := first[c.EventID]; !ok || earlier(c, f) {
			first[c.EventID] = c
		}
	}
	out := make([]Event, 0, len(rows))
	for _, r := range rows {
		e := Event{TraceEventRow: r}
		if c, ok := byCoord[coord(r.Topic, r.Partition, r.Offset)]; ok {
			e.EventID = c.EventID // a replay's identity is its original's (consistency)
			e.Parent, e.Via = c.Parent, c.Via
			if f := first[c.EventID]; coord(f.Topic, f.Partition, f.Offset) != coord(c.Topic, c.Partition, c.Offset) {
				e.Duplicate = true
			}
		}
		if e.CausationID != "" && e.CausationID != e.EventID {
			e.Parent, e.Via = e.CausationID, consistency.ViaCausation
		}
		if p, ok := byID[e.Parent]; ok && e.Parent != "" {
			e.ParentTime = p.EventTime
		}
		out = append(out, e)
	}
	// A whole order's build lists each event's copies on its span.
	kept := map[string]int{}
	for i, e := range out {
		if !e.Duplicate {
			kept[e.EventID] = i
		}
	}
	for _, e := range out {
		if i, ok := kept[e.EventID]; ok && e.Duplicate {
			out[i].Copies = append(out[i].Copies, coord(e.Topic, e.Partition, e.Offset))
		}
	}
	return out
}

// earlier orders two records of one event: stored first, then by coordinates.
func earlier(a, b consistency.ChainEvent) bool {
	if !a.IngestedAt.Equal(b.IngestedAt) {
		return a.IngestedAt.Before(b.IngestedAt)
	}
	if a.Topic != b.Topic {
		return a.Topic < b.Topic
	}
	if a.Partition != b.Partition {
		return a.Partition < b.Partition
	}
	return a.Offset < b.Offset
}

// Builder turns events into OTLP spans.
type Builder struct {
	IDs IDs
	// Group is the consumer group weft's tap reads with
	// (messaging.consumer.group.name on every span).
	Group string
	// ByCorrelation puts an event with a correlation id in that id's
	// trace rather than its order's (tracing.trace_by: correlation_id).
	ByCorrelation bool
}

// TraceID is the trace of an order's event: the order's, or with
// ByCorrelation the trace of the event's correlation id when it has one.
// Either derives from the event alone, so a span's trace never depends on
// which of its order's events were stored first.
func (b Builder) TraceID(orderID, correlationID string) pcommon.TraceID {
	if b.ByCorrelation && correlationID != "" {
		return b.IDs.TraceID(correlationID)
	}
	return b.IDs.TraceID(orderID)
}

// Finding is what a span says of a finding about its order.
type Finding struct {
	ID, Kind, Summary, Reason string
	At                        time.Time
}

// FindingsOf converts the detector's findings.
func FindingsOf(fs []consistency.Finding) []Finding {
	out := make([]Finding, 0, len(fs))
	for _, f := range fs {
		out = append(out, Finding{ID: f.ID, Kind: f.Kind, Summary: f.Summary, Reason: f.Reason, At: f.FirstSeen})
	}
	return out
}

// Build appends the spans of evs (skipping duplicates) to td, one
// ResourceSpans per emitting service, and returns how many it added.
// findings of the order (whole-order builds only) become span events and
// an error status on the span of its latest event.
func (b Builder) Build(td ptrace.Traces, evs []Event, findings map[string][]Finding) int {
	sorted := make([]Event, 0, len(evs))
	for _, e := range evs {
		if !e.Duplicate {
			sorted = append(sorted, e)
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		a, c := sorted[i], sorted[j]
		if a.OrderID != c.OrderID {
			return a.OrderID < c.OrderID
		}
		if !a.EventTime.Equal(c.EventTime) {
			return a.EventTime.Before(c.EventTime)
		}
		return coord(a.Topic, a.Partition, a.Offset) < coord(c.Topic, c.Partition, c.Offset)
	})
	last := map[string]int{} // order → index in sorted of its latest event
	for i, e := range sorted {
		last[e.OrderID] = i
	}
	scopes := map[string]ptrace.SpanSlice{}
	for i, e := range sorted {
		spans, ok := scopes[e.Service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr(AttrServiceName, serviceName(e.Service))
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(ScopeName)
			spans = ss.Spans()
			scopes[e.Service] = spans
		}
		s := spans.AppendEmpty()
		b.span(s, e)
		if fs := findings[e.OrderID]; len(fs) > 0 && last[e.OrderID] == i {
			for _, f := range fs {
				ev := s.Events().AppendEmpty()
				ev.SetName("weft.finding")
				ev.SetTimestamp(pcommon.NewTimestampFromTime(f.At))
				findingAttrs(ev.Attributes(), f)
			}
			s.Status().SetCode(ptrace.StatusCodeError)
			s.Status().SetMessage(fmt.Sprintf("%s: %s", fs[0].Kind, fs[0].Summary))
		}
	}
	return len(sorted)
}

// FindingService is the service.name of finding spans: weft's detector
// is what says so.
const FindingService = "weft"

// FindingSpan appends to td the span of a finding opened on the order of
// e, the order's latest event: a child of e's span named "weft.finding
// {kind}", from e's event time to when the finding was first seen (the
// wait it is about), with ERROR status, the finding's attributes and a
// weft.finding event; service.name "weft".
func (b Builder) FindingSpan(td ptrace.Traces, e Event, f Finding) {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(AttrServiceName, FindingService)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(ScopeName)
	s := ss.Spans().AppendEmpty()
	s.SetTraceID(b.TraceID(e.OrderID, e.CorrelationID))
	s.SetSpanID(b.IDs.FindingSpanID(e.OrderID, f.ID))
	s.SetParentSpanID(b.IDs.SpanID(e.OrderID, e.EventID))
	s.SetName("weft.finding " + f.Kind)
	s.SetKind(ptrace.SpanKindInternal)
	start, end := e.EventTime, f.At
	if !end.After(start) {
		end = start.Add(time.Microsecond)
	}
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	a := s.Attributes()
	a.PutStr(AttrOrderID, e.OrderID)
	findingAttrs(a, f)
	ev := s.Events().AppendEmpty()
	ev.SetName("weft.finding")
	ev.SetTimestamp(pcommon.NewTimestampFromTime(f.At))
	findingAttrs(ev.Attributes(), f)
	s.Status().SetCode(ptrace.StatusCodeError)
	s.Status().SetMessage(fmt.Sprintf("%s: %s", f.Kind, f.Summary))
}

// findingAttrs puts a finding's id, kind, summary and reason on a.
func findingAttrs(a pcommon.Map, f Finding) {
	a.PutStr("weft.finding.id", f.ID)
	a.PutStr("weft.finding.kind", f.Kind)
	a.PutStr("weft.finding.summary", f.Summary)
	if f.Reason != "" {
		a.PutStr("weft.finding.reason", f.Reason)
	}
}

func serviceName(s string) string {
	if s == "" {
		return "unknown_service"
	}
	return s
}

func (b Builder) span(s ptrace.Span, e Event) {
	s.SetTraceID(b.TraceID(e.OrderID, e.CorrelationID))
	s.SetSpanID(b.IDs.SpanID(e.OrderID, e.EventID))
	if e.Parent != "" {
		s.SetParentSpanID(b.IDs.SpanID(e.OrderID, e.Parent))
	}
	s.SetName("send " + e.Topic)
	s.SetKind(ptrace.SpanKindProducer)
	// The span runs from its cause to the event, so the trace view reads
	// as the order's timeline with each step's latency.
	start := e.EventTime
	if !e.ParentTime.IsZero() && e.ParentTime.Before(start) {
		start = e.ParentTime
	}
	end := e.EventTime
	if !end.After(start) {
		// An event without a cause before it: a microsecond long, as
		// Jaeger takes a span ending where it starts for a broken one.
		end = start.Add(time.Microsecond)
	}
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	a := s.Attributes()
	a.PutStr(AttrMessagingSystem, "kafka")
	a.PutStr(AttrOperationName, "send")
	a.PutStr(AttrOperationType, "send")
	a.PutStr(AttrDestinationName, e.Topic)
	a.PutStr(AttrDestinationPartitionID, strconv.Itoa(int(e.Partition)))
	a.PutInt(AttrKafkaOffset, e.Offset)
	if e.Key != "" {
		a.PutStr(AttrKafkaMessageKey, e.Key)
	}
	a.PutStr(AttrMessageID, e.EventID)
	if e.CorrelationID != "" {
		a.PutStr(AttrConversationID, e.CorrelationID)
	}
	if b.Group != "" {
		a.PutStr(AttrConsumerGroupName, b.Group)
	}
	a.PutStr(AttrOrderID, e.OrderID)
	a.PutStr(AttrEventType, e.Type)
	if e.Via != "" {
		a.PutStr(AttrParentVia, e.Via)
	}
	if e.CausationID != "" {
		a.PutStr(AttrCausationID, e.CausationID)
	}
	for _, c := range e.Copies {
		ev := s.Events().AppendEmpty()
		ev.SetName("weft.redelivered")
		ev.SetTimestamp(pcommon.NewTimestampFromTime(e.EventTime))
		ev.Attributes().PutStr("weft.record", c)
	}
	// The producer's own trace context: a link, so a click goes from the
	// order's trace to the service's trace.
	if tid, ok := traceIDOf(e.TraceID); ok {
		if sid, ok := spanIDOf(e.SpanID); ok {
			l := s.Links().AppendEmpty()
			l.SetTraceID(tid)
			l.SetSpanID(sid)
			l.TraceState().FromRaw(e.TraceState)
			l.Attributes().PutStr("weft.link", "producer")
		}
	}
}

func traceIDOf(s string) (pcommon.TraceID, bool) {
	var id pcommon.TraceID
	if len(s) != 32 {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil || id.IsEmpty() {
		return id, false
	}
	return id, true
}

func spanIDOf(s string) (pcommon.SpanID, bool) {
	var id pcommon.SpanID
	if len(s) != 16 {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil || id.IsEmpty() {
		return id, false
	}
	return id, true
}

// Sampled reports whether an order's trace is exported at ratio: the low
// 56 bits of the trace id against the ratio, as OpenTelemetry's
// TraceIdRatioBased sampler (so every weft process agrees).
func Sampled(id pcommon.TraceID, ratio float64) bool {
	if ratio >= 1 {
		return true
	}
	if ratio <= 0 {
		return false
	}
	const max56 = uint64(1) << 56
	return binary.BigEndian.Uint64(id[8:])&(max56-1) < uint64(ratio*float64(max56))
}
