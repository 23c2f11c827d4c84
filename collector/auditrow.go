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

// StoredEvent is the stored row of an event (the events table).
func StoredEvent(e *event.Event) auditor.StoredRecord {
	return auditor.StoredRecord{
		Key:     []byte(e.Key),
		Value:   e.Payload,
		Headers: storedHeaders(e.Headers),
		Columns: map[string]string{
			"table":           "events",
			"record_time":     storedTime(e.RecordTime),
			"event_id":        e.EventID,
			"event_type":      e.Type,
			"service":         e.Service,
			"order_id":        e.OrderID,
			"event_time":      storedTime(e.EventTime),
			"causation_id":    e.CausationID,
			"correlation_id":  e.CorrelationID,
			"trace_id":        e.TraceID,
			"span_id":         e.SpanID,
			"parent_span_id":  e.ParentSpanID,
			"trace_state":     e.TraceState,
			"version_vector":  storedVersionVector(e.VersionVector),
			"idempotency_key": e.IdempotencyKey,
			"format":          string(e.Format),
			// FixedString(64): ClickHouse pads with zero bytes.
			"payload_hash": strings.TrimRight(e.PayloadHash, "\x00"),
		},
	}
}

// StoredQuarantined is the stored row of a quarantined record (the
// quarantine table).
func StoredQuarantined(q *event.Quarantined) auditor.StoredRecord {
	return auditor.StoredRecord{
		Key:     q.Key,
		Value:   q.Value,
		Headers: storedHeaders(q.Headers),
		Columns: map[string]string{
			"table":       "quarantine",
			"record_time": storedTime(q.RecordTime),
			"value_size":  strconv.Itoa(q.Size),
			"reason":      q.Reason,
		},
	}
}

// storedTime is a DateTime64(3) as stored: Unix milliseconds, truncated.
func storedTime(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// storedVersionVector is a Map(String, UInt64) as JSON with sorted keys;
// an empty map and none are the same stored value.
func storedVersionVector(vv map[string]uint64) string {
	if len(vv) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(vv) // sorts the keys; a map of strings to numbers cannot fail
	return string(b)
}

func storedHeaders(h map[string]string) []auditor.Header {
	out := make([]auditor.Header, 0, len(h))
	for k, v := range h {
		out = append(out, auditor.Header{Name: k, Value: []byte(v)})
	}
	slices.SortFunc(out, func(a, b auditor.Header) int { return strings.Compare(a.Name, b.Name) })
	return out
}
