package collector

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/weft-sh/weft/collector/internal/jsondoc"
)

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
		return counters(v.doc, val.node, &v.st.counter)
	case jsondoc.String:
		// The common case, a plain header, is read straight into the
		// result; anything else is parsed as JSON, which accepts every
		// spelling and gives the precise reason.
		if vv, ok := parseFlatCounters(val.text); ok {
			return vv, nil
		}
		b := []byte(val.text)
		doc := &v.st.vv
		if err := doc.Parse(b); err != nil {
			return nil, stdReason(b)
		}
		if k := doc.Kind(0); k != jsondoc.Object {
			return nil, fmt.Errorf("is a JSON %s, want an object of service → counter", k)
		}
		return counters(doc, 0, &v.st.counter)
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
