-- Replay jobs (docs/replay.md): what an operator asked weft to produce
-- again, and how far it got.
--
-- replay_jobs holds one version per change of a job (planned, each
-- checkpoint of its cursor, finished, cancelled, failed); the newest wins
-- (ReplacingMergeTree on version, read with FINAL). cursor is the number
-- of the job's items known produced and committed in Kafka; scan_from, per
-- target "topic/partition", the offset after the job's last record known
-- there. A resume reads the targets from scan_from for records of the job
-- committed after the cursor was stored, so the cursor may lag Kafka but
-- never leads it: the records themselves are the truth.
CREATE TABLE IF NOT EXISTS {db}.replay_jobs
(
    job_id     String,
    kind       LowCardinality(String),
    resource   String,
    actor      String,
    origin     String,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    status     LowCardinality(String),
    planned    UInt64,
    cursor     UInt64,
    produced   UInt64,
    missing    UInt64,
    rate       UInt32,
    scan_from  Map(String, Int64),
    detail     String,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY job_id;

-- The items of a job, fixed when it is planned: the record read back from
-- Kafka by its coordinates and the topic it goes to, numbered from 0 in
-- the order they are produced. A resume produces the same items, so new
-- records arriving in a dead-letter topic after the plan are not part of it.
CREATE TABLE IF NOT EXISTS {db}.replay_items
(
    job_id    String,
    seq       UInt64,
    topic     String,
    partition Int32,
    offset    Int64,
    target    String
)
ENGINE = MergeTree
ORDER BY (job_id, seq);
