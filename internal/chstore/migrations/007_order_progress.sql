-- Where each order stands, kept by the consistency detector for the orders it
-- checks (docs/consistency.md): the workflow the order waits in (the one
-- entered last), its step, when it entered it, and when that step's SLA runs
-- out on the stream's clock. One row per order; every check writes a new version.
CREATE TABLE IF NOT EXISTS {db}.order_progress
(
    order_id        String,
    workflow        LowCardinality(String),
    step            LowCardinality(String),
    terminal        Bool,
    entered_at      DateTime64(3, 'UTC'),
    deadline        DateTime64(3, 'UTC'),
    last_event_type LowCardinality(String),
    last_event_time DateTime64(3, 'UTC'),
    events          UInt32,
    updated_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY order_id;

-- The SLA deadlines of unfinished orders, sorted by deadline: a detector pass
-- finds the orders whose deadline passed since the previous pass with a range
-- read, without looking at the other orders. Rows of orders that moved on
-- stay behind and are told apart by order_progress; the TTL drops them.
CREATE TABLE IF NOT EXISTS {db}.order_deadlines
(
    deadline DateTime64(3, 'UTC'),
    order_id String
)
ENGINE = MergeTree
ORDER BY (deadline, order_id)
TTL toDateTime(deadline) + INTERVAL 30 DAY;

-- The detector's cursors, so a restarted weft continues where it stopped
-- instead of checking the whole history again; updated_at is its heartbeat.
CREATE TABLE IF NOT EXISTS {db}.detector_state
(
    name       String,
    state      String,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name;

-- When a finding's condition began: for a stuck order, when it entered the
-- step it is stuck in. `weft stuck` sorts and filters on it.
ALTER TABLE {db}.findings
    ADD COLUMN IF NOT EXISTS since DateTime64(3, 'UTC') DEFAULT 0 AFTER subject
