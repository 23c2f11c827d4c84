package collector

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/demo"
)

// decodeJSON and encodeJSON are the codec of the replaced decoder, kept as
// the oracle of decode_diff_test.go (decode_oracle_test.go); these tests
// hold that oracle to encoding/json, as they held the decoder.

// refDecode is decodeJSON done with encoding/json: the reference.
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

// checkCodec: decodeJSON accepts what encoding/json accepts, decodes it to
// the same value, and encodeJSON encodes that value to the same JSON: the
// same bytes when exact, else the same value once decoded again (goccy
// spells the control characters \b and \f as \u0008 and \u000c).
func checkCodec(t *testing.T, b []byte, exact bool) {
	t.Helper()
	want, wantErr := refDecode(b)
	got, err := decodeJSON(b)
	if wantErr != nil || err != nil {
		if (wantErr == nil) != (err == nil) {
			t.Fatalf("%q: encoding/json error %v, decodeJSON error %v", b, wantErr, err)
		}
		return
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%q: encoding/json decodes %#v, decodeJSON %#v", b, want, got)
	}
	wantOut, wantErr := stdjson.Marshal(want)
	gotOut, err := encodeJSON(got)
	if (wantErr == nil) != (err == nil) {
		t.Fatalf("%q: encoding/json encode error %v, encodeJSON error %v", b, wantErr, err)
	}
	if exact && !bytes.Equal(wantOut, gotOut) {
		t.Fatalf("%q: encoding/json encodes %s, encodeJSON %s", b, wantOut, gotOut)
	}
	again, err := refDecode(gotOut)
	if err != nil || !reflect.DeepEqual(want, again) {
		t.Fatalf("%q: encodeJSON wrote %s, which decodes to %#v (%v)", b, gotOut, again, err)
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
	for _, c := range codecCases {
		checkCodec(t, []byte(c), true)
	}
	cfg := demo.DefaultConfig()
	cfg.Orders = 300
	plan, err := demo.Plan(cfg)
	require.NoError(t, err)
	for _, r := range plan.Records {
		checkCodec(t, r.Value, true)
		for _, h := range r.Headers {
			if h.Key == "version-vector" {
				checkCodec(t, h.Value, true)
			}
		}
	}
}

// FuzzJSONCodec: whatever the (UTF-8) bytes, decodeJSON and encodeJSON
// agree with encoding/json — on acceptance, on the value, on the output.
func FuzzJSONCodec(f *testing.F) {
	for _, c := range codecCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) { // Decode rejects invalid UTF-8 before decoding
			return
		}
		checkCodec(t, b, false)
	})
}

func TestParseVersionVectorFastPath(t *testing.T) {
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
			got, err := parseVersionVector(tc.in)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzVersionVectorFastPath: whenever parseFlatCounters reads a header, the
// generic decode reads the same vector from it.
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
		v, err := refDecode([]byte(s))
		if err != nil {
			t.Fatalf("%q: fast path read %v, encoding/json rejects it: %v", s, fast, err)
		}
		slow, err := parseVersionVector(v)
		if err != nil {
			t.Fatalf("%q: fast path read %v, generic path rejects it: %v", s, fast, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast path read %v, generic path %v", s, fast, slow)
		}
	})
}
