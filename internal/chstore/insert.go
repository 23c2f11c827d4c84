package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/ch-go"
	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/weft-sh/weft/internal/event"
)

// InsertEvents writes events in one batch. An error means nothing may be
// assumed stored; the caller retries the same batch with the same token, so
// a batch that was stored although the call failed is not stored twice.
// An empty token disables insert deduplication. The batch goes over the
// store's insert connection (insertConn), not the query pool.
func (s *Store) InsertEvents(ctx context.Context, evs []event.Event, ingestedAt time.Time, token string) error {
	if len(evs) == 0 {
		return nil
	}
	fill := func(i, j int) { s.events.fill(evs[i:j], ingestedAt) }
	if err := s.ins.insert(ctx, s.Table("events"), s.events.input, len(evs), fill, dedupSettings(token)); err != nil {
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

// dedupSettings are the settings of one insert deduplicated by token (see
// dedupContext); none for an empty token.
func dedupSettings(token string) []ch.Setting {
	if token == "" {
		return nil
	}
	return []ch.Setting{
		{Key: "insert_deduplicate", Value: "1", Important: true},
		{Key: "insert_deduplication_token", Value: token, Important: true},
		{Key: "deduplicate_blocks_in_dependent_materialized_views", Value: "1", Important: true},
	}
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
