{{define "payload"}}        -- The order's business data, the same in every event of the order.
        {{h 21}}                               AS h_facts,
        concat('store-', leftPad(toString(101 + h_facts % 420), 4, '0')) AS store_id,
        arrayMap(x -> toUInt8(1 + {{hev 30 "x"}} % {{len .Catalog}}),
                 range(1, 2 + intDiv(h_facts, 7) % 4))            AS item_idx,
        arrayMap(x -> 1 + {{hev 40 "x"}} % 3, range(1, length(item_idx) + 1)) AS item_qty,
        arraySum(arrayMap((x, q) -> {{.PriceArray}}[x] * q, item_idx, item_qty)) AS subtotal,
        intDiv(subtotal * 8, 100)                                 AS tax,
        subtotal + tax                                            AS total,
        {{money "total"}}                                         AS amount,
        ['USD', 'USD', 'USD', 'CAD'][1 + intDiv(h_facts, 31) % 4] AS currency,
        ['visa', 'visa', 'mastercard', 'mastercard', 'amex', 'discover'][1 + intDiv(h_facts, 101) % 6] AS brand,
        concat('cus_', substring(lower(hex({{h 22}})), 1, 10)) AS customer_id,
        concat('pay_', substring(lower(hex({{h 23}})), 1, 14)) AS payment_id,
        concat('res_', substring(lower(hex({{h 24}})), 1, 12)) AS reservation_id,
        1 + countEqual(arraySlice(plan, 1, j - 1), {{code "PaymentRetryScheduled"}}) AS attempt,
        ['issuer_unavailable', 'gateway_timeout', 'rate_limited', 'network_error'][1 + {{hev 25 "attempt"}} % 4] AS retry_reason,
        arrayStringConcat(arrayMap((x, q) -> concat('{"sku":"', {skus:Array(String)}[x], '","qty":', toString(q), '}'),
                                   item_idx, item_qty), ',') AS lines,
        concat('{"start":"', {{ts "intDiv(start_ms + 5400000, 3600000) * 3600000"}},
               '","end":"', {{ts "intDiv(start_ms + 5400000, 3600000) * 3600000 + 259200000"}}, '"}') AS pickup_window,
        -- The data object of each event type (masked: e-mail, phone and card number).
        multiIf(
            plan[j] = {{code "OrderPlaced"}}, concat(
                '"store_id":"', store_id, '","fulfillment_type":"bopis","customer":{"id":"', customer_id,
                '","email":"***","phone":"***"},"items":[',
                arrayStringConcat(arrayMap((x, q) -> concat('{"sku":"', {skus:Array(String)}[x], '","name":"', {products:Array(String)}[x],
                    '","qty":', toString(q), ',"unit_price":', {{money (printf "%s[x]" .PriceArray)}}, '}'), item_idx, item_qty), ','),
                '],"tax":', {{money "tax"}}, ',"amount":', amount, ',"currency":"', currency,
                '","payment":{"method":"card","brand":"', brand, '","card_number":"***","exp":"12/29"},"pickup_window":', pickup_window),
            plan[j] = {{code "InventoryReserved"}}, concat(
                '"store_id":"', store_id, '","reservation_id":"', reservation_id, '","items":[', lines,
                '],"expires_at":"', {{ts "event_ms + 14400000"}}, '"'),
            plan[j] = {{code "PaymentRequested"}}, concat(
                '"payment_id":"', payment_id, '","attempt":', toString(attempt), ',"amount":', amount, ',"currency":"', currency,
                '","method":"card","card_number":"***","brand":"', brand, '","customer_email":"***"'),
            plan[j] = {{code "PaymentRetryScheduled"}}, concat(
                '"payment_id":"', payment_id, '","attempt":', toString(attempt), ',"next_attempt":', toString(attempt + 1),
                ',"reason":"', retry_reason, '","backoff_ms":', toString({{.BackoffMs}} * bitShiftLeft(1, attempt - 1)),
                ',"next_attempt_at":"', {{ts "event_ms + 30000 * bitShiftLeft(1, attempt - 1)"}}, '"'),
            plan[j] = {{code "PaymentAuthorized"}}, concat(
                '"payment_id":"', payment_id, '","attempt":', toString(attempt), ',"amount":', amount, ',"currency":"', currency,
                '","auth_code":"', upper(substring(event_uuid, 1, 6)), '","card_last4":"', leftPad(toString(h_facts % 10000), 4, '0'), '"'),
            plan[j] = {{code "PaymentDeclined"}}, concat(
                '"payment_id":"', payment_id, '","attempt":', toString(attempt), ',"reason":"',
                ['insufficient_funds', 'do_not_honor', 'expired_card', 'suspected_fraud'][1 + h_facts % 4],
                '","decline_code":"', ['51', '05', '54', '59'][1 + h_facts % 4], '"'),
            plan[j] = {{code "PaymentFailed"}}, concat(
                '"payment_id":"', payment_id, '","attempts":', toString(attempt), ',"reason":"retries_exhausted","last_error":"',
                retry_reason, '"'),
            plan[j] = {{code "FulfillmentStarted"}}, concat(
                '"store_id":"', store_id, '","items":[', lines, '],"picker_id":"emp-', toString(1000 + h_facts % 9000), '"'),
            plan[j] = {{code "ReadyForPickup"}}, concat(
                '"store_id":"', store_id, '","pickup_code":"', leftPad(toString(h_facts % 1000000), 6, '0'),
                '","bin":"', ['A', 'B', 'C', 'D', 'E', 'F'][1 + h_facts % 6], '-', leftPad(toString(1 + h_facts % 40), 2, '0'),
                '","pickup_window":', pickup_window),
            plan[j] = {{code "CustomerNotified"}}, concat(
                '"channel":"', ['sms', 'email', 'push'][1 + h_facts % 3], '","template":"order_ready_for_pickup","',
                if(h_facts % 3 = 0, 'phone', 'email'), '":"***"'),
            plan[j] = {{code "PickedUp"}}, concat(
                '"store_id":"', store_id, '","verified_by":"', ['pickup_code', 'id_check'][1 + h_facts % 2], '"'),
            plan[j] = {{code "PaymentCaptured"}}, concat(
                '"payment_id":"', payment_id, '","capture_id":"cap_', substring(replaceAll(event_uuid, '-', ''), 1, 12),
                '","amount":', amount, ',"currency":"', currency, '"'),
            plan[j] = {{code "OrderCompleted"}}, concat(
                '"store_id":"', store_id, '","amount":', amount, ',"currency":"', currency, '"'),
            plan[j] = {{code "PickupExpired"}}, concat(
                '"store_id":"', store_id, '","reason":"not_collected","hold_expired_at":"', event_ts, '"'),
            plan[j] = {{code "InventoryReleased"}}, concat(
                '"store_id":"', store_id, '","reservation_id":"', reservation_id, '","items":[', lines, '],"reason":"',
                ['', 'pickup_expired', 'payment_declined', 'payment_failed'][path], '"'),
            plan[j] = {{code "PaymentVoided"}}, concat(
                '"payment_id":"', payment_id, '","amount":', amount, ',"currency":"', currency, '","reason":"pickup_expired"'),
            concat(
                '"store_id":"', store_id, '","reason":"', ['', 'pickup_expired', 'payment_declined', 'payment_failed'][path], '"')
        )                                                         AS payload_body
{{end}}