package chstore

import (
	"time"

	"github.com/ClickHouse/ch-go/proto"

	"github.com/weft-sh/weft/internal/event"
)

// eventWriter holds the columns of the events table, filled for each
// block of an insert over the insert connection (insertconn.go).
type eventWriter struct {
	cols  eventCols
	input proto.Input
}

// eventCols are the columns of the events table (migrations/001_events.sql).
type eventCols struct {
	topic, eventType, service, format            *proto.ColLowCardinality[string]
	partition                                    proto.ColInt32
	offset                                       proto.ColInt64
	recordKey, eventID, orderID, causationID     proto.ColStr
	correlationID, traceID, spanID, parentSpanID proto.ColStr
	traceState, idempotencyKey, payload          proto.ColStr
	recordTime, eventTime, ingestedAt            *proto.ColDateTime64
	versionVector                                *proto.ColMap[string, uint64]
	headers                                      *proto.ColMap[string, string]
	payloadHash                                  proto.ColFixedStr
}

func newEventWriter() *eventWriter {
	w := &eventWriter{}
	k := &w.cols
	k.topic, k.eventType = new(proto.ColStr).LowCardinality(), new(proto.ColStr).LowCardinality()
	k.service, k.format = new(proto.ColStr).LowCardinality(), new(proto.ColStr).LowCardinality()
	ms := func() *proto.ColDateTime64 {
		return new(proto.ColDateTime64).WithPrecision(proto.PrecisionMilli).WithLocation(time.UTC)
	}
	k.recordTime, k.eventTime, k.ingestedAt = ms(), ms(), ms()
	k.versionVector = proto.NewMap[string, uint64](new(proto.ColStr).LowCardinality(), new(proto.ColUInt64))
	k.headers = proto.NewMap[string, string](new(proto.ColStr), new(proto.ColStr))
	k.payloadHash.SetSize(64)
	w.input = proto.Input{
		{Name: "topic", Data: k.topic},
		{Name: "partition", Data: &k.partition},
		{Name: "offset", Data: &k.offset},
		{Name: "record_key", Data: &k.recordKey},
		{Name: "record_time", Data: k.recordTime},
		{Name: "event_id", Data: &k.eventID},
		{Name: "event_type", Data: k.eventType},
		{Name: "service", Data: k.service},
		{Name: "order_id", Data: &k.orderID},
		{Name: "event_time", Data: k.eventTime},
		{Name: "causation_id", Data: &k.causationID},
		{Name: "correlation_id", Data: &k.correlationID},
		{Name: "trace_id", Data: &k.traceID},
		{Name: "span_id", Data: &k.spanID},
		{Name: "parent_span_id", Data: &k.parentSpanID},
		{Name: "trace_state", Data: &k.traceState},
		{Name: "version_vector", Data: k.versionVector},
		{Name: "idempotency_key", Data: &k.idempotencyKey},
		{Name: "format", Data: k.format},
		{Name: "headers", Data: k.headers},
		{Name: "payload", Data: &k.payload},
		{Name: "payload_hash", Data: &k.payloadHash},
		{Name: "ingested_at", Data: k.ingestedAt},
	}
	return w
}

// fill resets the columns and appends evs.
func (w *eventWriter) fill(evs []event.Event, ingestedAt time.Time) {
	w.input.Reset()
	k := &w.cols
	var hash [64]byte
	for i := range evs {
		e := &evs[i]
		k.topic.Append(e.Topic)
		k.partition.Append(e.Partition)
		k.offset.Append(e.Offset)
		k.recordKey.Append(e.Key)
		k.recordTime.Append(e.RecordTime)
		k.eventID.Append(e.EventID)
		k.eventType.Append(e.Type)
		k.service.Append(e.Service)
		k.orderID.Append(e.OrderID)
		k.eventTime.Append(e.EventTime)
		k.causationID.Append(e.CausationID)
		k.correlationID.Append(e.CorrelationID)
		k.traceID.Append(e.TraceID)
		k.spanID.Append(e.SpanID)
		k.parentSpanID.Append(e.ParentSpanID)
		k.traceState.Append(e.TraceState)
		k.versionVector.Append(e.VersionVector)
		k.idempotencyKey.Append(e.IdempotencyKey)
		k.format.Append(string(e.Format))
		k.headers.Append(e.Headers)
		k.payload.AppendBytes(e.Payload)
		// FixedString(64): shorter values are zero-padded, as ClickHouse does.
		n := copy(hash[:], e.PayloadHash)
		clear(hash[n:])
		k.payloadHash.Append(hash[:])
		k.ingestedAt.Append(ingestedAt)
	}
}
