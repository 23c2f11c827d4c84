package collector

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector/internal/jsondoc"
	"github.com/weft-sh/weft/collector/internal/redact"
	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/event"
)

// Decode is a JSON codec: it parses a record's value (internal/jsondoc)
// and writes the payload back from the parser's index (payloadWriter).
// These tests hold that codec, masking aside, to encoding/json.

// refDecode decodes b with encoding/json: the reference.
func refDecode(b []byte) (any, error) {
	dec := stdjson.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if len(bytes.Trim(b[dec.InputOffset():], " \t\r\n")) > 0 { // JSON whitespace only
		return nil, errors.New("trailing data")
	}
	return v, nil
}

// codecDecoder decodes any JSON document as the data of a CloudEvents
// binary record: every field of the event comes from a constant or the
// record, none from the data, so Decode fails only when the data is not
// JSON. Masking is off (no rules), so the payload is the data re-encoded.
func codecDecoder(tb testing.TB) *Decoder {
	c := Default()
	none := []string{"header:x-none"}
	c.Mapping = []Mapping{{Topic: "codec", OrderID: []string{"const:o"}, EventID: []string{"const:e"},
		Type: []string{"const:T"}, Service: []string{"const:s"}, Time: none, CausationID: none,
		CorrelationID: none, VersionVector: none, IdempotencyKey: none}}
	d, err := NewDecoder(c)
	if err != nil {
		tb.Fatal(err)
	}
	d.red = redact.New(redact.Rules{})
	return d
}

func codecRecord(b []byte) *kgo.Record {
	return &kgo.Record{Topic: "codec", Value: b, Timestamp: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC),
		Headers: []kgo.RecordHeader{{Key: "ce_specversion", Value: []byte("1.0")}}}
}

// checkCodec: Decode accepts what encoding/json accepts, and the payload it
// writes is what encoding/json encodes the decoded value to, byte for
// byte, and decodes to the same value.
func checkCodec(t *testing.T, d *Decoder, b []byte) {
	t.Helper()
	want, wantErr := refDecode(b)
	e, err := d.Decode(codecRecord(b))
	if wantErr != nil || err != nil {
		if (wantErr == nil) != (err == nil) {
			t.Fatalf("%q: encoding/json error %v, Decode error %v", b, wantErr, err)
		}
		return
	}
	wantOut, err := stdjson.Marshal(want)
	if err != nil {
		t.Fatalf("%q: encoding/json cannot encode what it decoded: %v", b, err)
	}
	if !bytes.Equal(wantOut, e.Payload) {
		t.Fatalf("%q: encoding/json encodes %s, Decode %s", b, wantOut, e.Payload)
	}
	again, err := refDecode(e.Payload)
	if err != nil || !reflect.DeepEqual(want, again) {
		t.Fatalf("%q: Decode wrote %s, which decodes to %#v (%v), encoding/json to %#v", b, e.Payload, again, err, want)
	}
}

var codecCases = []string{
	`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`,
	`{"big":123456789012345678901234567890,"neg":-0.5e-3,"card":4111111111111111}`,
	`{"html":"<a href=\"x\">&amp;</a>","ctl":"\u0001\t\n\r","u2028":"\u2028\u2029"}`,
	`{"lone":"\ud800","pair":"\ud83d\ude00","esc":"\/\\\"","uni":"Straße ✓"}`,
	`{"dup":1,"dup":2}`,
	`{"z":1,"a":2,"m":{"y":1,"b":2}}`,
	`  {"ws": 1}  ` + "\n",
	`[1,2,3]`, `"s"`, `12`, `null`, `true`,
	`{"a":1}}`, `{"a":1} {}`, `{"a":1} x`, `{"a":}`, `{"a":1,}`, `{a:1}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`,
	`{"a":"\x"}`, `{"a":"tab	raw"}`, ``, `   `, `{`, `{"a":[1,2}`, `nul`, `{"a":1e400}`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000),
}

func TestJSONCodecMatchesEncodingJSON(t *testing.T) {
	d := codecDecoder(t)
	for _, c := range codecCases {
		checkCodec(t, d, []byte(c))
	}
	cfg := demo.DefaultConfig()
	cfg.Orders = 300
	plan, err := demo.Plan(cfg)
	require.NoError(t, err)
	for _, r := range plan.Records {
		checkCodec(t, d, r.Value)
		for _, h := range r.Headers {
			if h.Key == "version-vector" {
				checkCodec(t, d, h.Value)
			}
		}
	}
}

// FuzzJSONCodec: whatever the (UTF-8) bytes, Decode agrees with
// encoding/json — on acceptance, on the value, on the output.
func FuzzJSONCodec(f *testing.F) {
	for _, c := range codecCases {
		f.Add([]byte(c))
	}
	d := codecDecoder(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) { // Decode rejects invalid UTF-8 before decoding
			return
		}
		checkCodec(t, d, b)
	})
}

// A version vector sent as a header: read by the fast path when it can,
// else parsed as JSON, which gives the reason.
func TestParseVersionVectorFastPath(t *testing.T) {
	d := mustDecoder(t, Default())
	for _, tc := range []struct {
		in      string
		want    map[string]uint64
		wantErr string
	}{
		{`{"orders":3,"payments":1}`, map[string]uint64{"orders": 3, "payments": 1}, ""},
		{`{}`, map[string]uint64{}, ""},
		{` {"a":18446744073709551615} `, map[string]uint64{"a": 18446744073709551615}, ""},
		{`{"a":18446744073709551616}`, nil, `entry "a" is 18446744073709551616`},
		{`{"a":-1}`, nil, `entry "a" is -1`},
		{`{"a":1.5}`, nil, `entry "a" is 1.5`},
		{`{"a":1e2}`, nil, `entry "a" is 1e2`},
		{`{"a":"1"}`, nil, `entry "a" is a JSON string`},
		{`{"a":null}`, nil, `entry "a" is a JSON null`},
		{`{"":1}`, nil, "empty service name"},
		{`null`, nil, "is a JSON null"},
		{`[1]`, nil, "is a JSON array"},
		{`{"a":1} x`, nil, "trailing data"},
		{`{"a":1`, nil, "not valid JSON"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			e, err := d.Decode(rec("orders", "", `{"event_type":"T","order_id":"o"}`, event.HeaderVersionVector, tc.in))
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, e.VersionVector)
		})
	}
}

// FuzzVersionVectorFastPath: whenever parseFlatCounters reads a header, the
// generic path (the parser and counters) reads the same vector from it.
func FuzzVersionVectorFastPath(f *testing.F) {
	for _, s := range []string{`{"orders":3,"payments":1}`, `{}`, ` { "a" : 0 , "a" : 7 } `, `{"a":01}`, `{"a":1}x`,
		`{"a\"b":1}`, `{"":1}`, `{"a":18446744073709551616}`, "{\"\xff\":1}", `{"a":1,}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := parseFlatCounters(s)
		if !ok {
			return
		}
		if _, err := refDecode([]byte(s)); err != nil {
			t.Fatalf("%q: fast path read %v, encoding/json rejects it: %v", s, fast, err)
		}
		var doc jsondoc.Doc
		if err := doc.Parse([]byte(s)); err != nil || doc.Kind(0) != jsondoc.Object {
			t.Fatalf("%q: fast path read %v, the parser reads no object (%v)", s, fast, err)
		}
		var scratch []jsondoc.Value
		slow, err := counters(&doc, 0, &scratch)
		if err != nil {
			t.Fatalf("%q: fast path read %v, generic path rejects it: %v", s, fast, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast path read %v, generic path %v", s, fast, slow)
		}
	})
}
