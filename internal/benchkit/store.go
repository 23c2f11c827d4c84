package benchkit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
)

// Server is the benchmark's connection to ClickHouse, and every statement
// the benchmark runs, here in one file: its databases, the bare insert,
// the Kafka table engine's tables and views, the polls that wait for rows,
// ClickHouse's CPU. It is a connection of its own (chstore.Dial, with the
// options weft's store uses): the benchmark measures clickhouse-go and the
// Kafka engine themselves, beside weft, so it cannot go through weft's
// typed methods. Only weft's schema comes from weft's store
// (chstore.Store.Migrate). Every value is bound (clickhouse-go's
// positional ? or {name:Type} parameters, the Kafka engine's settings
// included); database names, which cannot be bound, are checked with
// chstore.CheckIdentifier.
type Server struct {
	conn driver.Conn
}

// DialServer connects to the ClickHouse at addr.
func DialServer(ctx context.Context, addr []string) (*Server, error) {
	c := chstore.Default()
	c.Addr = addr
	conn, err := chstore.Dial(ctx, c)
	if err != nil {
		return nil, err
	}
	return &Server{conn: conn}, nil
}

// Close closes the connection.
func (s *Server) Close() error { return s.conn.Close() }

// qualified is db.table, db checked.
func qualified(db, table string) (string, error) {
	if err := chstore.CheckIdentifier(db); err != nil {
		return "", fmt.Errorf("database: %w", err)
	}
	return db + "." + table, nil
}

// serverCPU is ClickHouse's user+system CPU time so far, as its own
// ProfileEvents count it (query, insert, view and Kafka engine threads;
// background merges too, as far as ClickHouse attributes them).
func (s *Server) serverCPU(ctx context.Context) time.Duration {
	var us uint64
	if err := s.conn.QueryRow(ctx, `SELECT sum(value) FROM system.events
		WHERE event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')`).Scan(&us); err != nil {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// createDatabase creates database db if it does not exist.
func (s *Server) createDatabase(ctx context.Context, db string) error {
	if err := chstore.CheckIdentifier(db); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return s.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db)
}

// dropDatabase drops database db, if it exists, and waits until its disk
// is freed (SYNC), even when ctx is done: the benchmark's databases hold
// a million rows each.
func (s *Server) dropDatabase(ctx context.Context, db string) {
	if chstore.CheckIdentifier(db) != nil {
		return // never created
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = s.conn.Exec(dctx, "DROP DATABASE IF EXISTS "+db+" SYNC")
}

// eventsColumns are the columns of weft's events table the bare insert writes.
const eventsColumns = `topic, partition, offset, record_key, record_time, event_id, event_type, service, order_id,
		event_time, causation_id, correlation_id, trace_id, span_id, parent_span_id, trace_state,
		version_vector, idempotency_key, format, headers, payload, payload_hash, ingested_at`

// prepareEvents starts a batch into db's events table (weft's schema), its
// rows appended in eventsColumns' order.
func (s *Server) prepareEvents(ctx context.Context, db string) (driver.Batch, error) {
	table, err := qualified(db, "events")
	if err != nil {
		return nil, err
	}
	return s.conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+eventsColumns+")")
}

// rowCounter returns the count of db's tables together, as a function that
// waitRows polls. The counts are answered from the parts' row counts: no
// column is read.
func (s *Server) rowCounter(db string, tables ...string) (func(context.Context) (uint64, error), error) {
	counts := make([]string, len(tables))
	for i, t := range tables {
		q, err := qualified(db, t)
		if err != nil {
			return nil, err
		}
		counts[i] = "SELECT count() FROM " + q
	}
	query := counts[0]
	if len(counts) > 1 {
		query = "SELECT (" + strings.Join(counts, ") + (") + ")"
	}
	return func(ctx context.Context) (uint64, error) {
		var n uint64
		err := s.conn.QueryRow(ctx, query).Scan(&n)
		return n, err
	}, nil
}

// distinctEvents is the number of distinct (order, event id) pairs in db's
// events: the spans the Tracer stores for them (docs/tracing.md).
func (s *Server) distinctEvents(ctx context.Context, db string) (uint64, error) {
	q, err := qualified(db, "events")
	if err != nil {
		return 0, err
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT uniqExact(order_id, event_id) FROM "+q).Scan(&n); err != nil {
		return 0, fmt.Errorf("count distinct events: %w", err)
	}
	return n, nil
}

// highOffsets returns the highest offset stored in db's events table of
// every partition of topic.
func (s *Server) highOffsets(ctx context.Context, db, topic string) (map[int32]int64, error) {
	table, err := qualified(db, "events")
	if err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ctx, "SELECT partition, max(offset) FROM "+table+" WHERE topic = ? GROUP BY partition", topic)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	high := map[int32]int64{}
	for rows.Next() {
		var p int32
		var o int64
		if err := rows.Scan(&p, &o); err != nil {
			return nil, err
		}
		high[p] = o
	}
	return high, rows.Err()
}

// The Kafka table engine's tables and views in database {db}: a Kafka table
// (kafkaQueue) and a materialized view from it, into a table of raw rows
// (rawTable, rawView) or into weft's events table (eventsView).

// kafkaQueue reads the topic with the Kafka table engine, one row per
// record (RawBLOB). Its settings are bound like any value.
const kafkaQueue = `CREATE TABLE {db}.kafka_queue (value String)
		ENGINE = Kafka SETTINGS
			kafka_broker_list = {brokers:String},
			kafka_topic_list = {topic:String},
			kafka_group_name = {group:String},
			kafka_format = 'RawBLOB',
			kafka_num_consumers = {consumers:UInt64},
			kafka_flush_interval_ms = {flush_interval_ms:UInt64}`

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

// ddl runs one of the statements above in database db.
func (s *Server) ddl(ctx context.Context, db, statement string, args ...any) error {
	if err := chstore.CheckIdentifier(db); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return s.conn.Exec(ctx, strings.ReplaceAll(statement, "{db}", db), args...)
}

// createKafkaQueue creates db's Kafka table, consumer group group, reading
// topic from brokers.
func (s *Server) createKafkaQueue(ctx context.Context, db string, brokers []string, topic, group string, c KafkaEngineConfig) error {
	return s.ddl(ctx, db, kafkaQueue,
		clickhouse.Named("brokers", strings.Join(brokers, ",")),
		clickhouse.Named("topic", topic),
		clickhouse.Named("group", group),
		clickhouse.Named("consumers", uint64(max(c.Consumers, 1))),
		clickhouse.Named("flush_interval_ms", uint64(max(c.FlushInterval.Milliseconds(), 1))))
}

// What `weft audit verify` reads (chstore.AuditEventStream,
// AuditQuarantineStream, AuditLeaves), column for column.
const (
	verifyEventColumns = `topic, partition, offset, record_key, record_time,
event_id, event_type, service, order_id, event_time, causation_id, correlation_id, trace_id, span_id, parent_span_id,
trace_state, version_vector, idempotency_key, format, headers, payload, payload_hash`
	verifyQuarantineColumns = `topic, partition, offset, record_key, record_time, value, value_size, headers, reason`
	verifyLeafColumns       = `topic, partition, leaf_index, kind, offset, end, order_id, leaf, leaf_hash, salt, state`
)

// bareSelect reads, with one streaming SELECT per table (no filter, no
// order), the columns verify reads of db's events, quarantine and
// audit_leaves, scanning every row into the types verify scans it into;
// it returns the events and quarantine rows read. It is the floor of what
// any reader of those rows through clickhouse-go can do.
func (s *Server) bareSelect(ctx context.Context, db string) (records uint64, err error) {
	read := func(table, columns string, scan func(driver.Rows) error) (uint64, error) {
		q, err := qualified(db, table)
		if err != nil {
			return 0, err
		}
		rows, err := s.conn.Query(ctx, "SELECT "+columns+" FROM "+q)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", table, err)
		}
		defer rows.Close()
		var n uint64
		for rows.Next() {
			if err := scan(rows); err != nil {
				return n, fmt.Errorf("%s: %w", table, err)
			}
			n++
		}
		return n, rows.Err()
	}
	events, err := read("events", verifyEventColumns, func(rows driver.Rows) error {
		var e event.Event
		var format, payload string
		return rows.Scan(&e.Topic, &e.Partition, &e.Offset, &e.Key, &e.RecordTime, &e.EventID, &e.Type, &e.Service,
			&e.OrderID, &e.EventTime, &e.CausationID, &e.CorrelationID, &e.TraceID, &e.SpanID, &e.ParentSpanID, &e.TraceState,
			&e.VersionVector, &e.IdempotencyKey, &format, &e.Headers, &payload, &e.PayloadHash)
	})
	if err != nil {
		return 0, err
	}
	quarantined, err := read("quarantine", verifyQuarantineColumns, func(rows driver.Rows) error {
		var q event.Quarantined
		var key, value string
		var size uint64
		return rows.Scan(&q.Topic, &q.Partition, &q.Offset, &key, &q.RecordTime, &value, &size, &q.Headers, &q.Reason)
	})
	if err != nil {
		return 0, err
	}
	if _, err := read("audit_leaves", verifyLeafColumns, func(rows driver.Rows) error {
		var topic, kind, orderID, leaf, hash, salt, state string
		var partition int32
		var index uint64
		var offset, end int64
		return rows.Scan(&topic, &partition, &index, &kind, &offset, &end, &orderID, &leaf, &hash, &salt, &state)
	}); err != nil {
		return 0, err
	}
	return events + quarantined, nil
}
