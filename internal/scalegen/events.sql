-- The records of a range of orders (orders.sql), as the collector stores
-- them: one row per Kafka record, offsets dense per topic partition in
-- produce order (continuing from the offsets already stored), ids, trace
-- context, version vectors, idempotency keys, headers and payloads (after
-- masking) derived from (seed, order index, plan index).
-- Names are bound ({name:Type}, the values in sql.go's binds): type_names,
-- type_services and type_topics by event type code, services sorted,
-- topic_prefix, dlq_topic and payments_topic, skus and products by catalog
-- index, offset_base (topic/partition → next offset). Numbers are the
-- generator's constants, rendered; the database's name is checked (store.go).
INSERT INTO {{.DB}}.events
(
    topic, partition, offset, record_key, record_time, event_id, event_type, service, order_id,
    event_time, causation_id, correlation_id, trace_id, span_id, parent_span_id, trace_state,
    version_vector, idempotency_key, format, headers, payload, payload_hash, ingested_at
)
SELECT
    topic,
    partition,
    offset,
    order_id,
    fromUnixTimestamp64Milli(record_ms, 'UTC'),
    event_uuid,
    type_name,
    service_name,
    order_id,
    fromUnixTimestamp64Milli(event_ms, 'UTC'),
    if(j = 1, '', {{uuid "j - 1"}}),
    if({{h 13}} % 10 < 3,
       concat('chk_', substring(lower(hex({{h 14}})), 1, 12)),
       order_id)                                                  AS correlation,
    lower(concat(hex({{h 15}}), hex({{h 16}})))                      AS trace,
    lower(hex({{he 16}}))                    AS span,
    if(b3 AND j > 1, lower(hex({{hev 16 "j - 1"}})), ''),
    '',
    vv,
    idem_key,
    fmt,
    mapFromArrays(
        arrayConcat(
            ['content-type', if(b3, 'b3', 'traceparent')],
            if(j > 1 AND NOT structured, ['causation-id'], []),
            if(structured, [], ['correlation-id', 'version-vector', 'idempotency-key']),
            if(fmt = 'cloudevents-binary', ['ce_specversion', 'ce_id', 'ce_type', 'ce_source', 'ce_time', 'ce_subject'], []),
            if(kind = 2, ['dlq-reason', 'dlq-original-topic'], [])),
        arrayConcat(
            [if(fmt = 'cloudevents-structured', 'application/cloudevents+json', 'application/json'),
             if(b3, concat(trace, '-', span, '-1-', lower(hex({{hev 16 "j - 1"}}))),
                     concat('00-', trace, '-', span, '-01'))],
            if(j > 1 AND NOT structured, [{{uuid "j - 1"}}], []),
            if(structured, [], [correlation, toJSONString(CAST(vv, 'Map(String, UInt32)')), idem_key]),
            if(fmt = 'cloudevents-binary', ['1.0', event_uuid, type_name, service_name, event_ts, order_id], []),
            if(kind = 2, ['retries_exhausted', {payments_topic:String}], []))),
    concat('{',
        if(fmt = 'json', concat('"event_id":"', event_uuid, '","event_type":"', type_name, '","occurred_at":"', event_ts, '",'), ''),
        '"order_id":"', order_id, '",',
        if(structured, concat('"idempotency_key":"', idem_key, '",'), ''),
        payload_body,
        ',"meta":{"schema":"commerce.', lower(type_name), '.v2","producer":{"service":"', service_name,
        '","version":"2.', toString(intHash64({{.Seed}} * 64 + plan[j]) % 20), '.', toString(intHash64({{.Seed}} * 64 + plan[j] + 32) % 9),
        '","instance":"', service_name, '-', substring(lower(hex(intHash64({{.Seed}} * 8192 + (i % 97) * 64 + plan[j]))), 1, 5), '"}}}'),
    lower(concat(hex({{he 21}}), hex({{he 22}}), hex({{he 23}}), hex({{he 24}}))),
    {{if .IngestNow}}now64(3, 'UTC'){{else}}fromUnixTimestamp64Milli(record_ms + 150 + ({{he 19}} + kind) % 2851, 'UTC'){{end}}
FROM
(
    SELECT
        *,
        {{uuid "j"}}  AS event_uuid,
        arrayElement({type_names:Array(String)}, plan[j])        AS type_name,
        arrayElement({type_services:Array(String)}, plan[j])     AS service_name,
        concat(replaceOne(toString(fromUnixTimestamp64Milli(event_ms, 'UTC')), ' ', 'T'), 'Z') AS event_ts,
        -- Fulfillment and pickup trace with Zipkin b3 (which names the
        -- parent span), the other services with W3C traceparent.
        service_name IN ('fulfillment', 'pickup')                 AS b3,
        multiIf({{he 20}} % 10 < 5, 'cloudevents-structured',
                {{he 20}} % 10 < 8, 'cloudevents-binary', 'json') AS fmt,
        -- A structured CloudEvent carries causation id, correlation id and
        -- version vector as extension attributes of its envelope and the
        -- idempotency key in its data; the other formats carry them in headers.
        fmt = 'cloudevents-structured'                            AS structured,
        concat(order_id, ':', type_name, ':', toString(countEqual(arraySlice(plan, 1, j), plan[j]))) AS idem_key,
        -- Each event's vector: every service's count of events up to it in
        -- the plan (the cause's vector, own entry + 1), lost events included.
        arraySlice(services, 1, j)                                AS seen,
        CAST(mapFilter((k, v) -> v > 0, map({{range $i, $s := .Services}}{{if $i}}, {{end}}{services:Array(String)}[{{$i}} + 1], countEqual(seen, {{$i}} + 1){{end}})),
             'Map(LowCardinality(String), UInt64)')               AS vv,
{{template "payload" .}}
    FROM
    (
        -- Offsets: dense per topic partition, in produce order, after the
        -- offsets already stored. Only narrow columns go through this sort.
        SELECT
            *,
            toInt64(row_number() OVER (PARTITION BY topic, partition ORDER BY record_ms, i, j, kind)) - 1
                + {offset_base:Map(String, Int64)}[concat(topic, '/', toString(partition))] AS offset
        FROM
        (
            SELECT
                i, hb, order_id, plan, services, part, path, r.1 AS j, r.2 AS kind, r.3 AS record_ms,
                times[j] AS event_ms, times[1] AS start_ms,
                if(kind = 2, {dlq_topic:String},
                   concat({topic_prefix:String}, arrayElement({type_topics:Array(String)}, plan[j]))) AS topic,
                toInt32(if(kind = 2, part % {{.DLQPartitions}}, part)) AS partition
            FROM
            (
{{.Orders}}
            )
            ARRAY JOIN records AS r
        )
    )
)
SETTINGS max_execution_time = 0, max_expanded_ast_elements = 10000000, max_query_size = 10000000
