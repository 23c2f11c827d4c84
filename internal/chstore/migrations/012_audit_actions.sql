-- The operator-actions log (docs/audit.md, "Operator actions"): one row per
-- leaf of the cluster's actions Merkle log — who did what, to what, when,
-- from where, and how it ended. The columns repeat the leaf's fields for
-- queries and dashboards; leaf holds the canonical bytes the log hashes,
-- and a verifier trusts only those. order_id is in clear here (as in
-- events) and only its keyed tag is in the leaf. state is the log's compact
-- range after this leaf: the next writer appends from the newest one.
--
-- Writers append with a deduplication token naming the leaf index
-- ("action:<index>"): two writers racing for one index insert the same
-- token, ClickHouse keeps the first block and drops the second, and the
-- loser, reading back a leaf that is not its own, appends again at the
-- next index. No lock, no server beyond ClickHouse.
CREATE TABLE IF NOT EXISTS {db}.audit_actions
(
    leaf_index UInt64,
    time       DateTime64(3, 'UTC'),
    actor      String,
    origin     String,
    verb       LowCardinality(String),
    resource   String,
    outcome    LowCardinality(String),
    detail     String,
    order_id   String,
    targets    Array(Tuple(topic String, partition Int32, offset Int64)),
    leaf       String,
    leaf_hash  FixedString(32),
    state      String,
    stored_at  DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY leaf_index
SETTINGS non_replicated_deduplication_window = 10000;
