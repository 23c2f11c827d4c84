package collector

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector/internal/jsondoc"
)

// decodeState is what one Decode call works in, pooled by the Decoder so
// that the parser's index and the payload buffer are reused.
type decodeState struct {
	doc     jsondoc.Doc // the record value
	vv      jsondoc.Doc // a version vector sent as JSON text
	rec     record
	out     []byte          // the masked payload, copied into the event
	members []member        // payloadWriter's scratch
	counter []jsondoc.Value // counters' scratch
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
	hdrKeys []string     // lower-cased header keys, in record order
	hdrVals []string     // their values, all slices of one string
	doc     *jsondoc.Doc // st.doc
	st      *decodeState

	root     jsondoc.Value // the object fields are looked up in; None in binary mode
	binary   bool
	data     jsondoc.Value // binary mode: the data, None unless it is JSON
	dataText bool          // binary mode: the data is not JSON, kept as text
}

// record prepares st for r.
func (st *decodeState) record(r *kgo.Record) *record {
	v := &st.rec
	*v = record{rec: r, key: string(r.Key), hdrKeys: v.hdrKeys[:0], hdrVals: v.hdrVals[:0],
		doc: &st.doc, st: st, root: jsondoc.None, data: jsondoc.None}
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
