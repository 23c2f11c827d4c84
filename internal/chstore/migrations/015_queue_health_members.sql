-- How many members a consumer group had when it was sampled: a Stable group
-- with one member left of five is a slow group; an Empty one has none.
-- -1 where unknown: topic rows (group_id = ''), a group that could not be
-- described, and rows written before this column.
ALTER TABLE {db}.queue_health
    ADD COLUMN IF NOT EXISTS members Int32 DEFAULT -1 AFTER group_state
