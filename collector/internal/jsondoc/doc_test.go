package jsondoc

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// toAny builds what encoding/json (with UseNumber) decodes v to.
func toAny(d *Doc, v Value) any {
	switch d.Kind(v) {
	case Null:
		return nil
	case Bool:
		return d.Raw(v)[0] == 't'
	case Number:
		return json.Number(d.Raw(v))
	case String:
		return string(d.Text(v))
	case Array:
		a := make([]any, 0, d.Len(v))
		for c := d.First(v); c != None; c = d.Next(c) {
			a = append(a, toAny(d, c))
		}
		return a
	default:
		m := make(map[string]any, d.Len(v))
		for c := d.First(v); c != None; c = d.Next(c) {
			m[string(d.Key(c))] = toAny(d, c)
			if shadowed(d, c) != (d.Member(v, string(d.Key(c))) != c) {
				panic("Shadowed and Member disagree")
			}
		}
		return m
	}
}

// shadowed reports whether a later member of the same object has v's key:
// encoding/json keeps only the last of repeated keys.
func shadowed(d *Doc, v Value) bool {
	k := d.Key(v)
	for c := d.Next(v); c != None; c = d.Next(c) {
		if string(d.Key(c)) == string(k) {
			return true
		}
	}
	return false
}

func refDecode(b []byte) (any, bool) {
	if !json.Valid(b) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		panic(err) // valid JSON always decodes
	}
	return v, true
}

// check: Parse accepts b exactly when encoding/json does, and then indexes
// the value encoding/json decodes.
func check(t *testing.T, d *Doc, b []byte) {
	t.Helper()
	want, ok := refDecode(b)
	err := d.Parse(b)
	if ok != (err == nil) {
		t.Fatalf("%q: encoding/json valid %v, Parse error %v", b, ok, err)
	}
	if !ok {
		return
	}
	if got := toAny(d, 0); !reflect.DeepEqual(want, got) {
		t.Fatalf("%q: encoding/json decodes %#v, Doc %#v", b, want, got)
	}
	checkAppend(t, d, 0, false)
}

// checkAppend: AppendText and AppendKey write every string and key of v as
// encoding/json writes it.
func checkAppend(t *testing.T, d *Doc, v Value, member bool) {
	t.Helper()
	if member {
		want, _ := json.Marshal(string(d.Key(v)))
		if got := d.AppendKey(nil, v); !bytes.Equal(want, got) {
			t.Fatalf("key %q: encoding/json writes %s, AppendKey %s", d.Key(v), want, got)
		}
	}
	switch d.Kind(v) {
	case String:
		want, _ := json.Marshal(string(d.Text(v)))
		if got := d.AppendText(nil, v); !bytes.Equal(want, got) {
			t.Fatalf("string %q: encoding/json writes %s, AppendText %s", d.Text(v), want, got)
		}
	case Array, Object:
		for c := d.First(v); c != None; c = d.Next(c) {
			checkAppend(t, d, c, d.Kind(v) == Object)
		}
	}
}

var cases = []string{
	`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`,
	`{"big":123456789012345678901234567890,"neg":-0.5e-3,"card":4111111111111111,"e":1E+2,"z":-0}`,
	`{"html":"<a href=\"x\">&amp;</a>","ctl":"\u0001\t\n\r\b\f","u2028":"\u2028\u2029"}`,
	`{"lone":"\ud800","pair":"\ud83d\ude00","esc":"\/\\\"","uni":"Straße ✓"}`,
	`{"hi-lo-bad":"\ud800\u0041","lo-first":"\udc00\ud800","hi-end":"x\ud83d","hi-hi":"\ud83d\ud83d\ude00"}`,
	`{"k\u0065y":1,"key":2}`, `{"dup":1,"dup":2}`, `{"dup":{"a":1},"dup":{"b":2}}`,
	`{"z":1,"a":2,"m":{"y":1,"b":2}}`,
	`  {"ws": 1}  ` + "\n", "\t[ 1 ,\r\n2 ]\t",
	`[1,2,3]`, `"s"`, `12`, `null`, `true`, `false`, `[]`, `{}`, `[[]]`, `[{}]`, `-0.0e-0`,
	"{\"bad\xff\":\"x\xfe\xc3\"}", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
	`{"a":1}}`, `{"a":1} {}`, `{"a":1} x`, `{"a":}`, `{"a":1,}`, `{a:1}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`,
	`{"a":.5}`, `{"a":1e}`, `{"a":1e+}`, `{"a":+1}`, `{"a":0x1}`, `{"a":1.5.5}`, `[1,]`, `[,1]`, `[1 2]`,
	`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, `{"a":"tab	raw"}`, `{"a":"x`, `"\`, `"\u`, `{"a" 1}`,
	``, `   `, `{`, `[`, `]`, `{"a":[1,2}`, `nul`, `nulll`, `tru`, `truex`, `[true1]`, `{"a":1e400}`, "\ufeff{}",
	`{"a":1}` + "\x00", "\v{}", `{"a":NaN}`, `{"a":Infinity}`, `[-]`, `[--1]`, `[1-]`, `{"":""}`, `{"a":"b","a":1}`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	strings.Repeat("[", 301) + strings.Repeat("]", 301),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10000),
}

func TestParseMatchesEncodingJSON(t *testing.T) {
	var d Doc
	for _, c := range cases {
		check(t, &d, []byte(c))
	}
}

func TestKinds(t *testing.T) {
	var d Doc
	if err := d.Parse([]byte(`[null,false,1,"s",[],{}]`)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for c := d.First(0); c != None; c = d.Next(c) {
		got = append(got, d.Kind(c).String())
	}
	want := []string{"null", "boolean", "number", "string", "array", "object"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("kinds %v, want %v", got, want)
	}
}

// A repeated key: Member finds the last, as encoding/json keeps the last.
func TestMemberLastWins(t *testing.T) {
	var d Doc
	if err := d.Parse([]byte(`{"a":1,"b":2,"\u0061":3}`)); err != nil {
		t.Fatal(err)
	}
	if v := d.Member(0, "a"); string(d.Raw(v)) != "3" || shadowed(&d, v) {
		t.Fatalf("Member a = %s", d.Raw(v))
	}
	if !shadowed(&d, d.First(0)) {
		t.Fatal("the first a is not shadowed")
	}
	if d.Member(0, "c") != None {
		t.Fatal("found c")
	}
}

func TestParseAfterErrorHoldsNothing(t *testing.T) {
	var d Doc
	if err := d.Parse([]byte(`{"a":[1,2,`)); err == nil {
		t.Fatal("accepted")
	}
	if len(d.nodes) != 0 || d.src != nil {
		t.Fatal("a failed Parse left a document behind")
	}
}

// FuzzParse: whatever the bytes (invalid UTF-8 included), Parse accepts
// them exactly when encoding/json does, and indexes the same value.
func FuzzParse(f *testing.F) {
	for _, c := range cases {
		if len(c) < 1000 {
			f.Add([]byte(c))
		}
	}
	var d Doc
	f.Fuzz(func(t *testing.T, b []byte) { check(t, &d, b) })
}

func checkString(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := AppendString(nil, s); !bytes.Equal(want, got) {
		t.Fatalf("%q: encoding/json writes %s, AppendString %s", s, want, got)
	}
	if got := AppendString([]byte("x"), []byte(s)); !bytes.Equal(append([]byte("x"), want...), got) {
		t.Fatalf("%q: encoding/json writes %s, AppendString([]byte) %s", s, want, got[1:])
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `"\`, "<a href='x'>&amp;</a>", "\x00\x01\b\f\n\r\t\x1f\x7f",
		"\u2028\u2029\u2027\u202a", "Straße ✓ 😀", "bad\xff\xfe", "\xed\xa0\x80", "\xe2\x80", "end\xe2"} {
		checkString(t, s)
	}
}

// FuzzAppendString: AppendString writes what encoding/json writes.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"plain", "<&>", "\u2028", "bad\xff", "\x00\b\f\t"} {
		f.Add(s)
	}
	f.Fuzz(checkString)
}

// ordinary8 says a word is all ordinary exactly when strClass says so of
// each of its bytes, whatever the byte and wherever it sits.
func TestOrdinary8(t *testing.T) {
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			for _, fill := range []byte{'a', ' ', '~', '!', 0x7f} {
				var b [8]byte
				for i := range b {
					b[i] = fill
				}
				b[pos] = byte(c)
				want := strClass[c] == ordinary && strClass[fill] == ordinary
				if got := ordinary8(binary.LittleEndian.Uint64(b[:])); got != want {
					t.Fatalf("%q: ordinary8 %v, want %v", b, got, want)
				}
			}
		}
	}
}
