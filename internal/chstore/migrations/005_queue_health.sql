-- Queue health samples: for every consumer group reading the tapped topics
-- (the applications' groups, not only weft's), per partition, on an interval.
-- lag_seconds is the age of the oldest unconsumed record (from its
-- timestamp); a group that stopped committing keeps a growing lag_seconds.
CREATE TABLE IF NOT EXISTS {db}.queue_health
(
    ts               DateTime64(3, 'UTC'),
    group_id         LowCardinality(String),
    topic            LowCardinality(String),
    partition        Int32,
    start_offset     Int64,
    end_offset       Int64,
    committed_offset Int64,
    lag_messages     Int64,
    lag_seconds      Float64,
    produce_rate     Float64,
    group_state      LowCardinality(String),
    is_dlq           Bool
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (group_id, topic, partition, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY
