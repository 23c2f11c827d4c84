package collector

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/event"
)

// The rows a leaf's C_stored commits to (docs/audit.md, "Stored row and
// C_stored"): what ClickHouse holds for a record, as the text a SELECT
// returns, so that a verifier rebuilds the same bytes from the stored row.
// ingested_at is left out: a redelivered record is stored again with a new
// one, and it says when weft stored the row, not what the record was.
//
// The columns are listed in their canonical order (sorted by name, which
// the encoding checks), so that no map is built and nothing sorted per
// record; the tap fills one reused row (storedEvent, storedQuarantined),
// the verifier a fresh one each time (StoredEvent, StoredQuarantined).

// StoredEvent is the stored row of an event (the events table).
func StoredEvent(e *event.Event) auditor.StoredRecord {
	var r auditor.StoredRecord
	storedEvent(&r, e)
	return r
}

// storedEvent sets r to the stored row of e, reusing r's slices.
func storedEvent(r *auditor.StoredRecord, e *event.Event) {
	r.Key, r.Value = append(r.Key[:0], e.Key...), e.Payload
	r.Headers = storedHeaders(r.Headers, e.Headers)
	r.Columns = nil
	r.ColumnList = append(r.ColumnList[:0],
		auditor.Column{Name: "causation_id", Value: e.CausationID},
		auditor.Column{Name: "correlation_id", Value: e.CorrelationID},
		auditor.Column{Name: "event_id", Value: e.EventID},
		auditor.Column{Name: "event_time", Value: storedTime(e.EventTime)},
		auditor.Column{Name: "event_type", Value: e.Type},
		auditor.Column{Name: "format", Value: string(e.Format)},
		auditor.Column{Name: "idempotency_key", Value: e.IdempotencyKey},
		auditor.Column{Name: "order_id", Value: e.OrderID},
		auditor.Column{Name: "parent_span_id", Value: e.ParentSpanID},
		// FixedString(64): ClickHouse pads with zero bytes.
		auditor.Column{Name: "payload_hash", Value: strings.TrimRight(e.PayloadHash, "\x00")},
		auditor.Column{Name: "record_time", Value: storedTime(e.RecordTime)},
		auditor.Column{Name: "service", Value: e.Service},
		auditor.Column{Name: "span_id", Value: e.SpanID},
		auditor.Column{Name: "table", Value: "events"},
		auditor.Column{Name: "trace_id", Value: e.TraceID},
		auditor.Column{Name: "trace_state", Value: e.TraceState},
		auditor.Column{Name: "version_vector", Value: storedVersionVector(e.VersionVector)},
	)
}

// StoredQuarantined is the stored row of a quarantined record (the
// quarantine table).
func StoredQuarantined(q *event.Quarantined) auditor.StoredRecord {
	var r auditor.StoredRecord
	storedQuarantined(&r, q)
	return r
}

// storedQuarantined sets r to the stored row of q, reusing r's slices.
func storedQuarantined(r *auditor.StoredRecord, q *event.Quarantined) {
	r.Key, r.Value = append(r.Key[:0], q.Key...), q.Value
	r.Headers = storedHeaders(r.Headers, q.Headers)
	r.Columns = nil
	r.ColumnList = append(r.ColumnList[:0],
		auditor.Column{Name: "reason", Value: q.Reason},
		auditor.Column{Name: "record_time", Value: storedTime(q.RecordTime)},
		auditor.Column{Name: "table", Value: "quarantine"},
		auditor.Column{Name: "value_size", Value: strconv.Itoa(q.Size)},
	)
}

// storedTime is a DateTime64(3) as stored: Unix milliseconds, truncated.
func storedTime(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// storedVersionVector is a Map(String, UInt64) as JSON with sorted keys,
// as encoding/json writes it; an empty map and none are the same stored
// value. Keys of printable ASCII that JSON writes as they are (the usual
// service names) are written here without reflection; any other key goes
// through encoding/json.
func storedVersionVector(vv map[string]uint64) string {
	if len(vv) == 0 {
		return "{}"
	}
	var keyArr [16]string
	keys := keyArr[:0]
	for k := range vv {
		if !plainJSON(k) {
			b, _ := json.Marshal(vv) // sorts the keys; a map of strings to numbers cannot fail
			return string(b)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var bufArr [128]byte
	b := append(bufArr[:0], '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		b = strconv.AppendUint(b, vv[k], 10)
	}
	return string(append(b, '}'))
}

// plainJSON reports whether encoding/json writes s as it is between quotes:
// printable ASCII but for the quote, the backslash and the three
// characters it escapes for HTML (<, >, &).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// storedHeaders returns h as headers sorted by name (a map's names are
// distinct), in hs's storage: the values reuse the byte slices of the
// headers hs held before.
func storedHeaders(hs []auditor.Header, h map[string]string) []auditor.Header {
	hs = hs[:0]
	for k, v := range h {
		if len(hs) < cap(hs) {
			hs = hs[:len(hs)+1]
			x := &hs[len(hs)-1]
			x.Name, x.Value = k, append(x.Value[:0], v...)
			continue
		}
		hs = append(hs, auditor.Header{Name: k, Value: []byte(v)})
	}
	// Insertion sort: a record has a few headers, and a comparison
	// written here is inlined where slices.SortFunc's is a call.
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j].Name < hs[j-1].Name; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
	return hs
}
