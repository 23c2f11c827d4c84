-- An order's leaves (`weft audit export` and `weft audit erase`,
-- docs/audit.md "Evidence bundle"): audit_leaves is sorted by (topic,
-- partition, leaf_index), so finding one order's record leaves would read
-- the whole order_id column.
-- A bloom filter of the order ids of each granule (8,192 leaves) lets
-- ClickHouse skip the granules that cannot hold the order; an order's
-- leaves sit in a few granules per partition, as its events are close in
-- time. About 10 bits per distinct order id of a granule, ~1 % false
-- positives.
--
-- Like 010, ADD INDEX covers the parts written or merged from now on;
-- MATERIALIZE INDEX (a mutation reading the order_id column) is left to
-- the operator for the parts already stored (docs/audit.md says how).
ALTER TABLE {db}.audit_leaves
    ADD INDEX IF NOT EXISTS idx_order_id order_id TYPE bloom_filter(0.01) GRANULARITY 1
