package collector

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/event"
)

func rec(topic, key, value string, headers ...string) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: 2, Offset: 41, Key: []byte(key), Value: []byte(value),
		Timestamp: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: headers[i], Value: []byte(headers[i+1])})
	}
	return r
}

func mustDecoder(t *testing.T, c Config) *Decoder {
	t.Helper()
	d, err := NewDecoder(c)
	require.NoError(t, err)
	return d
}

func TestDecodeFormats(t *testing.T) {
	d := mustDecoder(t, Default())
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		name string
		rec  *kgo.Record
		want event.Event
	}{
		{
			name: "cloudevents structured",
			rec: rec("orders", "k1", `{"specversion":"1.0","id":"e1","type":"OrderPlaced","source":"/svc/orders","time":"2026-11-24T09:00:00.123Z","subject":"o-1","causationid":"c0","versionvector":{"orders":3},"data":{"order_id":"o-1","amount":12.5}}`,
				"traceparent", tp, "correlation-id", "corr-1", "idempotency-key", "ik-1"),
			want: event.Event{EventID: "e1", Type: "OrderPlaced", Service: "orders", OrderID: "o-1",
				EventTime: time.Date(2026, 11, 24, 9, 0, 0, 123e6, time.UTC), CausationID: "c0", CorrelationID: "corr-1",
				TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", VersionVector: map[string]uint64{"orders": 3},
				IdempotencyKey: "ik-1", Format: event.FormatCloudEventsStructured, Payload: []byte(`{"amount":12.5,"order_id":"o-1"}`)},
		},
		{
			name: "cloudevents binary",
			rec: rec("payments", "o-2", `{"order_id":"o-2","idempotency_key":"ik-2"}`,
				"ce_specversion", "1.0", "ce_id", "e2", "ce_type", "PaymentAuthorized", "ce_source", "payments",
				"ce_time", "2026-11-24T09:01:00Z", "ce_subject", "o-2", "causation-id", "e1", "version-vector", `{"orders":1,"payments":2}`,
				"content-type", "application/json"),
			want: event.Event{EventID: "e2", Type: "PaymentAuthorized", Service: "payments", OrderID: "o-2",
				EventTime: time.Date(2026, 11, 24, 9, 1, 0, 0, time.UTC), CausationID: "e1",
				VersionVector: map[string]uint64{"orders": 1, "payments": 2}, IdempotencyKey: "ik-2",
				Format: event.FormatCloudEventsBinary, Payload: []byte(`{"idempotency_key":"ik-2","order_id":"o-2"}`)},
		},
		{
			name: "plain json with defaults",
			rec:  rec("inventory.v1", "", `{"event_id":"e3","event_type":"InventoryReserved","orderId":"o-3","occurred_at":1764000000000}`),
			want: event.Event{EventID: "e3", Type: "InventoryReserved", Service: "inventory", OrderID: "o-3",
				EventTime: time.UnixMilli(1764000000000).UTC(), Format: event.FormatJSON,
				Payload: []byte(`{"event_id":"e3","event_type":"InventoryReserved","occurred_at":1764000000000,"orderId":"o-3"}`)},
		},
		{
			name: "plain json falls back to key, record time and offsets",
			rec:  rec("pickup", "o-4", `{"type":"PickedUp"}`),
			want: event.Event{EventID: "pickup/2/41", Type: "PickedUp", Service: "pickup", OrderID: "o-4",
				EventTime: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), Format: event.FormatJSON, Payload: []byte(`{"type":"PickedUp"}`)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.Decode(tc.rec)
			require.NoError(t, err)
			assert.Equal(t, tc.want.EventID, got.EventID)
			assert.Equal(t, tc.want.Type, got.Type)
			assert.Equal(t, tc.want.Service, got.Service)
			assert.Equal(t, tc.want.OrderID, got.OrderID)
			assert.True(t, tc.want.EventTime.Equal(got.EventTime), "event time %s, want %s", got.EventTime, tc.want.EventTime)
			assert.Equal(t, tc.want.CausationID, got.CausationID)
			assert.Equal(t, tc.want.CorrelationID, got.CorrelationID)
			assert.Equal(t, tc.want.TraceID, got.TraceID)
			assert.Equal(t, tc.want.SpanID, got.SpanID)
			assert.Equal(t, tc.want.VersionVector, got.VersionVector)
			assert.Equal(t, tc.want.IdempotencyKey, got.IdempotencyKey)
			assert.Equal(t, tc.want.Format, got.Format)
			assert.JSONEq(t, string(tc.want.Payload), string(got.Payload))
			assert.Len(t, got.PayloadHash, 64)
			assert.Equal(t, tc.rec.Topic, got.Topic)
			assert.Equal(t, int64(41), got.Offset)
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	d := mustDecoder(t, Config{MaxRecordBytes: 1 << 20})
	for _, tc := range []struct {
		name, value, reason string
		headers             []string
	}{
		{"malformed json", `{"type":`, "not valid JSON", nil},
		{"not an object", `[1,2]`, "JSON array, want an object", nil},
		{"missing order id", `{"event_type":"OrderPlaced"}`, "no order id", nil},
		{"missing type", `{"order_id":"o"}`, "no event type", nil},
		{"order id wrong type", `{"event_type":"X","order_id":{"a":1}}`, `order id at "order_id" is a JSON object`, nil},
		{"type wrong type", `{"event_type":true,"order_id":"o"}`, `type at "event_type" is a JSON boolean`, nil},
		{"time wrong type", `{"event_type":"X","order_id":"o","occurred_at":[1]}`, "event time", nil},
		{"time unparseable", `{"event_type":"X","order_id":"o","occurred_at":"yesterday"}`, "not an RFC 3339 time", nil},
		{"negative vector", `{"event_type":"X","order_id":"o"}`, `entry "orders" is -1`, []string{"version-vector", `{"orders":-1}`}},
		{"vector not object", `{"event_type":"X","order_id":"o"}`, "want an object", []string{"version-vector", `[1]`}},
		{"invalid utf8", "{\"event_type\":\"X\xff\",\"order_id\":\"o\"}", "not valid UTF-8", nil},
		{"empty", ``, "empty value", nil},
		{"too large", `{"order_id":"` + strings.Repeat("x", 5<<20) + `"}`, "over the 1048576-byte limit", nil},
		{"trailing garbage", `{"event_type":"X","order_id":"o"} {}`, "trailing data", nil},
		{"binary bad data", `nope`, "binary data is not valid JSON", []string{"ce_specversion", "1.0", "ce_type", "X", "ce_subject", "o"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rec("orders", "", tc.value, tc.headers...)
			_, err := d.Decode(r)
			var de *DecodeError
			require.True(t, errors.As(err, &de), "want a DecodeError, got %v", err)
			assert.Contains(t, de.Reason, tc.reason)
			q := d.Quarantine(r, de.Reason)
			assert.Equal(t, de.Reason, q.Reason)
			assert.Equal(t, len(tc.value) > 0, len(q.Value) > 0, "quarantine keeps the value")
		})
	}
}

func TestDecodeMasksSensitiveData(t *testing.T) {
	d := mustDecoder(t, Default())
	r := rec("payments", "o-9", `{"event_type":"PaymentRequested","order_id":"o-9","card_number":"4111111111111111","cvv":"737","customer":{"email":"a.b@example.com"},"note":"card 5500 0055 5555 5559"}`,
		"x-card", "4111111111111111")
	e, err := d.Decode(r)
	require.NoError(t, err)
	p := string(e.Payload)
	for _, secret := range []string{"4111111111111111", "737", "a.b@", "5500 0055 5555 5559"} {
		assert.NotContains(t, p, secret)
	}
	assert.Contains(t, p, "************1111")
	assert.Equal(t, "************1111", e.Headers["x-card"])
	q := d.Quarantine(r, "test")
	assert.NotContains(t, string(q.Value), "4111111111111111")
}

func TestMappingOverridesDefaults(t *testing.T) {
	c := Default()
	c.Mapping = []Mapping{{
		Topic:          `legacy\..*`,
		OrderID:        []string{"header:x-order", "payload.ref"},
		EventID:        []string{"uuid"},
		Type:           []string{"kind"},
		Service:        []string{"const:legacy-shop"},
		Time:           []string{"ts"},
		CausationID:    []string{"header:x-caused-by"},
		CorrelationID:  []string{"meta.request"},
		VersionVector:  []string{"meta.vv"},
		IdempotencyKey: []string{"header:x-idem"},
	}}
	d := mustDecoder(t, c)
	e, err := d.Decode(rec("legacy.orders", "", `{"uuid":"u-1","kind":"OrderPlaced","payload":{"ref":"L-1"},"ts":"2026-01-02T03:04:05Z",
		"meta":{"request":"req-9","vv":{"legacy-shop":4}}}`, "x-caused-by", "u-0", "x-idem", "idem-1"))
	require.NoError(t, err)
	assert.Equal(t, "L-1", e.OrderID)
	assert.Equal(t, "u-1", e.EventID)
	assert.Equal(t, "OrderPlaced", e.Type)
	assert.Equal(t, "legacy-shop", e.Service)
	assert.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), e.EventTime)
	assert.Equal(t, "u-0", e.CausationID)
	assert.Equal(t, "req-9", e.CorrelationID)
	assert.Equal(t, map[string]uint64{"legacy-shop": 4}, e.VersionVector)
	assert.Equal(t, "idem-1", e.IdempotencyKey)
	// A header source wins over the path after it.
	e, err = d.Decode(rec("legacy.orders", "", `{"kind":"X","payload":{"ref":"L-1"}}`, "x-order", "H-7"))
	require.NoError(t, err)
	assert.Equal(t, "H-7", e.OrderID)
	// Another topic keeps the defaults.
	_, err = d.Decode(rec("orders", "", `{"kind":"OrderPlaced","payload":{"ref":"L-1"}}`))
	assert.Error(t, err)
}

func TestConfigValidateNamesKeys(t *testing.T) {
	c := Default()
	c.Group = ""
	c.Topics.Include = []string{"("}
	c.Batch.MaxRecords = 0
	c.StartFrom = "middle"
	c.Fetch.MaxConcurrent = 0
	c.Fetch.MaxPartitionBytes = c.Fetch.MaxBytes + 1
	c.Mapping = []Mapping{{Topic: "", OrderID: []string{"bad path"}}}
	err := c.Validate()
	require.Error(t, err)
	for _, key := range []string{"group:", "topics.include[0]:", "batch.max_records:", "start_from:", "fetch.max_concurrent:",
		"fetch.max_partition_bytes:", "mapping[0].topic:", "mapping[0].order_id[0]:"} {
		assert.Contains(t, err.Error(), key)
	}
}

// The fetch defaults bound what the Kafka client buffers (docs/benchmarks.md).
func TestFetchDefaults(t *testing.T) {
	f := Default().Fetch
	assert.EqualValues(t, 8<<20, f.MaxBytes)
	assert.EqualValues(t, 1<<20, f.MaxPartitionBytes)
	assert.Equal(t, 2, f.MaxConcurrent)
	require.NoError(t, Default().Validate())
}

// FuzzDecode: whatever the bytes, Decode returns an event with an order id and
// a type, or a DecodeError with a reason — never a panic, never both or neither.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"1","type":"T","source":"s","subject":"o","data":{"a":1}}`), []byte("ce_type"), []byte("T"))
	f.Add([]byte(`{"event_type":"T","order_id":"o","occurred_at":"2026-01-01T00:00:00Z"}`), []byte("version-vector"), []byte(`{"a":1}`))
	f.Add([]byte("\xff\xfe"), []byte("traceparent"), []byte("00-x"))
	d, err := NewDecoder(Default())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value, hk, hv []byte) {
		r := &kgo.Record{Topic: "orders", Value: value, Key: []byte("k"), Timestamp: time.Unix(1764000000, 0),
			Headers: []kgo.RecordHeader{{Key: string(hk), Value: hv}}}
		e, err := d.Decode(r)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		if e.OrderID == "" || e.Type == "" || e.EventID == "" || len(e.PayloadHash) != 64 {
			t.Fatalf("incomplete event: %+v", e)
		}
	})
}

// A key repeated in one JSON object: the last one wins, in every lookup
// and in the stored payload, which keeps the key once (as encoding/json
// decodes such an object); whatever the earlier values held is dropped,
// so nothing of it reaches storage unmasked.
func TestDecodeRepeatedKeys(t *testing.T) {
	d := mustDecoder(t, Default())
	e, err := d.Decode(rec("orders", "", `{"event_type":"A","order_id":"o-1","event_type":"B",`+
		`"card_number":"4111111111111111","card_number":"none","note":"4111 1111 1111 1111","note":"ok",`+
		`"data":{"order_id":"x"},"data":{"idempotency_key":"ik"}}`))
	require.NoError(t, err)
	assert.Equal(t, "B", e.Type)
	assert.Equal(t, "o-1", e.OrderID)
	assert.Equal(t, "ik", e.IdempotencyKey)
	assert.Equal(t, `{"card_number":"***","data":{"idempotency_key":"ik"},"event_type":"B","note":"ok","order_id":"o-1"}`, string(e.Payload))

	// A structured event whose data is repeated: the last data is the payload.
	e, err = d.Decode(rec("orders", "", `{"specversion":"1.0","type":"T","subject":"o","data":{"cvv":"123"},"data":{"a":1,"a":2}}`))
	require.NoError(t, err)
	assert.Equal(t, `{"a":2}`, string(e.Payload))
}

// Numbers are stored as they were written: no rounding through float64,
// whatever their size; one that holds a card number is masked.
func TestDecodeKeepsNumbers(t *testing.T) {
	d := mustDecoder(t, Default())
	e, err := d.Decode(rec("orders", "", `{"event_type":"T","order_id":123456789012345678901234567890,`+
		`"big":123456789012345678901234567891,"huge":1e400,"neg":-0,"frac":1.50,"exp":2E-3,"n":4111111111111111}`))
	require.NoError(t, err)
	assert.Equal(t, "123456789012345678901234567890", e.OrderID)
	assert.Equal(t, `{"big":123456789012345678901234567891,"event_type":"T","exp":2E-3,`+
		`"frac":1.50,"huge":1e400,"n":"************1111","neg":-0,"order_id":123456789012345678901234567890}`, string(e.Payload))
}

// Object keys that hold a card number or an e-mail address (maps keyed by
// customer e-mail, by card) are masked like values. Masked keys that
// collide are kept apart with "#2", "#3", so no member is lost, and the
// payload is what the oracle (redacttest.Masker) and encoding/json write.
// (Keys are named in key order: "4111-…" sorts before "4111…".)
func TestDecodeMasksKeys(t *testing.T) {
	d := mustDecoder(t, Default())
	value := `{"event_type":"T","order_id":"o-1","by_customer":{"bob@example.com":{"n":2},` +
		`"alice@example.com":{"n":1},"***@example.com":"literal","carol@other.org":3},` +
		`"cards":{"4111111111111111":"visa","5500 0055 5555 5559":"mc","4111-1111-1111-1111":"visa again"}}`
	e, err := d.Decode(rec("orders", "", value))
	require.NoError(t, err)
	assert.Equal(t, `{"by_customer":{"***@example.com":"literal","***@example.com#2":{"n":1},"***@example.com#3":{"n":2},`+
		`"***@other.org":3},"cards":{"************1111":"visa again","************1111#2":"visa","************5559":"mc"},`+
		`"event_type":"T","order_id":"o-1"}`, string(e.Payload))
	for _, secret := range []string{"alice", "bob", "carol", "4111111111111111", "5500 0055", "4111-1111"} {
		assert.NotContains(t, string(e.Payload), secret)
	}
	for _, od := range diffDecoders(t) {
		checkSame(t, od, rec("orders", "", value))
	}
}

// A quarantined record is masked like a stored one, also when its value is
// not UTF-8 and is kept as base64.
func TestQuarantineMasksInvalidUTF8(t *testing.T) {
	d := mustDecoder(t, Default())
	r := rec("orders", "o-1", "{\"note\":\"4111111111111111\",\"x\":\"\xff\xfe\"")
	_, err := d.Decode(r)
	require.Error(t, err)
	q := d.Quarantine(r, err.Error())
	require.True(t, strings.HasPrefix(string(q.Value), "base64:"), "%q", q.Value)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(string(q.Value), "base64:"))
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "4111111111111111")
	assert.Contains(t, string(raw), "************1111")
	assert.Contains(t, string(raw), "\xff\xfe", "the other bytes are kept")
}

// TestQuarantineAppliesEveryRule: a record that fails to decode is masked
// by every rule, the key-based ones included — a CVV under its key, a card
// under "card", an e-mail as the record key or a header name — before it is
// kept in quarantine.
func TestQuarantineAppliesEveryRule(t *testing.T) {
	d := mustDecoder(t, Default())
	r := rec("orders", "jane.doe@example.com", `{"order_id":"o-1","cvv":"737","card":{"number":"4000 0566 5566 5556"},"pin":`)
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: "x-customer-jane.doe@example.com", Value: []byte("vip")},
		kgo.RecordHeader{Key: "cvv", Value: []byte("737")}, kgo.RecordHeader{Key: "x-debug", Value: []byte(`{"security_code":"4242"}`)})
	_, err := d.Decode(r)
	require.Error(t, err)
	q := d.Quarantine(r, err.Error())
	stored := string(q.Key) + string(q.Value) + q.Reason
	for k, v := range q.Headers {
		stored += k + "=" + v
	}
	for _, secret := range []string{"737", "4242", "jane.doe", "4000 0566", "5556"} {
		assert.NotContains(t, stored, secret)
	}
	assert.Equal(t, "***@example.com", string(q.Key))
	assert.Equal(t, "vip", q.Headers["***@example.com"], "a header named by an e-mail keeps its value under the masked name")
	assert.Equal(t, `{"order_id":"o-1","cvv":"***","card":***,"pin":`, string(q.Value))
}

// TestDecodeMasksKeyIDsAndHeaderNames: a decoded record's key, the ids read
// from it and its header names are masked like values.
func TestDecodeMasksKeyIDsAndHeaderNames(t *testing.T) {
	d := mustDecoder(t, Default())
	r := rec("orders", "jane.doe@example.com", `{"event_type":"OrderPlaced","event_id":"e-4111111111111111"}`)
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: "x-jane.doe@example.com", Value: []byte("1")},
		kgo.RecordHeader{Key: "x-john.roe@example.com", Value: []byte("2")},
		kgo.RecordHeader{Key: "x-note", Value: []byte(`cvv=737`)})
	e, err := d.Decode(r)
	require.NoError(t, err)
	assert.Equal(t, "***@example.com", e.Key)
	assert.Equal(t, "***@example.com", e.OrderID, "the order id read from the key")
	assert.Equal(t, "e-************1111", e.EventID)
	assert.Equal(t, map[string]string{"***@example.com": "1", "***@example.com#2": "2", "x-note": "cvv=***"}, e.Headers)
	want := sha256.Sum256(e.Payload)
	assert.Equal(t, hex.EncodeToString(want[:]), e.PayloadHash, "the hash is of what is stored, never of the original")
}
