-- Data-skipping indexes for event search (`weft events`, GET /api/v1/events;
-- docs/search.md). The sorting key serves a search by order id, and
-- idx_event_id (001) one by event id; these serve the other selective
-- filters, so a lookup reads a few granules of a table of 100M events:
--   * the record key, a bloom filter of its values;
--   * a header value, a bloom filter of every header's value
--     (headers['name'] = 'value' consults it);
--   * a payload field, a token bloom filter of the payload: the value's
--     tokens (runs of ASCII letters and digits) must all be in a granule
--     before its JSON is parsed. 8 KiB a granule: generated commerce
--     payloads hold ~3,700 distinct tokens per 1,024 rows, which leaves
--     ~0.4 % false positives for 8 bytes an event (a smaller filter is read
--     faster but lets through more granules, whose payloads cost more);
--   * the event time, each granule's minimum and maximum, which skips the
--     parts a time range does not reach (rows are sorted by order id, so
--     within a merged part every granule spans its whole time range).
-- Type, service and topic are not indexed: each value is in nearly every
-- granule, so a search by them alone reads those narrow columns over the
-- time range.
--
-- ADD INDEX builds the index for parts written from now on (and for parts
-- merged from now on), not for the parts already stored: searches stay
-- correct there but read every granule. The migration does not run
-- MATERIALIZE INDEX, a mutation that would read the whole payload column
-- of a table that may hold billions of rows, at start-up, beside the tap;
-- docs/search.md says how an operator runs it when the time suits, and
-- what the indexes cost (3 % more disk; server CPU at insert and merge).
ALTER TABLE {db}.events
    ADD INDEX IF NOT EXISTS idx_record_key record_key TYPE bloom_filter(0.01) GRANULARITY 4;

ALTER TABLE {db}.events
    ADD INDEX IF NOT EXISTS idx_header_values mapValues(headers) TYPE bloom_filter(0.01) GRANULARITY 4;

ALTER TABLE {db}.events
    ADD INDEX IF NOT EXISTS idx_payload_tokens payload TYPE tokenbf_v1(8192, 3, 0) GRANULARITY 1;

ALTER TABLE {db}.events
    ADD INDEX IF NOT EXISTS idx_event_time event_time TYPE minmax GRANULARITY 1
