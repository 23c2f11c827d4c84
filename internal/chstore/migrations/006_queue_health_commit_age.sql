-- Seconds since the group's committed offset on the partition last moved
-- (weft_queue_group_commit_age_seconds per partition): a group that stopped
-- committing shows a growing commit_age_seconds beside its growing
-- lag_seconds, and weft resumes the count from here after a restart.
-- 0 on topic rows (group_id = '').
ALTER TABLE {db}.queue_health
    ADD COLUMN IF NOT EXISTS commit_age_seconds Float64 DEFAULT 0 AFTER lag_seconds
