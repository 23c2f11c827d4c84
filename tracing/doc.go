// Package tracing gives every order one OpenTelemetry trace (docs/tracing.md):
// a span per stored event, built with the Collector's pdata, following the
// messaging semantic conventions for Kafka, its service.name the emitting
// service. Ids are derived from the order and the event with a keyed hash,
// so a span is the same whenever and however often it is built: the
// Tracer component exports each event's span once, after the tap stored
// it, over OTLP/HTTP and into ClickHouse's otel_traces table, and `weft
// trace` builds a whole order's trace on demand.
package tracing
