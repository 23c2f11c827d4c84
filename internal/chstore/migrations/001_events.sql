-- Every decoded commerce event, one row per Kafka record.
-- Two guards keep a record from counting twice (docs/delivery.md):
--   * insert deduplication: a retried batch carries the same
--     insert_deduplication_token and is dropped whole, materialized views
--     included (non_replicated_deduplication_window keeps the last tokens);
--   * ReplacingMergeTree keyed on the record's coordinates: a record re-read
--     after a crash, in a batch shaped differently, collapses to one row;
--     queries that must be exact use FINAL or LIMIT 1 BY topic, partition, offset.
-- The sorting key leads with order_id, so one order's chain is a primary-key
-- lookup (no projection: a copy of every event would double each insert).
-- A redelivered record decodes to the same order id, so the key still names
-- one record. Small granules keep a lookup of scattered orders (a detector
-- page of thousands) from reading thousands of 8192-row granules; the
-- ingested_at index lets the detector find what was stored since its last pass.
CREATE TABLE IF NOT EXISTS {db}.events
(
    topic           LowCardinality(String),
    partition       Int32,
    offset          Int64,
    record_key      String,
    record_time     DateTime64(3, 'UTC'),
    event_id        String,
    event_type      LowCardinality(String),
    service         LowCardinality(String),
    order_id        String,
    event_time      DateTime64(3, 'UTC'),
    causation_id    String,
    correlation_id  String,
    trace_id        String,
    span_id         String,
    parent_span_id  String,
    trace_state     String,
    version_vector  Map(LowCardinality(String), UInt64),
    idempotency_key String,
    format          LowCardinality(String),
    headers         Map(String, String),
    payload         String CODEC(ZSTD(3)),
    payload_hash    FixedString(64),
    ingested_at     DateTime64(3, 'UTC'),
    INDEX idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_ingested ingested_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(record_time)
ORDER BY (order_id, topic, partition, offset)
SETTINGS index_granularity = 1024,
         non_replicated_deduplication_window = 10000
