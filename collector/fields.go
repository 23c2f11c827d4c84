package collector

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/weft-sh/weft/collector/internal/jsondoc"
)

// value is a field found by lookup: a string's or number's text, or the
// node of an array or object (or a boolean), whose kind is all a reason needs.
type value struct {
	kind jsondoc.Kind
	text string
	node jsondoc.Value
}

func valueOf(doc *jsondoc.Doc, n jsondoc.Value) (value, bool) {
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
	return valueOf(v.doc, cur)
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
