-- The audit trail's leaves (docs/audit.md): one row per leaf of a
-- topic-partition's Merkle log, in leaf order. leaf holds the leaf's
-- canonical bytes (what the log hashes) and leaf_hash its RFC 6962 hash, so
-- proofs read one narrow column. salt is kept apart from the event row:
-- erasing an order deletes the row's payload and this salt, and the leaf
-- still verifies. state is the partition log's state after this leaf, set
-- on the last leaf of each partition in an insert (empty otherwise): the
-- tap resumes from the newest one. A retried insert carries the same
-- insert_deduplication_token and is dropped whole.
CREATE TABLE IF NOT EXISTS {db}.audit_leaves
(
    topic      LowCardinality(String),
    partition  Int32,
    leaf_index UInt64,
    kind       LowCardinality(String),
    offset     Int64,
    end        Int64,
    order_id   String,
    leaf       String,
    leaf_hash  FixedString(32),
    salt       String,
    state      String,
    stored_at  DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (topic, partition, leaf_index)
SETTINGS non_replicated_deduplication_window = 10000;

-- Checkpoints of the audit logs, as signed notes (or the bare checkpoint
-- text when weft has no signing key). Also copied outside ClickHouse
-- (audit.checkpoint.dir), so deleting one here is detected.
CREATE TABLE IF NOT EXISTS {db}.audit_checkpoints
(
    origin     String,
    size       UInt64,
    root       FixedString(32),
    note       String,
    signed     Bool,
    created_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (origin, size, created_at)
