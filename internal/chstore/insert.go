package chstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/weft-sh/weft/internal/event"
)

// eventColumns are the columns InsertEvents fills, each with how its
// values are taken from a batch of events.
var eventColumns = []struct {
	name   string
	values func(evs []event.Event, ingestedAt time.Time) any
}{
	{"topic", column(func(e *event.Event) string { return e.Topic })},
	{"partition", column(func(e *event.Event) int32 { return e.Partition })},
	{"offset", column(func(e *event.Event) int64 { return e.Offset })},
	{"record_key", column(func(e *event.Event) string { return e.Key })},
	{"record_time", column(func(e *event.Event) time.Time { return e.RecordTime })},
	{"event_id", column(func(e *event.Event) string { return e.EventID })},
	{"event_type", column(func(e *event.Event) string { return e.Type })},
	{"service", column(func(e *event.Event) string { return e.Service })},
	{"order_id", column(func(e *event.Event) string { return e.OrderID })},
	{"event_time", column(func(e *event.Event) time.Time { return e.EventTime })},
	{"causation_id", column(func(e *event.Event) string { return e.CausationID })},
	{"correlation_id", column(func(e *event.Event) string { return e.CorrelationID })},
	{"trace_id", column(func(e *event.Event) string { return e.TraceID })},
	{"span_id", column(func(e *event.Event) string { return e.SpanID })},
	{"parent_span_id", column(func(e *event.Event) string { return e.ParentSpanID })},
	{"trace_state", column(func(e *event.Event) string { return e.TraceState })},
	{"version_vector", column(func(e *event.Event) map[string]uint64 {
		if e.VersionVector == nil {
			return map[string]uint64{}
		}
		return e.VersionVector
	})},
	{"idempotency_key", column(func(e *event.Event) string { return e.IdempotencyKey })},
	{"format", column(func(e *event.Event) string { return string(e.Format) })},
	{"headers", column(func(e *event.Event) map[string]string {
		if e.Headers == nil {
			return map[string]string{}
		}
		return e.Headers
	})},
	{"payload", column(func(e *event.Event) []byte { return e.Payload })},
	{"payload_hash", column(func(e *event.Event) string { return e.PayloadHash })},
	{"ingested_at", func(evs []event.Event, at time.Time) any {
		col := make([]time.Time, len(evs))
		for i := range col {
			col[i] = at
		}
		return col
	}},
}

// column makes the values of one column from a field of each event.
func column[T any](field func(*event.Event) T) func([]event.Event, time.Time) any {
	return func(evs []event.Event, _ time.Time) any {
		col := make([]T, len(evs))
		for i := range evs {
			col[i] = field(&evs[i])
		}
		return col
	}
}

// InsertEvents writes events in one batch. An error means nothing may be
// assumed stored; the caller retries the same batch with the same token, so
// a batch that was stored although the call failed is not stored twice.
// An empty token disables insert deduplication.
//
// The batch is filled a column at a time from typed slices, which
// clickhouse-go copies without the per-row, per-value type dispatch of
// batch.Append.
func (s *Store) InsertEvents(ctx context.Context, evs []event.Event, ingestedAt time.Time, token string) error {
	if len(evs) == 0 {
		return nil
	}
	names := make([]string, len(eventColumns))
	for i, c := range eventColumns {
		names[i] = c.name
	}
	b, err := s.conn.PrepareBatch(dedupContext(ctx, token), "INSERT INTO "+s.Table("events")+" ("+strings.Join(names, ", ")+")")
	if err != nil {
		return fmt.Errorf("prepare events batch: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	for i, c := range eventColumns {
		if err := b.Column(i).Append(c.values(evs, ingestedAt)); err != nil {
			return fmt.Errorf("append events column %s: %w", c.name, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d events: %w", len(evs), err)
	}
	return nil
}

// InsertQuarantine writes undecodable records in one batch, deduplicated by
// token like InsertEvents.
func (s *Store) InsertQuarantine(ctx context.Context, qs []event.Quarantined, at time.Time, token string) error {
	if len(qs) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(dedupContext(ctx, token), "INSERT INTO "+s.Table("quarantine")+
		` (topic, partition, offset, record_key, record_time, value, value_size, headers, reason, quarantined_at)`)
	if err != nil {
		return fmt.Errorf("prepare quarantine batch: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	for i := range qs {
		q := &qs[i]
		h := q.Headers
		if h == nil {
			h = map[string]string{}
		}
		if err := b.Append(q.Topic, q.Partition, q.Offset, string(q.Key), q.RecordTime, string(q.Value), uint64(q.Size), h, q.Reason, at); err != nil {
			return fmt.Errorf("append quarantined %s/%d/%d: %w", q.Topic, q.Partition, q.Offset, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d quarantined records: %w", len(qs), err)
	}
	return nil
}

// dedupContext sets the insert deduplication token of one insert, and makes
// the materialized views fed by it deduplicate the same way.
func dedupContext(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"insert_deduplicate":                                 1,
		"insert_deduplication_token":                         token,
		"deduplicate_blocks_in_dependent_materialized_views": 1,
	}))
}
