package benchkit

import (
	"context"
	"fmt"
	"time"
)

// KafkaEngineConfig tunes ClickHouse's Kafka table engine for KafkaEngine.
type KafkaEngineConfig struct {
	// Consumers is kafka_num_consumers (ClickHouse caps it at the number of
	// physical cores). Default 1, ClickHouse's own default.
	Consumers int
	// FlushInterval is kafka_flush_interval_ms: the longest a partial
	// block waits. Default 500ms, weft's collector.batch.flush_interval.
	FlushInterval time.Duration
}

// DefaultKafkaEngine returns ClickHouse's defaults except the flush
// interval, set to weft's.
func DefaultKafkaEngine() KafkaEngineConfig {
	return KafkaEngineConfig{Consumers: 1, FlushInterval: 500 * time.Millisecond}
}

// KafkaEngine measures ClickHouse's own Kafka table engine: a Kafka table
// reading topic (RawBLOB: one row per record) and a materialized view into
// a MergeTree table in database db (created, dropped afterwards). Raw
// stores each record as it is (rawView); otherwise the view fills weft's
// events schema (eventsView), created by migrate. The clock starts when
// the view is created, which starts consumption, and stops when n rows
// are queryable.
func KafkaEngine(ctx context.Context, srv *Server, db string, brokers []string, topic string, n int,
	c KafkaEngineConfig, raw bool, migrate func(context.Context) error) (Run, error) {
	if err := srv.createDatabase(ctx, db); err != nil {
		return Run{}, fmt.Errorf("kafka engine setup: %w", err)
	}
	defer srv.dropDatabase(ctx, db)
	view, table := eventsView, "events"
	if raw {
		view, table = rawView, "kafka_rows"
		if err := srv.ddl(ctx, db, rawTable); err != nil {
			return Run{}, fmt.Errorf("kafka engine setup: %w", err)
		}
	} else if err := migrate(ctx); err != nil {
		return Run{}, fmt.Errorf("kafka engine setup: %w", err)
	}
	if err := srv.createKafkaQueue(ctx, db, brokers, topic, db, c); err != nil {
		return Run{}, fmt.Errorf("kafka engine setup: %w", err)
	}
	count, err := srv.rowCounter(db, table)
	if err != nil {
		return Run{}, err
	}
	start := time.Now()
	if err := srv.ddl(ctx, db, view); err != nil {
		return Run{}, fmt.Errorf("kafka engine view: %w", err)
	}
	return waitRows(ctx, count, n, start, nil)
}

// waitRows polls count (Server.rowCounter) every 50ms until it reaches n.
// Query errors (a database not created yet) count as no rows; alive, when
// not nil, ends the wait with its error.
func waitRows(ctx context.Context, count func(context.Context) (uint64, error), n int, start time.Time, alive func() error) (Run, error) {
	run := Run{Events: n}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last uint64
	for {
		if got, err := count(ctx); err == nil {
			if got > 0 && run.FirstRow == 0 {
				run.FirstRow = time.Since(start)
			}
			if got >= uint64(n) {
				run.Elapsed = time.Since(start)
				return run, nil
			}
			last = got
		}
		if alive != nil {
			if err := alive(); err != nil {
				return run, err
			}
		}
		select {
		case <-ctx.Done():
			return run, fmt.Errorf("%d of %d rows after %s: %w", last, n, time.Since(start).Round(time.Second), ctx.Err())
		case <-tick.C:
		}
	}
}
