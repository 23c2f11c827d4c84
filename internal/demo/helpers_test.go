package demo

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	contract "github.com/weft-sh/weft/internal/event"
)

// testNow is a fixed Now so plans are reproducible.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Now = testNow
	return cfg
}

// withZeros completes a per-kind count map with the kinds it lacks.
func withZeros(m map[Kind]int) map[Kind]int {
	out := map[Kind]int{}
	for _, k := range Kinds() {
		out[k] = m[k]
	}
	return out
}

func mustPlan(t *testing.T, cfg Config) *Batch {
	t.Helper()
	b, err := Plan(cfg)
	require.NoError(t, err)
	return b
}

// decoded is a record read back the way weft would: whatever its encoding.
type decoded struct {
	rec       *kgo.Record
	format    contract.Format
	id, typ   string
	source    string
	orderID   string
	at        time.Time
	headers   map[string]string
	causation string
	vv        map[string]uint64
	traceID   string
	spanID    string
	data      map[string]any
}

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`)

func decode(t *testing.T, r *kgo.Record) decoded {
	t.Helper()
	d := decoded{rec: r, headers: map[string]string{}}
	for _, h := range r.Headers {
		d.headers[h.Key] = string(h.Value)
	}
	var v map[string]any
	require.NoError(t, json.Unmarshal(r.Value, &v), "value of %s record is not JSON", r.Topic)
	str := func(m map[string]any, k string) string {
		s, _ := m[k].(string)
		return s
	}
	var tm string
	switch {
	case d.headers["ce_specversion"] != "":
		d.format = contract.FormatCloudEventsBinary
		d.id, d.typ, d.source = d.headers["ce_id"], d.headers["ce_type"], d.headers["ce_source"]
		d.orderID, tm, d.data = d.headers["ce_subject"], d.headers["ce_time"], v
	case str(v, "specversion") != "":
		d.format = contract.FormatCloudEventsStructured
		require.Equal(t, "1.0", str(v, "specversion"))
		require.Equal(t, "application/json", str(v, "datacontenttype"))
		d.id, d.typ, d.source, d.orderID, tm = str(v, "id"), str(v, "type"), str(v, "source"), str(v, "subject"), str(v, "time")
		d.data, _ = v["data"].(map[string]any)
	default:
		d.format = contract.FormatJSON
		d.id, d.typ, d.orderID, tm = str(v, "event_id"), str(v, "event_type"), str(v, "order_id"), str(v, "occurred_at")
		d.source = serviceOf(d.typ) // plain JSON carries no source: the topic tells
		d.data = v
	}
	require.NotEmpty(t, d.id)
	require.NotEmpty(t, d.typ)
	require.NotNil(t, d.data, "event %s has no data", d.id)
	at, err := time.Parse(time.RFC3339Nano, tm)
	require.NoError(t, err)
	d.at = at
	d.causation = d.headers[contract.HeaderCausationID]
	require.NoError(t, json.Unmarshal([]byte(d.headers[contract.HeaderVersionVector]), &d.vv))
	m := traceparentRE.FindStringSubmatch(d.headers[contract.HeaderTraceParent])
	require.NotNil(t, m, "bad traceparent %q", d.headers[contract.HeaderTraceParent])
	d.traceID, d.spanID = m[1], m[2]
	return d
}

// byOrder decodes every record and groups them by order id, in record order.
func byOrder(t *testing.T, recs []*kgo.Record) map[string][]decoded {
	out := map[string][]decoded{}
	for _, r := range recs {
		d := decode(t, r)
		out[d.orderID] = append(out[d.orderID], d)
	}
	return out
}

// lastByTime is the order's last event in event time (DLQ copies ignored).
func lastByTime(evs []decoded, dlq string) decoded {
	var last decoded
	for _, e := range evs {
		if e.rec.Topic != dlq && (last.rec == nil || !e.at.Before(last.at)) {
			last = e
		}
	}
	return last
}

// dominates reports whether a ≥ b pointwise.
func dominates(a, b map[string]uint64) bool {
	for k, v := range b {
		if a[k] < v {
			return false
		}
	}
	return true
}

func luhn(s string) bool {
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func describe(evs []decoded) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %s %s %s cause=%s vv=%v", e.at.Format(time.RFC3339Nano), e.typ, e.id, e.causation, e.vv)
	}
	return b.String()
}
