-- Per-order progress, merged by ClickHouse as events arrive: for each event
-- type, the first and last event time (epoch ms) it was seen at. The consistency
-- engine maps event types to workflow steps in SQL it generates from the workflows.
CREATE TABLE IF NOT EXISTS {db}.order_state
(
    order_id     String,
    first_event  SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_event   SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    last_ingest  SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    type_first   SimpleAggregateFunction(minMap, Map(String, Int64)),
    type_last    SimpleAggregateFunction(maxMap, Map(String, Int64)),
    events       SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY order_id
-- Blocks of a retried insert into events arrive here again; the window lets
-- ClickHouse drop them (deduplicate_blocks_in_dependent_materialized_views).
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.order_state_mv TO {db}.order_state AS
SELECT
    order_id,
    min(event_time)                                               AS first_event,
    max(event_time)                                               AS last_event,
    max(ingested_at)                                              AS last_ingest,
    minMap(map(toString(event_type), toUnixTimestamp64Milli(event_time)))   AS type_first,
    maxMap(map(toString(event_type), toUnixTimestamp64Milli(event_time)))   AS type_last,
    count()                                                       AS events
FROM {db}.events
WHERE order_id != '' AND event_type != ''
GROUP BY order_id
