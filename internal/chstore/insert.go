package chstore

import (
	"context"
	"fmt"
	"github.com/ClickHouse/clickhouse-go/v2"
	"time"

	"github.com/weft-sh/weft/internal/event"
)

// InsertEvents writes events in one batch. An error means nothing may be
// assumed stored; the caller retries the same batch with the same token, so
// a batch that was stored although the call failed is not stored twice.
// An empty token disables insert deduplication.
func (s *Store) InsertEvents(ctx context.Context, evs []event.Event, ingestedAt time.Time, token string) error {
	if len(evs) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(dedupContext(ctx, token), "INSERT INTO "+s.Table("events")+` (
		topic, partition, offset, record_key, record_time, event_id, event_type, service, order_id,
		event_time, causation_id, correlation_id, trace_id, span_id, parent_span_id, trace_state,
		version_vector, idempotency_key, format, headers, payload, payload_hash, ingested_at)`)
	if err != nil {
		return fmt.Errorf("prepare events batch: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	for i := range evs {
		e := &evs[i]
		vv := e.VersionVector
		if vv == nil {
			vv = map[string]uint64{}
		}
		h := e.Headers
		if h == nil {
			h = map[string]string{}
		}
		if err := b.Append(e.Topic, e.Partition, e.Offset, e.Key, e.RecordTime, e.EventID, e.Type, e.Service, e.OrderID,
			e.EventTime, e.CausationID, e.CorrelationID, e.TraceID, e.SpanID, e.ParentSpanID, e.TraceState,
			vv, e.IdempotencyKey, string(e.Format), h, string(e.Payload), e.PayloadHash, ingestedAt); err != nil {
			return fmt.Errorf("append event %s/%d/%d: %w", e.Topic, e.Partition, e.Offset, err)
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
