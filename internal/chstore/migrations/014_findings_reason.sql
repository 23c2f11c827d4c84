-- Why a stuck order is stuck (docs/consistency.md "Why is it stuck?"):
-- not-delivered, no-answer, dead-lettered, no-consumer or unknown, with its
-- evidence in the finding's evidence. A column of its own so that counting
-- stuck orders by reason (weft_stuck_orders, the dashboards) reads one
-- LowCardinality column instead of parsing every finding's evidence.
-- Empty on the other kinds, and on stuck findings written before it.
ALTER TABLE {db}.findings
    ADD COLUMN IF NOT EXISTS reason LowCardinality(String) DEFAULT '' AFTER step
