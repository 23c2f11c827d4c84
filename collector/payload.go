package collector

import (
	"bytes"
	"slices"

	"github.com/weft-sh/weft/collector/internal/jsondoc"
	"github.com/weft-sh/weft/collector/internal/redact"
)

// payloadWriter writes the masked payload straight from the parser's index.
// It writes what encoding/json.Marshal writes for the decoded value once
// masked: object keys sorted, a repeated key once with its last value,
// numbers as written (a number holding a card number becomes the masked
// string), strings escaped as encoding/json escapes them. Strings, keys
// and numbers are masked by red; the values of sensitive keys whole. The
// tests hold it to a reference that masks the decoded value
// (redact/redacttest).
type payloadWriter struct {
	red     *redact.Redactor
	doc     *jsondoc.Doc
	out     []byte
	members []member // the members of the objects being written, innermost last
}

type member struct {
	key []byte
	val jsondoc.Value
	// name is the key as written when it had to be masked (redact.Keys),
	// nil when it is written as it is.
	name []byte
}

// written is the key as written.
func (m member) written() []byte {
	if m.name != nil {
		return m.name
	}
	return m.key
}

func (w *payloadWriter) value(v jsondoc.Value) {
	if v == jsondoc.None {
		w.out = append(w.out, "null"...)
		return
	}
	switch w.doc.Kind(v) {
	case jsondoc.Null, jsondoc.Bool:
		w.out = append(w.out, w.doc.Raw(v)...)
	case jsondoc.Number:
		if masked, ok := w.red.Number(w.doc.Raw(v)); ok {
			w.out = jsondoc.AppendString(w.out, masked)
		} else {
			w.out = append(w.out, w.doc.Raw(v)...)
		}
	case jsondoc.String:
		if t := w.doc.Text(v); w.red.Unchanged(t) {
			w.out = w.doc.AppendText(w.out, v)
		} else {
			w.out = jsondoc.AppendString(w.out, w.red.String(string(t)))
		}
	case jsondoc.Array:
		w.out = append(w.out, '[')
		for c, first := w.doc.First(v), true; c != jsondoc.None; c, first = w.doc.Next(c), false {
			if !first {
				w.out = append(w.out, ',')
			}
			w.value(c)
		}
		w.out = append(w.out, ']')
	case jsondoc.Object:
		w.object(v)
	}
}

// text writes s, not JSON (CloudEvents binary data of another content
// type), as a string, masking card numbers and e-mail addresses in it.
func (w *payloadWriter) text(s []byte) {
	if w.red.Unchanged(s) {
		w.out = jsondoc.AppendString(w.out, s)
		return
	}
	w.out = jsondoc.AppendString(w.out, w.red.String(string(s)))
}

func (w *payloadWriter) object(v jsondoc.Value) {
	base := len(w.members)
	masked := false
	for c := w.doc.First(v); c != jsondoc.None; c = w.doc.Next(c) {
		k := w.doc.Key(c)
		masked = masked || !w.red.Unchanged(k)
		w.members = append(w.members, member{key: k, val: c})
	}
	// Sorted by key, a repeated key in source order: the last of a run is
	// the one encoding/json keeps.
	slices.SortFunc(w.members[base:], func(a, b member) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return int(a.val - b.val)
	})
	kept := base
	for i := base; i < len(w.members); i++ {
		if i+1 < len(w.members) && bytes.Equal(w.members[i].key, w.members[i+1].key) {
			continue
		}
		w.members[kept] = w.members[i]
		kept++
	}
	w.members = w.members[:kept]
	if masked {
		w.maskKeys(w.members[base:])
	}
	w.out = append(w.out, '{')
	for i := base; i < kept; i++ {
		m := w.members[i] // re-read: writing a member appends to w.members
		if i > base {
			w.out = append(w.out, ',')
		}
		if m.name != nil {
			w.out = jsondoc.AppendString(w.out, m.name)
		} else {
			w.out = w.doc.AppendKey(w.out, m.val)
		}
		w.out = append(w.out, ':')
		if w.red.SensitiveKeyBytes(m.written()) {
			w.whole(m.val)
		} else {
			w.value(m.val)
		}
	}
	w.members = w.members[:base]
	w.out = append(w.out, '}')
}

// maskKeys names the members whose keys hold a card number or an e-mail
// address by their masked keys, as redact.Keys does, and sorts the
// members by the names written. ms are one object's members, sorted by key,
// each key once.
func (w *payloadWriter) maskKeys(ms []member) {
	keys := make([]string, len(ms))
	for i, m := range ms {
		keys[i] = string(m.key)
	}
	for i, name := range w.red.Keys(keys) {
		if name != keys[i] {
			ms[i].name = []byte(name)
		}
	}
	slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(a.written(), b.written()) })
}

// whole writes the value of a sensitive key, masked whatever it holds
// (null stays null).
func (w *payloadWriter) whole(v jsondoc.Value) {
	switch w.doc.Kind(v) {
	case jsondoc.Null:
		w.out = append(w.out, "null"...)
	case jsondoc.String:
		w.out = append(w.out, '"')
		w.out = redact.AppendWhole(w.out, w.doc.Text(v)) // nothing to escape
		w.out = append(w.out, '"')
	default:
		w.out = jsondoc.AppendString(w.out, redact.Masked)
	}
}
