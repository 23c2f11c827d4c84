// Package event defines weft's normalized commerce event: what the collector
// makes of every Kafka record it can decode, whatever the producer's format.
package event

import "time"

// Format names how a record was encoded.
type Format string

const (
	// FormatCloudEventsStructured is a CloudEvents 1.0 JSON envelope in the value.
	FormatCloudEventsStructured Format = "cloudevents-structured"
	// FormatCloudEventsBinary carries CloudEvents attributes in ce_* headers.
	FormatCloudEventsBinary Format = "cloudevents-binary"
	// FormatJSON is a plain JSON object whose fields are found by path.
	FormatJSON Format = "json"
)

// Header names of the event contract (docs/event-contract.md).
const (
	HeaderCausationID    = "causation-id"
	HeaderCorrelationID  = "correlation-id"
	HeaderVersionVector  = "version-vector"
	HeaderTraceParent    = "traceparent"
	HeaderTraceState     = "tracestate"
	HeaderB3             = "b3"
	HeaderIdempotencyKey = "idempotency-key"
)

// Event is one decoded commerce event with its Kafka coordinates.
type Event struct {
	// Kafka coordinates: where the record was read from.
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	// RecordTime is the Kafka record timestamp.
	RecordTime time.Time

	// EventID identifies the event; topic/partition/offset when the producer gave none.
	EventID string
	// Type is the domain event type, e.g. OrderPlaced.
	Type string
	// Service is the producing service (CloudEvents source, else the topic prefix).
	Service string
	// OrderID is the business key the causal chain is stitched on.
	OrderID string
	// EventTime is when the event happened according to its producer;
	// the record timestamp when the producer gave none.
	EventTime time.Time

	CausationID   string
	CorrelationID string

	// W3C trace context (or b3, normalized to the same fields).
	TraceID      string
	SpanID       string
	ParentSpanID string
	TraceState   string

	// VersionVector maps service → counter, as carried by the event (empty if none).
	VersionVector map[string]uint64
	// IdempotencyKey from the header or data.idempotency_key.
	IdempotencyKey string

	// Format is how the record was encoded.
	Format Format
	// Headers are the record headers after redaction (last value wins).
	Headers map[string]string
	// Payload is the event data as JSON, after redaction.
	Payload []byte
	// PayloadHash is the hex SHA-256 of the original (unredacted) record value,
	// so identical redeliveries can be told from conflicting ones.
	PayloadHash string
}

// Quarantined is a record that could not be decoded, kept with the reason.
type Quarantined struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	// Size is the length of the original value in bytes (Value may be
	// masked or base64-encoded).
	Size       int
	Headers    map[string]string
	RecordTime time.Time
	// Reason says why the record was not decoded, for a person to read.
	Reason string
}
