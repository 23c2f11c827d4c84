-- One row per generated order (numbers(from, count) gives its index i):
-- its plan (event type codes in causal order, each event caused by the one
-- before), its event times, where it was cut short, its fault, and the
-- records produced by the watermark. Everything is a function of
-- (seed, i): hb mixes them, and every random draw is intHash64(hb + k)
-- for a constant k (k·64 + j for a draw of the order's event j).
--
-- Event type codes index the type_names parameter (code 1 is its first).
SELECT
    number                                                        AS i,
    intHash64(bitXor(i, intHash64({{.Seed}})))                    AS hb,
    {{h 1}}                                    AS h_id,
    concat('ord-', lower(hex(h_id)))                              AS order_id,
    toUInt8(h_id % {{.Partitions}})                               AS part,
    {{h 2}} / 18446744073709551616.0           AS u_stuck,
    {{h 3}} / 18446744073709551616.0           AS u_path,
    {{h 4}}                                    AS h_shape,
    {{h 5}} / 18446744073709551616.0           AS u_fault,
    {{h 6}} / 18446744073709551616.0           AS u_start,

    -- How the order ends: 1 completed, 2 pickup expired (cancelled with
    -- compensations), 3 payment declined, 4 payment failed after all retries.
    toUInt8(multiIf(u_path < {{.PathCompleted}}, 1,
                    u_path < {{.PathExpired}}, 2,
                    u_path < {{.PathDeclined}}, 3, 4))            AS path,
    -- Asynchronous payment (PaymentRequested, retries) or a direct authorization.
    path >= 3 OR h_shape % 100 < {{.AsyncPercent}}                AS async,
    toUInt8(multiIf(path = 4, {{.MaxRetries}},
                    async, [0, 0, 0, 1, 1, 2][1 + intDiv(h_shape, 100) % 6],
                    0))                                           AS retries,
    CAST(arrayConcat(
        [{{code "OrderPlaced"}}, {{code "InventoryReserved"}}],
        if(async, arrayConcat([{{code "PaymentRequested"}}], arrayWithConstant(retries, {{code "PaymentRetryScheduled"}})), []),
        multiIf(path = 1, [{{code "PaymentAuthorized"}}, {{code "FulfillmentStarted"}}, {{code "ReadyForPickup"}}, {{code "CustomerNotified"}},
                           {{code "PickedUp"}}, {{code "PaymentCaptured"}}, {{code "OrderCompleted"}}],
                path = 2, [{{code "PaymentAuthorized"}}, {{code "FulfillmentStarted"}}, {{code "ReadyForPickup"}}, {{code "CustomerNotified"}},
                           {{code "PickupExpired"}}, {{code "InventoryReleased"}}, {{code "PaymentVoided"}}, {{code "OrderCancelled"}}],
                path = 3, [{{code "PaymentDeclined"}}, {{code "InventoryReleased"}}, {{code "OrderCancelled"}}],
                          [{{code "PaymentFailed"}}, {{code "InventoryReleased"}}, {{code "OrderCancelled"}}])),
        'Array(UInt8)')                                           AS plan,
    length(plan)                                                  AS n,
    -- The producing service of each event, as 1-based codes into the sorted services.
    arrayMap(t -> toUInt8(transform(t, {{.CodeArray}}, {{.ServiceCodeArray}}, 0)), plan) AS services,

    -- The wait before each event, after its cause: the pickup hold before
    -- PickupExpired, the backoff after a retry, else the cause type's dwell.
    arrayMap(j -> toInt64(if(j = 1, 0, multiIf(
            plan[j] = {{code "PickupExpired"}},
                {{.HoldLoMs}} + {{he 2}} % {{.HoldSpanMs}},
            plan[j - 1] = {{code "PaymentRetryScheduled"}},
                bitShiftLeft({{.BackoffMs}}, countEqual(arraySlice(plan, 1, j - 1), {{code "PaymentRetryScheduled"}}) - 1)
                    + {{he 2}} % {{.JitterSpanMs}},
            transform(plan[j - 1], {{.CodeArray}}, {{.DwellLoArray}}, 1000)
                + {{he 2}}
                  % (transform(plan[j - 1], {{.CodeArray}}, {{.DwellSpanArray}}, 1))))),
        range(1, n + 1))                                          AS waits,
    -- Orders start evenly over the span, in index order, with jitter.
    toInt64({{.SpanStartMs}} + ((i - {{.FirstIndex}}) + u_start) * {{.SpanMs}} / {{.SpreadOrders}}) AS start_ms,
    arrayMap(w -> start_ms + w, arrayCumSum(waits))               AS times,

    -- Stuck: cut after event p (not a payment outcome, which ends the
    -- payment workflow), unless the age of p at the watermark is within the
    -- margin of its step's SLA. Past the SLA it is stuck; under it, in flight.
    1 + {{h 7}} % (n - 1)                      AS p0,
    toUInt64(if(plan[p0] IN ({{code "PaymentDeclined"}}, {{code "PaymentFailed"}}), p0 - 1, p0)) AS p,
    toInt64(transform(plan[p], {{.CodeArray}}, {{.SLAArray}}, 0)) AS p_sla,
    {{.WatermarkMs}} - times[p]                                   AS p_age,
    u_stuck < {{.StuckFraction}} AND abs(p_age - p_sla) > {{.MarginMs}} AS cut,
    toUInt64(if(cut, p, n))                                       AS kept,
    cut AND p_age > p_sla                                         AS stuck,

    -- Faults, only on orders that finished an hour before the watermark:
    -- 1 a lost event (a middle event never produced; the next one names it),
    -- 2 a redelivered duplicate, 3 every record produced late and shuffled.
    NOT cut AND times[n] < {{.WatermarkMs}} - 3600000             AS settled,
    toUInt8(if(settled, multiIf(u_fault < {{.GapFraction}}, 1,
                                u_fault < {{.GapFraction}} + {{.DupFraction}}, 2,
                                u_fault < {{.GapFraction}} + {{.DupFraction}} + {{.OutOfOrderFraction}}, 3, 0), 0)) AS fault,
    arrayFilter(j -> j > 1 AND j < n AND plan[j] NOT IN ({{code "PaymentDeclined"}}, {{code "PaymentFailed"}},
        {{code "PickedUp"}}, {{code "PaymentCaptured"}}, {{code "InventoryReleased"}}, {{code "PaymentVoided"}}),
        range(1, n + 1))                                          AS lost_candidates,
    toUInt8(if(fault = 1, lost_candidates[1 + {{h 8}} % length(lost_candidates)], 0)) AS lost,
    toUInt8(if(fault = 2, 1 + {{h 9}} % n, 0)) AS dup,
    arraySort(j -> {{he 10}}, range(1, n + 1)) AS burst,
    indexOf(plan, {{code "PaymentFailed"}})                      AS failed_at,

    -- Records: (plan index, kind, produce time ms); kind 0 the event,
    -- 1 its redelivery, 2 the dead-letter copy of PaymentFailed.
    arrayFilter(r -> r.1 != lost AND r.3 <= {{.WatermarkMs}}, arrayConcat(
        arrayMap(j -> (toUInt8(j), toUInt8(0), toInt64(if(fault = 3,
                times[n] + 100 * indexOf(burst, j),
                times[j] + 2 + {{he 11}} % 48))),
            range(1, kept + 1)),
        if(dup > 0, [(dup, toUInt8(1), toInt64(times[dup] + 2000 + {{h 12}} % 58001))], []),
        if(failed_at BETWEEN 1 AND kept, [(toUInt8(failed_at), toUInt8(2), toInt64(times[failed_at] + 60))], [])
    ))                                                            AS records,
    length(records)                                               AS n_records,
    NOT stuck AND (times[kept] > {{.WatermarkMs}} OR (cut AND p_age < p_sla)) AS in_flight
FROM {{.Source}}
