package collector

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector/internal/redact/redacttest"
	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/event"
)

// The differential test: Decoder.Decode gives, for any record, what the
// decoder it replaced (oracleDecode, decode_oracle_test.go) gives — the
// same event or the same quarantine reason. Payloads are compared as JSON
// values, and byte for byte against encoding/json's encoding of that value
// (keys sorted, as before).

// diffDecoder is a Decoder and the oracle's masking of the same rules.
type diffDecoder struct {
	*Decoder
	mask *redacttest.Masker
}

func newDiffDecoder(tb testing.TB, c Config) diffDecoder {
	d, err := NewDecoder(c)
	if err != nil {
		tb.Fatal(err)
	}
	return diffDecoder{Decoder: d, mask: redacttest.New(c.Redaction.rules())}
}

// diffDecoders are the configurations records are decoded with: the
// defaults, and a mapping rule for legacy.* with every kind of source.
func diffDecoders(tb testing.TB) []diffDecoder {
	c := Default()
	c.Mapping = []Mapping{{
		Topic:          `legacy\..*`,
		OrderID:        []string{"header:X-Order", "payload.ref", "data", "a.b.c.d"},
		EventID:        []string{"uuid", "data.id", "key"},
		Type:           []string{"kind", "data.type", "const:Fallback"},
		Service:        []string{"svc.name", "header:ce_source"},
		Time:           []string{"ts", "data.ts", "header:x-ts"},
		CausationID:    []string{"header:x-caused-by", "data"},
		CorrelationID:  []string{"meta.request", "key"},
		VersionVector:  []string{"meta.vv", "data.vv", "header:x-vv"},
		IdempotencyKey: []string{"header:x-idem", "meta"},
	}}
	small := Default()
	small.MaxRecordBytes = 64
	var ds []diffDecoder
	for _, cfg := range []Config{Default(), c, small} {
		ds = append(ds, newDiffDecoder(tb, cfg))
	}
	return ds
}

// checkSame decodes r with d and with the oracle and fails on any difference.
func checkSame(t testing.TB, d diffDecoder, r *kgo.Record) {
	t.Helper()
	got, err := d.Decode(r)
	want, wantErr := oracleDecode(d, r)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%s: Decode error %v, oracle error %v\n  value %q\n  headers %q", r.Topic, err, wantErr, r.Value, r.Headers)
	}
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("error %v is not a *DecodeError", err)
		}
		// With several bad entries in a version vector the oracle names one
		// at random (it ranges over a map); Decode names the first. Ask the
		// oracle again until it names the same one.
		for i := 0; i < 200 && err.Error() != wantErr.Error() && strings.HasPrefix(wantErr.Error(), "version vector at"); i++ {
			_, wantErr = oracleDecode(d, r)
		}
		if err.Error() != wantErr.Error() {
			t.Fatalf("%s: Decode reason\n  %q\noracle reason\n  %q\n  value %q\n  headers %q", r.Topic, err, wantErr, r.Value, r.Headers)
		}
		return
	}
	gotPayload, wantPayload := got.Payload, want.Payload
	got.Payload, want.Payload = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: events differ\n  Decode %+v\n  oracle %+v\n  value %q\n  headers %q", r.Topic, got, want, r.Value, r.Headers)
	}
	wantValue, err := decodeStd(wantPayload)
	if err != nil {
		t.Fatalf("oracle payload %q: %v", wantPayload, err)
	}
	gotValue, err := decodeStd(gotPayload)
	if err != nil {
		t.Fatalf("payload %q is not JSON: %v (oracle %s)", gotPayload, err, wantPayload)
	}
	if !reflect.DeepEqual(gotValue, wantValue) {
		t.Fatalf("payloads differ\n  Decode %s\n  oracle %s\n  value %q", gotPayload, wantPayload, r.Value)
	}
	if canonical, err := stdjson.Marshal(wantValue); err != nil || !bytes.Equal(canonical, gotPayload) {
		t.Fatalf("payload is not encoding/json's encoding of the oracle's\n  Decode        %s\n  encoding/json %s (%v)", gotPayload, canonical, err)
	}
}

func decodeStd(b []byte) (any, error) {
	dec := stdjson.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// diffRecord builds a record on topic from a value and "key=value" header lines.
func diffRecord(topic string, value []byte, key, headers string) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: 3, Offset: 99, Key: []byte(key), Value: value,
		Timestamp: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	if headers != "" {
		for _, line := range strings.Split(headers, "\n") {
			k, v, _ := strings.Cut(line, "=")
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	return r
}

func headerLines(r *kgo.Record) string {
	var lines []string
	for _, h := range r.Headers {
		lines = append(lines, h.Key+"="+string(h.Value))
	}
	return strings.Join(lines, "\n")
}

// demoRecords are the demo's records: all three encodings, its faults
// included. (The padded records of `make bench` are compared in
// decode_workload_diff_test.go, outside the package: benchkit imports it.)
func demoRecords(tb testing.TB, orders int) []*kgo.Record {
	cfg := demo.DefaultConfig()
	cfg.Orders = orders
	cfg.Now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	plan, err := demo.Plan(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return plan.Records
}

// adversarialValues are record values meant to find differences: every
// encoding/json corner the parser must match, lookups meeting nulls, wrong
// types, repeated keys and escapes, and data the masking must catch.
var adversarialValues = []string{
	// Keys that hold e-mail addresses and card numbers, colliding once masked.
	`{"event_type":"T","order_id":"o","m":{"b@x.io":1,"a@x.io":{"c@x.io":[2]},"***@x.io":0,"***@x.io#2":9,"4111111111111111":"v","4111 1111 1111 1111":"w"}}`,
	`{"specversion":"1.0","id":"e1","type":"T","source":"/svc/orders/","time":"2026-11-24T09:00:00.123456789+02:00","subject":"o-1","data":{"order_id":"o-1","amount":12.5}}`,
	`{"specversion":null,"type":"T","subject":"o","data":null}`,
	`{"specversion":"1.0","type":"T","subject":"o"}`,
	`{"specversion":"1.0","type":"T","data":{"order_id":7,"idempotency_key":12}}`,
	`{"specversion":"1.0","type":"T","data":[1,2],"subject":""}`,
	`{"event_type":"T","order_id":"o","occurred_at":1764000000}`,
	`{"event_type":"T","order_id":"o","occurred_at":1764000000123456789}`,
	`{"event_type":"T","order_id":"o","occurred_at":1764000000123456}`,
	`{"event_type":"T","order_id":"o","occurred_at":-1}`,
	`{"event_type":"T","order_id":"o","occurred_at":1e400}`,
	`{"event_type":"T","order_id":"o","occurred_at":1.5e9}`,
	`{"event_type":"T","order_id":"o","occurred_at":9e12}`,
	`{"event_type":"T","order_id":"o","occurred_at":""}`,
	`{"event_type":"T","order_id":"o","occurred_at":null,"time":"2026-01-01T00:00:00Z"}`,
	`{"event_type":"T","order_id":"o","occurred_at":true}`,
	`{"event_type":"T","order_id":123456789012345678901234567890,"event_id":1.5e3}`,
	`{"event_type":"T","order_id":"","orderId":"o2"}`,
	`{"event_type":"T","order_id":null,"orderId":null,"data":{"order_id":"o3"}}`,
	`{"event_type":"T","order_id":"a","order_id":"b","event_type":"U"}`,
	`{"event_type":"T","order_id":{"x":1},"order_id":"b"}`,
	`{"event_type":"T","order_id":"b","order_id":[1]}`,
	`{"event_typ\u0065":"T","order_\u0069d":"\u006f\ud83d\ude00"}`,
	`{"event_type":"T\ud800","order_id":"\udc00x\ud800\u0041"}`,
	`{"event_type":"T","order_id":"o","version_vector":{"a":1,"a":2,"b":3}}`,
	`{"event_type":"T","order_id":"o","version_vector":{"a":"x","a":2}}`,
	`{"event_type":"T","order_id":"o","version_vector":{"a":-1,"b":1.5,"":2}}`,
	`{"event_type":"T","order_id":"o","version_vector":{"":1}}`,
	`{"event_type":"T","order_id":"o","version_vector":"{\"a\":1}"}`,
	`{"event_type":"T","order_id":"o","version_vector":"{\"a\\u0062\":1}"}`,
	`{"event_type":"T","order_id":"o","version_vector":"[1]"}`,
	`{"event_type":"T","order_id":"o","version_vector":""}`,
	`{"event_type":"T","order_id":"o","version_vector":"{\"a\":1} x"}`,
	`{"event_type":"T","order_id":"o","version_vector":[1]}`,
	`{"event_type":"T","order_id":"o","version_vector":7}`,
	`{"event_type":"T","order_id":"o","version_vector":{"a":18446744073709551616}}`,
	`{"event_type":"T","order_id":"o","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"k=v"}`,
	`{"event_type":"T","order_id":"o","traceparent":7,"tracestate":["k"]}`,
	`{"event_type":"T","order_id":"o","card_number":"4111 1111 1111 1111","cvv":737,"email":null,"phone":{"n":1},"dob":[1],"ssn":true,"pan":"12"}`,
	`{"event_type":"T","order_id":"o","note":"card 4111-1111-1111-1111, mail jane.doe@example.com","n":4111111111111111,"m":-4111111111111111.0}`,
	`{"event_type":"T","order_id":"o","CardNumber":"5500005555555559","card_number":"x","card_number":"4111111111111111"}`,
	`{"event_type":"T","order_id":"o","nested":[{"Card-Number":"5500 0055 5555 5559"},[{"cvv":"1"}]],"e\u006dail":"a@b.co"}`,
	`{"event_type":"T","order_id":"o","x":"\u0034111111111111111","y":"<&>\u2028\u2029\b\f\u0001\"\\\/"}`,
	`{"event_type":"T","order_id":"o","<":1,"A":2,"\u00e9":3,"z":4,"":5,"a\u0000":6,"a":7}`,
	`{"event_type":"T","order_id":"o","big":123456789012345678901234567890e-30,"z":-0,"f":1E+2}`,
	`{"kind":"K","payload":{"ref":"L-1"},"uuid":7,"meta":{"request":"r","vv":{"s":1}},"ts":"2026-01-02T03:04:05Z","svc":{"name":"https://x/y/"}}`,
	`{"kind":"K","payload":{"ref":null},"data":"D","a":{"b":{"c":{"d":"deep"}}}}`,
	`{"kind":"K","payload":"ref","data":{"id":1,"type":"X","ts":1764000000000,"vv":"{\"s\":2}"},"meta":"m"}`,
	`{"kind":"K","data":{"ts":[]},"payload":{"ref":"r"}}`,
	`{"event_type":"T","order_id":"o"}  `,
	"\t{\"event_type\":\"T\",\"order_id\":\"o\"}\r\n",
	`{"event_type":"T","order_id":"o"} {}`, `{"event_type":"T","order_id":"o"}x`, `{"event_type":"T","order_id":01}`,
	`{"event_type":"T","order_id":"o","x":"tab	raw"}`, `{"event_type":"T","order_id":"\x"}`, `[1,2]`, `"s"`, `12`, `null`,
	`{"a":1`, `{`, ` `, `{"event_type":"T","order_id":"o","a":[1,2,]}`, `{"event_type":"T","order_id":"o","a":NaN}`,
	`{"event_type":"T","order_id":"o","d":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`,
	`{"event_type":"T","order_id":"o","d":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	`{"event_type":"T","order_id":"o","d":` + strings.Repeat(`{"a":`, 9999) + "null" + strings.Repeat("}", 9999) + `}`,
	"{\"event_type\":\"T\",\"order_id\":\"o\",\"bad\":\"\xff\"}",
}

// adversarialHeaders are header sets combined with the values above.
var adversarialHeaders = []string{
	"",
	"ce_specversion=1.0\nce_type=T\nce_subject=o\ncontent-type=application/json",
	"ce_specversion=1.0\nce_type=T\nce_subject=o\ncontent-type=text/plain",
	"CE_SPECVERSION=1.0\nCe_Type=T\nce_id=\nce_time=2026-11-24T09:01:00Z\nce_source=payments\nCONTENT-TYPE=Application/JSON",
	"ce_type=T\nce_data=shadow\nce_subject=\nce_traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nce_tracestate=a=b",
	"ce_specversion=\nce_type=\ncontent-type=text/plain",
	"ce_type=T\nce_versionvector={\"a\":1}\nce_causationid=c\nce_correlationid=k\nce_=empty\nce_time=x",
	"version-vector={\"orders\":1,\"payments\":2}\ncausation-id=c1\ncorrelation-id=k1\nidempotency-key=i1",
	"version-vector={\"a\":1,\"a\":2}\nVersion-Vector={\"b\":-1}",
	"version-vector= {\"a\\u0062\" : 1 } \nidempotency-key=",
	"version-vector={\"\xff\xfe\":1,\"\xff\":2}",
	"version-vector=[1]\nx-card=4111111111111111\npassword=hunter2\nx-mail=a.b@example.com",
	"traceparent=00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01\ntracestate=x=y",
	"traceparent=00-00000000000000000000000000000000-00f067aa0ba902b7-01\nb3=80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
	"b3=a3ce929d0e0e4736-00f067aa0ba902b7",
	"X-B3-TraceId=463ac35c9f6413ad48485a3953bb6124\nX-B3-SpanId=a2fb4a1d1a96d312\nX-B3-ParentSpanId=0020000000000001",
	"x-datadog-trace-id=1234567890123456789\nx-datadog-parent-id=987654321\nx-datadog-tags=_dd.p.dm=-1,_dd.p.tid=640CFD8D00000000",
	"x-datadog-trace-id=0\nx-datadog-parent-id=1\nb3=zz",
	"X-Order=H-7\nx-caused-by=u0\nx-idem=i\nx-ts=2026-01-01T00:00:00Z\nx-vv={\"s\":3}",
	"ce_type=T\nce_subject=o\ncontent-type=application/cloudevents+json\nx-order=\nce_source=https://a/b/",
}

func TestDecodeMatchesOracle(t *testing.T) {
	ds := diffDecoders(t)
	n := 0
	for _, r := range demoRecords(t, 300) {
		for _, d := range ds[:2] {
			checkSame(t, d, r)
			n++
		}
	}
	for _, v := range adversarialValues {
		if len(v) > 1000 { // the deep ones: slow for the oracle; headers, keys and topics change nothing
			for _, d := range ds[:2] {
				checkSame(t, d, diffRecord("orders", []byte(v), "", adversarialHeaders[0]))
				checkSame(t, d, diffRecord("orders", []byte(v), "", adversarialHeaders[1]))
			}
			continue
		}
		for _, h := range adversarialHeaders {
			for _, topic := range []string{"orders", "legacy.orders"} {
				for _, key := range []string{"", "k-1"} {
					for _, d := range ds {
						checkSame(t, d, diffRecord(topic, []byte(v), key, h))
						n++
					}
				}
			}
		}
	}
	t.Logf("%d decodes compared", n)
}

// FuzzDecodeMatchesOracle: whatever the value, headers, key and topic, Decode
// gives what the decoder it replaced gave.
func FuzzDecodeMatchesOracle(f *testing.F) {
	for i, r := range demoRecords(f, 40) {
		if i%4 == 0 {
			f.Add(r.Value, headerLines(r), string(r.Key), uint8(i))
		}
	}
	for i, v := range adversarialValues {
		if len(v) < 2000 {
			f.Add([]byte(v), adversarialHeaders[i%len(adversarialHeaders)], "k", uint8(i))
		}
	}
	for i, h := range adversarialHeaders {
		f.Add([]byte(`{"data":{"order_id":"o"},"type":"T"}`), h, "", uint8(i))
	}
	for _, c := range codecCases {
		if len(c) < 2000 {
			f.Add([]byte(c), "", "k", uint8(0))
		}
	}
	ds := diffDecoders(f)
	f.Fuzz(func(t *testing.T, value []byte, headers, key string, pick uint8) {
		topic := "orders"
		if pick&1 != 0 {
			topic = "legacy.orders"
		}
		checkSame(t, ds[int(pick>>1)%len(ds)], diffRecord(topic, value, key, headers))
	})
}

// Decode does not depend on what an earlier Decode left in the pooled
// state: the same record decodes the same after any other.
func TestDecodeStateIsReset(t *testing.T) {
	d := diffDecoders(t)[1]
	recs := []*kgo.Record{}
	for _, v := range adversarialValues[:40] {
		recs = append(recs, diffRecord("legacy.orders", []byte(v), "k", adversarialHeaders[4]))
		recs = append(recs, diffRecord("orders", []byte(v), "", adversarialHeaders[7]))
	}
	first := make([]event.Event, len(recs))
	firstErr := make([]error, len(recs))
	for i, r := range recs {
		first[i], firstErr[i] = d.Decode(r)
	}
	for round := 0; round < 3; round++ {
		for i := len(recs) - 1; i >= 0; i-- {
			e, err := d.Decode(recs[(i*7+round)%len(recs)])
			j := (i*7 + round) % len(recs)
			if !reflect.DeepEqual(e, first[j]) || (err == nil) != (firstErr[j] == nil) {
				t.Fatalf("record %d decodes differently the second time", j)
			}
		}
	}
}

// FuzzTraceParent: parseTraceParent reads what the replaced one read.
func FuzzTraceParent(f *testing.F) {
	for _, s := range []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", " 00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01-x ",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-x", "---", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tid, sid, ok := parseTraceParent(s)
		wtid, wsid, wok := oracleParseTraceParent(s)
		if tid != wtid || sid != wsid || ok != wok {
			t.Fatalf("%q: (%q, %q, %v), replaced one (%q, %q, %v)", s, tid, sid, ok, wtid, wsid, wok)
		}
	})
}

// Decode is safe for concurrent use: goroutines sharing a Decoder (and its
// pool of states) get the events a lone caller gets. Run with -race.
func TestDecodeConcurrent(t *testing.T) {
	d := diffDecoders(t)[0]
	recs := demoRecords(t, 40)
	want := make([]event.Event, len(recs))
	for i, r := range recs {
		want[i], _ = d.Decode(r)
	}
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for round := 0; round < 3; round++ {
				for i := range recs {
					j := (i*(g+1) + round) % len(recs)
					if e, _ := d.Decode(recs[j]); !reflect.DeepEqual(e, want[j]) {
						errs <- errors.New("a concurrent Decode differs")
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
