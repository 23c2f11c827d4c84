package collector

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/event"
)

// TestStoredRowListIsCanonical: the rows built as column lists, in the
// order auditrow.go writes them, encode to the same bytes as the same
// columns given as a map (which the encoding sorts), and a reused row
// encodes as a fresh one does.
func TestStoredRowListIsCanonical(t *testing.T) {
	at := time.UnixMilli(1_790_000_000_123).UTC()
	e := &event.Event{Key: "ORD-1", Payload: []byte(`{"a":1}`), OrderID: "ORD-1", EventID: "e-1", Type: "OrderPlaced",
		Service: "orders", RecordTime: at, EventTime: at.Add(time.Second), CausationID: "c", CorrelationID: "k",
		TraceID: "t", SpanID: "s", ParentSpanID: "p", TraceState: "ts", IdempotencyKey: "i", Format: "cloudevents",
		PayloadHash: "ab\x00\x00", VersionVector: map[string]uint64{"payments": 2, "orders": 7},
		Headers: map[string]string{"b": "2", "a": "1", "traceparent": "00-x", "ce_id": "1", "ce_type": "t", "ce_source": "s",
			"ce_time": "0", "content-type": "json", "causation-id": "c", "correlation-id": "k", "z": "", "A": "upper"}}
	q := &event.Quarantined{Key: []byte("k"), Value: []byte("not json"), Size: 8, Reason: "bad", RecordTime: at,
		Headers: map[string]string{"h": "v"}}
	asMap := func(r auditor.StoredRecord) auditor.StoredRecord {
		m := map[string]string{}
		for _, c := range r.ColumnList {
			m[c.Name] = c.Value
		}
		r.ColumnList, r.Columns = nil, m
		return r
	}
	var reused auditor.StoredRecord
	for name, rows := range map[string][2]auditor.StoredRecord{
		"event":       {StoredEvent(e), asMap(StoredEvent(e))},
		"quarantined": {StoredQuarantined(q), asMap(StoredQuarantined(q))},
	} {
		assert.True(t, slices.IsSortedFunc(rows[0].Headers, func(a, b auditor.Header) int { return strings.Compare(a.Name, b.Name) }),
			"%s: headers sorted as built, not left to the encoding", name)
		list, err := rows[0].MarshalBinary()
		require.NoError(t, err, name)
		m, err := rows[1].MarshalBinary()
		require.NoError(t, err, name)
		assert.Equal(t, m, list, name)
		parsed, err := auditor.ParseStoredRecord(list)
		require.NoError(t, err, name)
		assert.Equal(t, rows[1].Columns, parsed.Columns, name)

		if name == "event" {
			storedQuarantined(&reused, q) // leave other headers and columns behind
			storedEvent(&reused, e)
		} else {
			storedEvent(&reused, e)
			storedQuarantined(&reused, q)
		}
		again, err := reused.MarshalBinary()
		require.NoError(t, err, name)
		assert.Equal(t, list, again, name+", reused")
	}
}

// TestStoredVersionVector: the version vector is written as encoding/json
// writes the map, the keys it escapes included.
func TestStoredVersionVector(t *testing.T) {
	for _, vv := range []map[string]uint64{
		nil, {}, {"orders": 1}, {"payments": 18446744073709551615, "orders": 0, "a-b_c.d": 3},
		{"<svc>": 1, "a&b": 2}, {`q"uote`: 1, `back\slash`: 2}, {"tab\t": 1, "é": 2, "\u2028": 3, "\xff": 4},
		{"z": 1, "y": 2, "x": 3, "w": 4, "v": 5, "u": 6, "t": 7, "s": 8, "r": 9, "q": 10, "p": 11, "o": 12,
			"n": 13, "m": 14, "l": 15, "k": 16, "j": 17, "i": 18}, // more keys than the stack array
	} {
		want := "{}"
		if len(vv) > 0 {
			b, err := json.Marshal(vv)
			require.NoError(t, err)
			want = string(b)
		}
		assert.Equal(t, want, storedVersionVector(vv))
	}
}

// FuzzStoredVersionVector: for any two keys, as encoding/json.
func FuzzStoredVersionVector(f *testing.F) {
	f.Add("orders", uint64(1), "payments", uint64(2))
	f.Add("<", uint64(0), "\x00", uint64(9))
	f.Fuzz(func(t *testing.T, k1 string, v1 uint64, k2 string, v2 uint64) {
		vv := map[string]uint64{k1: v1, k2: v2}
		b, err := json.Marshal(vv)
		require.NoError(t, err)
		assert.Equal(t, string(b), storedVersionVector(vv))
	})
}

// TestStoredVersionVectorIsJSON: the stored version vector is exactly what
// json.Marshal writes (the bytes leaves already commit to), on the fast
// path and off it.
func TestStoredVersionVectorIsJSON(t *testing.T) {
	cases := []map[string]uint64{
		{"orders": 1},
		{"payments": 3, "orders": 2, "inventory": 18446744073709551615, "": 0},
		{"a-b.c_d:e/f": 7, "Z": 1, "z": 2, "~": 3, " ": 4},
		{"<svc>": 1, "a&b": 2},
		{`quo"te`: 1, `back\slash`: 2, "tab\t": 3, "é": 4, "\u2028": 5, "\xff": 6, "\x7f": 7},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		m := map[string]uint64{}
		for range r.IntN(6) + 1 {
			k := make([]byte, r.IntN(8))
			for i := range k {
				k[i] = byte(r.IntN(256))
				if r.IntN(4) > 0 {
					k[i] = byte(' ' + r.IntN(95))
				}
			}
			m[string(k)] = r.Uint64()
		}
		cases = append(cases, m)
	}
	for _, vv := range cases {
		want, err := json.Marshal(vv)
		assert.NoError(t, err)
		assert.Equal(t, string(want), storedVersionVector(vv), "%q", vv)
	}
	assert.Equal(t, "{}", storedVersionVector(nil))
}
