package benchkit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
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
// reading topic (RawBLOB: one row per record, no parsing) and a
// materialized view storing each record's coordinates, timestamp, key,
// headers and value into a MergeTree table in database db (created, and
// dropped afterwards). The clock starts when the view is created (which
// starts consumption) and stops when n rows are queryable.
func KafkaEngine(ctx context.Context, conn driver.Conn, db string, brokers []string, topic string, n int, c KafkaEngineConfig) (Run, error) {
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }
	stmts := []string{
		"CREATE DATABASE IF NOT EXISTS " + db,
		`CREATE TABLE ` + db + `.kafka_rows
		(
			topic       LowCardinality(String),
			partition   Int32,
			offset      Int64,
			record_time DateTime64(3, 'UTC'),
			record_key  String,
			headers     Map(String, String),
			value       String CODEC(ZSTD(3))
		)
		ENGINE = MergeTree ORDER BY (topic, partition, offset)`,
		`CREATE TABLE ` + db + `.kafka_queue (value String)
		ENGINE = Kafka SETTINGS
			kafka_broker_list = ` + quote(strings.Join(brokers, ",")) + `,
			kafka_topic_list = ` + quote(topic) + `,
			kafka_group_name = ` + quote(db) + `,
			kafka_format = 'RawBLOB',
			kafka_num_consumers = ` + fmt.Sprint(max(c.Consumers, 1)) + `,
			kafka_flush_interval_ms = ` + fmt.Sprint(max(c.FlushInterval.Milliseconds(), 1)),
	}
	for _, s := range stmts {
		if err := conn.Exec(ctx, s); err != nil {
			return Run{}, fmt.Errorf("kafka engine setup: %w", err)
		}
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = conn.Exec(dctx, "DROP DATABASE IF EXISTS "+db+" SYNC")
	}()
	start := time.Now()
	if err := conn.Exec(ctx, `CREATE MATERIALIZED VIEW `+db+`.kafka_mv TO `+db+`.kafka_rows AS
		SELECT _topic AS topic, toInt32(_partition) AS partition, toInt64(_offset) AS offset,
		       _timestamp_ms AS record_time, _key AS record_key,
		       mapFromArrays(_headers.name, _headers.value) AS headers, value
		FROM `+db+`.kafka_queue`); err != nil {
		return Run{}, fmt.Errorf("kafka engine view: %w", err)
	}
	return waitRows(ctx, conn, "SELECT count() FROM "+db+".kafka_rows", n, start, nil)
}

// waitRows polls a count query every 50ms until it reaches n. Query errors
// (a database not created yet) count as no rows; alive, when not nil, ends
// the wait with its error.
func waitRows(ctx context.Context, conn driver.Conn, query string, n int, start time.Time, alive func() error) (Run, error) {
	run := Run{Events: n}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last uint64
	for {
		var got uint64
		if err := conn.QueryRow(ctx, query).Scan(&got); err == nil {
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
