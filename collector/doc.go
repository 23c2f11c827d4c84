// Package collector is weft's passive Kafka tap: it consumes the commerce
// topics, decodes every record into an event (quarantining what it cannot
// decode), masks sensitive data, and batches the events into ClickHouse,
// committing offsets only after the insert succeeded.
package collector
