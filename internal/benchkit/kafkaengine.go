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

// rawTable and rawView store each record as it is: coordinates,
// timestamp, key, headers, value. No parsing.
const (
	rawTable = `CREATE TABLE {db}.kafka_rows
(
    topic       LowCardinality(String),
    partition   Int32,
    offset      Int64,
    record_time DateTime64(3, 'UTC'),
    record_key  String,
    headers     Map(String, String),
    value       String CODEC(ZSTD(3))
)
ENGINE = MergeTree ORDER BY (topic, partition, offset)`

	rawView = `CREATE MATERIALIZED VIEW {db}.kafka_mv TO {db}.kafka_rows AS
SELECT _topic AS topic, toInt32(_partition) AS partition, toInt64(_offset) AS offset,
       _timestamp_ms AS record_time, _key AS record_key,
       mapFromArrays(_headers.name, _headers.value) AS headers, value
FROM {db}.kafka_queue`
)

// eventsView fills weft's own events table (and so its order_state view)
// from the Kafka table: the event-contract fields of the three encodings
// extracted in SQL, the way weft's decoder finds them for the demo's
// records. It does what weft's ClickHouse side does, and the JSON parsing
// of weft's decoder, but no masking and no per-topic rules.
const eventsView = `CREATE MATERIALIZED VIEW {db}.kafka_mv TO {db}.events AS
WITH
    mapFromArrays(arrayMap(k -> lower(k), _headers.name), _headers.value) AS h,
    JSONHas(value, 'specversion') AS structured,
    h['ce_type'] != '' AS binary,
    splitByChar('-', h['traceparent']) AS tp
SELECT
    _topic AS topic,
    toInt32(_partition) AS partition,
    toInt64(_offset) AS offset,
    _key AS record_key,
    _timestamp_ms AS record_time,
    multiIf(structured, JSONExtractString(value, 'id'), binary, h['ce_id'], JSONExtractString(value, 'event_id')) AS event_id,
    multiIf(structured, JSONExtractString(value, 'type'), binary, h['ce_type'], JSONExtractString(value, 'event_type')) AS event_type,
    multiIf(structured, JSONExtractString(value, 'source'), binary, h['ce_source'], splitByChar('.', _topic)[1]) AS service,
    multiIf(structured, JSONExtractString(value, 'subject'), binary, h['ce_subject'], JSONExtractString(value, 'order_id')) AS order_id,
    parseDateTime64BestEffortOrZero(multiIf(structured, JSONExtractString(value, 'time'), binary, h['ce_time'],
        JSONExtractString(value, 'occurred_at')), 3, 'UTC') AS event_time,
    h['causation-id'] AS causation_id,
    h['correlation-id'] AS correlation_id,
    tp[2] AS trace_id,
    tp[3] AS span_id,
    '' AS parent_span_id,
    h['tracestate'] AS trace_state,
    JSONExtract(h['version-vector'], 'Map(String, UInt64)') AS version_vector,
    h['idempotency-key'] AS idempotency_key,
    multiIf(structured, 'cloudevents-structured', binary, 'cloudevents-binary', 'json') AS format,
    h AS headers,
    if(structured, JSONExtractRaw(value, 'data'), value) AS payload,
    lower(hex(SHA256(value))) AS payload_hash,
    now64(3) AS ingested_at
FROM {db}.kafka_queue`

// KafkaEngine measures ClickHouse's own Kafka table engine: a Kafka table
// reading topic (RawBLOB: one row per record) and a materialized view into
// a MergeTree table in database db (created, dropped afterwards). Raw
// stores each record as it is (rawView); otherwise the view fills weft's
// events schema (eventsView), created by migrate. The clock starts when
// the view is created, which starts consumption, and stops when n rows
// are queryable.
func KafkaEngine(ctx context.Context, conn driver.Conn, db string, brokers []string, topic string, n int,
	c KafkaEngineConfig, raw bool, migrate func(context.Context) error) (Run, error) {
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }
	sub := func(q string) string { return strings.ReplaceAll(q, "{db}", db) }
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return Run{}, fmt.Errorf("kafka engine setup: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = conn.Exec(dctx, "DROP DATABASE IF EXISTS "+db+" SYNC")
	}()
	view, table := eventsView, db+".events"
	if raw {
		view, table = rawView, db+".kafka_rows"
		if err := conn.Exec(ctx, sub(rawTable)); err != nil {
			return Run{}, fmt.Errorf("kafka engine setup: %w", err)
		}
	} else if err := migrate(ctx); err != nil {
		return Run{}, fmt.Errorf("kafka engine setup: %w", err)
	}
	if err := conn.Exec(ctx, `CREATE TABLE `+db+`.kafka_queue (value String)
		ENGINE = Kafka SETTINGS
			kafka_broker_list = `+quote(strings.Join(brokers, ","))+`,
			kafka_topic_list = `+quote(topic)+`,
			kafka_group_name = `+quote(db)+`,
			kafka_format = 'RawBLOB',
			kafka_num_consumers = `+fmt.Sprint(max(c.Consumers, 1))+`,
			kafka_flush_interval_ms = `+fmt.Sprint(max(c.FlushInterval.Milliseconds(), 1))); err != nil {
		return Run{}, fmt.Errorf("kafka engine setup: %w", err)
	}
	start := time.Now()
	if err := conn.Exec(ctx, sub(view)); err != nil {
		return Run{}, fmt.Errorf("kafka engine view: %w", err)
	}
	return waitRows(ctx, conn, "SELECT count() FROM "+table, n, start, nil)
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
