package collector

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector/internal/jsondoc"
)

// decodeState is what one Decode call works in, pooled by the Decoder so
// that the parser's index and the payload buffer are reused.
type decodeState struct {
	doc     jsondoc.Doc // the record value
	vv      jsondoc.Doc // a version vector sent as JSON text
	rec     record
	out     []byte   // the masked payload, copied into the event
	members []member // payloadWriter's scratch
	counter []jsondoc.Value
}

func (d *Decoder) state() *decodeState {
	if st, ok := d.states.Get().(*decodeState); ok {
		return st
	}
	return &decodeState{}
}

// release returns st to the pool without the record's data (nothing of
// it must outlive the call) and without buffers a huge record grew.
func (d *Decoder) release(st *decodeState) {
	const maxKeep = 1 << 20
	st.doc.Reset()
	st.vv.Reset()
	clear(st.rec.hdrKeys)
	clear(st.rec.hdrVals)
	st.rec = record{hdrKeys: st.rec.hdrKeys[:0], hdrVals: st.rec.hdrVals[:0]}
	clear(st.members)
	if cap(st.out) > maxKeep {
		st.out = nil
	}
	if cap(st.members) > maxKeep/32 {
		st.members = nil
	}
	if cap(st.counter) > maxKeep/4 {
		st.counter = nil
	}
	d.states.Put(st)
}

// record is what the lookups see of one Kafka record: its headers, and its
// value indexed by the parser. In CloudEvents binary mode the fields are
// looked up in an object made of the data and the ce_* headers, as if it
// were {"data": <value>, "<attribute>": "<header value>", ...}, attributes
// winning over data.
type record struct {
	rec     *kgo.Record
	key     string
	hdrKeys []string // lower-cased header keys, in record order
	hdrVals []string // their values, all slices of one string
	doc     *jsondoc.Doc
	vv      *jsondoc.Doc
	counter *[]jsondoc.Value

	root     jsondoc.Value // the object fields are looked up in; None in binary mode
	binary   bool
	data     jsondoc.Value // binary mode: the data, None unless it is JSON
	dataText bool          // binary mode: the data is not JSON, kept as text
}

// record prepares st for r.
func (st *decodeState) record(r *kgo.Record) *record {
	v := &st.rec
	*v = record{rec: r, key: string(r.Key), hdrKeys: v.hdrKeys[:0], hdrVals: v.hdrVals[:0],
		doc: &st.doc, vv: &st.vv, counter: &st.counter, root: jsondoc.None, data: jsondoc.None}
	size := 0
	for _, h := range r.Headers {
		size += len(h.Value)
	}
	var all strings.Builder // every header value in one allocation
	all.Grow(size)
	for _, h := range r.Headers {
		all.Write(h.Value)
	}
	vals := all.String()
	for _, h := range r.Headers {
		v.hdrKeys = append(v.hdrKeys, strings.ToLower(h.Key))
		v.hdrVals = append(v.hdrVals, vals[:len(h.Value)])
		vals = vals[len(h.Value):]
	}
	return v
}

// header returns the last value of the header named key (lower case).
func (v *record) header(key string) (string, bool) {
	for i := len(v.hdrKeys) - 1; i >= 0; i-- {
		if v.hdrKeys[i] == key {
			return v.hdrVals[i], true
		}
	}
	return "", false
}

// headerSet reports whether the header named key has a non-empty value.
func (v *record) headerSet(key string) bool {
	h, _ := v.header(key)
	return h != ""
}

// attribute returns the binary-mode attribute attr: the last ce_<attr> header.
func (v *record) attribute(attr string) (string, bool) {
	for i := len(v.hdrKeys) - 1; i >= 0; i-- {
		if k := v.hdrKeys[i]; len(k) == 3+len(attr) && k[:3] == "ce_" && k[3:] == attr {
			return v.hdrVals[i], true
		}
	}
	return "", false
}

// value is a field found by lookup: a string's or number's text, or the
// node of an array or object (or a boolean), whose kind is all a reason needs.
type value struct {
	kind jsondoc.Kind
	text string
	node jsondoc.Value
}

func (v *record) valueOf(n jsondoc.Value, doc *jsondoc.Doc) (value, bool) {
	switch k := doc.Kind(n); k {
	case jsondoc.Null:
		return value{}, false
	case jsondoc.String, jsondoc.Number:
		return value{kind: k, text: string(doc.Raw(n)), node: n}, true
	default:
		return value{kind: k, node: n}, true
	}
}

// rootString returns the top-level field name when it is a string.
func (v *record) rootString(name string) (string, bool) {
	if v.binary {
		if s, ok := v.attribute(name); ok {
			return s, true
		}
		if name != "data" {
			return "", false
		}
	}
	val, ok := v.lookup(name)
	if !ok || val.kind != jsondoc.String {
		return "", false
	}
	return val.text, true
}

// lookup finds one source; found is false when it is absent or null.
func (v *record) lookup(src string) (val value, found bool) {
	switch {
	case src == "key":
		return value{kind: jsondoc.String, text: v.key}, v.key != ""
	case strings.HasPrefix(src, "header:"):
		h, ok := v.header(strings.ToLower(strings.TrimPrefix(src, "header:")))
		return value{kind: jsondoc.String, text: h}, ok && h != ""
	case strings.HasPrefix(src, "const:"):
		return value{kind: jsondoc.String, text: strings.TrimPrefix(src, "const:")}, true
	}
	part, rest, more := strings.Cut(src, ".")
	cur := v.root
	if v.binary {
		if h, ok := v.attribute(part); ok {
			return value{kind: jsondoc.String, text: h}, !more
		}
		if part != "data" {
			return value{}, false
		}
		if v.dataText {
			return value{kind: jsondoc.String, text: string(v.rec.Value)}, !more
		}
		if cur = v.data; cur == jsondoc.None {
			return value{}, false
		}
	} else if cur = v.doc.Member(cur, part); cur == jsondoc.None {
		return value{}, false
	}
	for more {
		part, rest, more = strings.Cut(rest, ".")
		if v.doc.Kind(cur) != jsondoc.Object {
			return value{}, false
		}
		if cur = v.doc.Member(cur, part); cur == jsondoc.None {
			return value{}, false
		}
	}
	return v.valueOf(cur, v.doc)
}

// first returns the first source that is present, as a string. A present
// value of the wrong JSON type is an error, not a fall-through: it means the
// producer sends something other than the contract says. Numbers are
// accepted only for identifiers (numeric order ids are common).
func (v *record) first(field string, srcs []string) (string, error) {
	return v.firstOf(field, srcs, false)
}

func (v *record) firstID(field string, srcs []string) (string, error) {
	return v.firstOf(field, srcs, true)
}

func (v *record) firstOf(field string, srcs []string, numbers bool) (string, error) {
	for _, src := range srcs {
		val, ok := v.lookup(src)
		if !ok {
			continue
		}
		switch val.kind {
		case jsondoc.String:
			if val.text == "" {
				continue
			}
			return val.text, nil
		case jsondoc.Number:
			if numbers {
				return val.text, nil
			}
			return "", reject("%s at %q is a JSON number, want a string", field, src)
		default:
			return "", reject("%s at %q is a JSON %s, want a string", field, src, val.kind)
		}
	}
	return "", nil
}

func (v *record) time(srcs []string) (time.Time, error) {
	for _, src := range srcs {
		val, ok := v.lookup(src)
		if !ok {
			continue
		}
		t, err := parseTime(val)
		if err != nil {
			return time.Time{}, reject("event time at %q: %v", src, err)
		}
		return t, nil
	}
	if v.rec.Timestamp.IsZero() {
		return time.Time{}, reject("no event time and no record timestamp")
	}
	return v.rec.Timestamp.UTC(), nil
}

var (
	minTime = time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func parseTime(val value) (time.Time, error) {
	var t time.Time
	switch val.kind {
	case jsondoc.String:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, val.text); err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", val.text)
		}
	case jsondoc.Number:
		f, err := strconv.ParseFloat(val.text, 64)
		if err != nil || math.IsInf(f, 0) || f <= 0 {
			return time.Time{}, fmt.Errorf("%s is not a positive epoch time", val.text)
		}
		switch {
		case f > 1e17: // nanoseconds
			t = time.Unix(0, int64(f))
		case f > 1e14: // microseconds
			t = time.UnixMicro(int64(f))
		case f > 1e11: // milliseconds
			t = time.UnixMilli(int64(f))
		default:
			t = time.Unix(0, int64(f*1e9))
		}
	default:
		return time.Time{}, fmt.Errorf("is a JSON %s, want a string or number", val.kind)
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, fmt.Errorf("%s is outside the accepted range 1971–2200", t.UTC().Format(time.RFC3339))
	}
	return t.UTC(), nil
}

func (v *record) versionVector(srcs []string) (map[string]uint64, error) {
	for _, src := range srcs {
		val, ok := v.lookup(src)
		if !ok {
			continue
		}
		vv, err := v.parseVersionVector(val)
		if err != nil {
			return nil, reject("version vector at %q: %v", src, err)
		}
		return vv, nil
	}
	return nil, nil
}

// parseVersionVector accepts a JSON object of service → non-negative
// integer, or a string holding one.
func (v *record) parseVersionVector(val value) (map[string]uint64, error) {
	switch val.kind {
	case jsondoc.Object:
		return counters(v.doc, val.node, v.counter)
	case jsondoc.String:
		// The common case, a plain header, is read straight into the
		// result; anything else is parsed as JSON, which accepts every
		// spelling and gives the precise reason.
		if vv, ok := parseFlatCounters(val.text); ok {
			return vv, nil
		}
		b := []byte(val.text)
		if err := v.vv.Parse(b); err != nil {
			return nil, stdReason(b)
		}
		if k := v.vv.Kind(0); k != jsondoc.Object {
			return nil, fmt.Errorf("is a JSON %s, want an object of service → counter", k)
		}
		return counters(v.vv, 0, v.counter)
	default:
		return nil, fmt.Errorf("is a JSON %s, want an object of service → counter", val.kind)
	}
}

// counters reads the members of obj as service → counter. A repeated
// service counts once, with its last value (as encoding/json decodes it);
// with several bad entries the reason names the first.
func counters(doc *jsondoc.Doc, obj jsondoc.Value, scratch *[]jsondoc.Value) (map[string]uint64, error) {
	members := (*scratch)[:0]
	for c := doc.First(obj); c != jsondoc.None; c = doc.Next(c) {
		members = append(members, c)
	}
	*scratch = members
	vv := make(map[string]uint64, len(members))
	var bad error
	for i := len(members) - 1; i >= 0; i-- { // the last of a repeated service wins
		c := members[i]
		svc := doc.Key(c)
		if _, dup := vv[string(svc)]; dup {
			continue
		}
		u, err := counter(doc, c, string(svc))
		vv[string(svc)] = u
		if err != nil {
			bad = err
		}
	}
	if bad != nil {
		return nil, bad
	}
	return vv, nil
}

func counter(doc *jsondoc.Doc, c jsondoc.Value, svc string) (uint64, error) {
	if k := doc.Kind(c); k != jsondoc.Number {
		return 0, fmt.Errorf("entry %q is a JSON %s, want a non-negative integer", svc, k)
	}
	n := doc.Raw(c)
	u, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("entry %q is %s, want a non-negative integer", svc, n)
	}
	if svc == "" {
		return 0, fmt.Errorf("entry with an empty service name")
	}
	return u, nil
}

// parseFlatCounters reads the usual spelling of a version vector,
// {"service":counter,...} with unescaped names and plain decimal counters,
// without a JSON decoder. ok is false for anything else (escapes, other
// value types, an empty name, a counter over 64 bits, bad syntax): the
// caller then decodes it generically, which decides.
func parseFlatCounters(s string) (vv map[string]uint64, ok bool) {
	i := 0
	ws := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	ws()
	if i == len(s) || s[i] != '{' {
		return nil, false
	}
	i++
	vv = make(map[string]uint64, 4)
	ws()
	if i < len(s) && s[i] == '}' {
		i++
		ws()
		return vv, i == len(s)
	}
	for {
		ws()
		if i == len(s) || s[i] != '"' {
			return nil, false
		}
		end := strings.IndexByte(s[i+1:], '"')
		if end <= 0 {
			return nil, false
		}
		name := s[i+1 : i+1+end]
		for j := 0; j < len(name); j++ {
			if name[j] == '\\' || name[j] < 0x20 {
				return nil, false
			}
		}
		if !utf8.ValidString(name) {
			return nil, false
		}
		i += end + 2
		ws()
		if i == len(s) || s[i] != ':' {
			return nil, false
		}
		i++
		ws()
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		digits := s[start:i]
		if digits == "" || len(digits) > 1 && digits[0] == '0' {
			return nil, false
		}
		n, err := strconv.ParseUint(digits, 10, 64)
		if err != nil {
			return nil, false
		}
		vv[name] = n // a repeated name: the last wins, as in encoding/json
		ws()
		if i == len(s) {
			return nil, false
		}
		switch s[i] {
		case ',':
			i++
		case '}':
			i++
			ws()
			return vv, i == len(s)
		default:
			return nil, false
		}
	}
}
