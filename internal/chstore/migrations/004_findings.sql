-- Findings of the consistency engine. One row per finding id; every state
-- change (seen again, resolved, acknowledged) writes a new version: read
-- with FINAL. step is the workflow step (stuck findings); subject says what
-- in the order the finding is about (an event id, a service, an invariant).
-- Keyed by kind first: `weft stuck` reads the active stuck findings alone,
-- and an order's findings are found by kind and order id.
CREATE TABLE IF NOT EXISTS {db}.findings
(
    finding_id  String,
    kind        LowCardinality(String),
    order_id    String,
    workflow    LowCardinality(String),
    step        LowCardinality(String),
    subject     String,
    status      LowCardinality(String),
    summary     String,
    evidence    String,
    first_seen  DateTime64(3, 'UTC'),
    last_seen   DateTime64(3, 'UTC'),
    resolved_at DateTime64(3, 'UTC'),
    ack_by      String,
    ack_at      DateTime64(3, 'UTC'),
    ack_reason  String,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (kind, order_id, finding_id)
