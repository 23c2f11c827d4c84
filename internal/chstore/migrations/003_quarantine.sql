-- Records the collector could not decode, kept whole (after masking) with the reason.
CREATE TABLE IF NOT EXISTS {db}.quarantine
(
    topic          LowCardinality(String),
    partition      Int32,
    offset         Int64,
    record_key     String,
    record_time    DateTime64(3, 'UTC'),
    value          String CODEC(ZSTD(3)),
    value_size     UInt64,
    headers        Map(String, String),
    reason         String,
    quarantined_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(quarantined_at)
PARTITION BY toYYYYMM(record_time)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
