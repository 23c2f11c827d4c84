package demo

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	contract "github.com/weft-sh/weft/internal/event"
)

// This file turns a planned event into its Kafka record, in one of the
// three encodings of the event contract.

// DLQ header names added to the dead-letter copy of a PaymentFailed record.
const (
	HeaderDLQReason         = "dlq-reason"
	HeaderDLQOriginalTopic  = "dlq-original-topic"
	HeaderDLQOriginalOffset = "dlq-original-offset"
)

// pickFormat draws an encoding by the mix's weights.
func pickFormat(m EncodingMix, r *rand.Rand) contract.Format {
	u := r.Float64() * (m.Structured + m.Binary + m.JSON)
	switch {
	case u < m.Structured:
		return contract.FormatCloudEventsStructured
	case u < m.Structured+m.Binary:
		return contract.FormatCloudEventsBinary
	}
	return contract.FormatJSON
}

// encodeEvent builds the record of e with data d: key = order id (or the
// customer's e-mail, PersonalData.KeyedByEmail), timestamp = event time,
// and the value in e's format. The contract's extension fields (causation
// id, correlation id, version vector, idempotency key, trace context) go
// in the contract headers; e.ext also puts the causationid/correlationid/
// versionvector attributes in a structured envelope. The vector has no
// entry for a service that publishes sparse events (EncodingMix.Sparse):
// the others never saw one of its counters. With
// EncodingMix.InBand, e.ext moves them off the headers into the place the
// format has for them (inBand). A sparse event carries none of them. The
// causation id and vector are the produced ones: a fault may replace them
// (fakeCause, sentVV).
func encodeEvent(o *order, e *event, d map[string]any, cfg *Config) (*kgo.Record, error) {
	format := e.format // plain JSON when sparse
	inBand := e.ext && cfg.Encoding.InBand && !e.sparse
	wire := e.wireVV()
	if len(o.sparse) > 0 {
		// The instrumented services never saw a counter of a sparse one:
		// their vectors have no entry for it.
		wire = maps.Clone(wire)
		for _, svc := range o.sparse {
			delete(wire, svc)
		}
	}
	vv, err := json.Marshal(wire)
	if err != nil {
		return nil, err
	}
	cause := e.fakeCause
	if cause == "" && e.cause >= 0 {
		cause = o.events[e.cause].id
	}
	traceparent := "00-" + o.traceID + "-" + e.span + "-01"
	var hs []kgo.RecordHeader
	h := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	var value any
	switch format {
	case contract.FormatCloudEventsStructured:
		h("content-type", "application/cloudevents+json")
		env := map[string]any{
			"specversion": "1.0", "id": e.id, "type": e.typ, "source": serviceOf(e.typ),
			"time": ts(e.at), "subject": o.id, "datacontenttype": "application/json", "data": d,
		}
		if e.ext {
			if cause != "" {
				env["causationid"] = cause
			}
			env["correlationid"] = o.correlationID
			env["versionvector"] = wire
		}
		if inBand {
			env["traceparent"] = traceparent
			env["data"] = withIdempotencyKey(d, idempotencyKey(o, e))
		}
		value = env
	case contract.FormatCloudEventsBinary:
		h("ce_specversion", "1.0")
		h("ce_id", e.id)
		h("ce_type", e.typ)
		h("ce_source", serviceOf(e.typ))
		h("ce_time", ts(e.at))
		h("ce_subject", o.id)
		h("content-type", "application/json")
		value = d
		if inBand {
			if cause != "" {
				h("ce_causationid", cause)
			}
			h("ce_correlationid", o.correlationID)
			h("ce_versionvector", string(vv))
			h("ce_traceparent", traceparent)
			value = withIdempotencyKey(d, idempotencyKey(o, e))
		}
	case contract.FormatJSON:
		if !e.sparse {
			h("content-type", "application/json")
		}
		flat := make(map[string]any, len(d)+9)
		for k, v := range d {
			flat[k] = v
		}
		flat["event_id"], flat["event_type"] = e.id, e.typ
		flat["order_id"], flat["occurred_at"] = o.id, ts(e.at)
		if inBand {
			if cause != "" {
				flat["causation_id"] = cause
			}
			flat["correlation_id"], flat["version_vector"] = o.correlationID, wire
			flat["idempotency_key"], flat["traceparent"] = idempotencyKey(o, e), traceparent
		}
		value = flat
	default:
		return nil, fmt.Errorf("demo: unknown format %q", format)
	}
	if !inBand && !e.sparse {
		h(contract.HeaderTraceParent, traceparent)
		if cause != "" {
			h(contract.HeaderCausationID, cause)
		}
		h(contract.HeaderCorrelationID, o.correlationID)
		h(contract.HeaderVersionVector, string(vv))
		h(contract.HeaderIdempotencyKey, idempotencyKey(o, e))
	}
	if o.pii.headers {
		hs = append(hs, personalHeaders(o, e)...)
	}
	b, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	key := o.id
	if o.pii.keyedByEmail {
		key = o.facts.email
	}
	return &kgo.Record{
		Topic:     cfg.Topics.Name(topicOf(e.typ)),
		Key:       []byte(key),
		Value:     b,
		Headers:   hs,
		Timestamp: e.at,
	}, nil
}

// withIdempotencyKey returns a copy of d with the idempotency key in it,
// where the CloudEvents formats carry it without a header.
func withIdempotencyKey(d map[string]any, key string) map[string]any {
	out := make(map[string]any, len(d)+1)
	for k, v := range d {
		out[k] = v
	}
	out["idempotency_key"] = key
	return out
}

// idempotencyKey is the event's idempotency key: order id, type and
// occurrence of the type within the order.
func idempotencyKey(o *order, e *event) string {
	return o.id + ":" + e.typ + ":" + strconv.Itoa(e.n)
}

// cloneRecord copies the produce-side fields of a record (key, value,
// headers, topic, timestamp), sharing nothing with the original.
func cloneRecord(r *kgo.Record) *kgo.Record {
	hs := make([]kgo.RecordHeader, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = kgo.RecordHeader{Key: h.Key, Value: slices.Clone(h.Value)}
	}
	return &kgo.Record{
		Topic:     r.Topic,
		Key:       slices.Clone(r.Key),
		Value:     slices.Clone(r.Value),
		Headers:   hs,
		Timestamp: r.Timestamp,
	}
}

// dlqCopy is the dead-letter copy of a PaymentFailed record: same key,
// value, headers and timestamp, on the DLQ topic, plus dlq-reason and
// dlq-original-topic (dlq-original-offset is added once the original's
// offset is known, see withOffset).
func dlqCopy(r *kgo.Record, topics TopicNames) *kgo.Record {
	c := cloneRecord(r)
	c.Topic = topics.Name(TopicPaymentsDLQ)
	c.Headers = append(c.Headers,
		kgo.RecordHeader{Key: HeaderDLQReason, Value: []byte("retries_exhausted")},
		kgo.RecordHeader{Key: HeaderDLQOriginalTopic, Value: []byte(r.Topic)},
	)
	return c
}

// withOffset adds the dlq-original-offset header to a DLQ copy.
func withOffset(r *kgo.Record, offset int64) *kgo.Record {
	c := cloneRecord(r)
	c.Headers = append(c.Headers, kgo.RecordHeader{Key: HeaderDLQOriginalOffset, Value: []byte(strconv.FormatInt(offset, 10))})
	return c
}
