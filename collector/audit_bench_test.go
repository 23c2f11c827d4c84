package collector

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/auditor"
)

// BenchmarkAuditRecord is what the audit trail adds to each polled record
// on the tap's poll goroutine: the stored row's commitment, the keyed
// source commitment and order tag, the leaf (not the append or the insert).
func BenchmarkAuditRecord(b *testing.B) {
	d, err := NewDecoder(Default())
	if err != nil {
		b.Fatal(err)
	}
	key, err := auditor.ParseSourceKey(auditor.GenerateSourceKey())
	if err != nil {
		b.Fatal(err)
	}
	t := newAuditTrail(Audit{ClusterID: "bench", SourceKey: key}, nil, zerolog.Nop(), newMetrics(nil))
	pad := strings.Repeat("x", 800)
	r := &kgo.Record{Topic: "orders", Partition: 3, Offset: 99, Key: []byte("o-1"), Timestamp: time.Now(),
		Value: []byte(fmt.Sprintf(`{"event_id":"e-1","event_type":"OrderPlaced","order_id":"o-1","occurred_at":"2026-11-24T10:00:00Z","note":%q}`, pad)),
		Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
			{Key: "causation-id", Value: []byte("e-0")}, {Key: "version-vector", Value: []byte(`{"orders":3,"payments":1}`)}}}
	e, err := d.Decode(r)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(r.Value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := t.record(r, t.eventRow(&e), e.OrderID); err != nil {
			b.Fatal(err)
		}
	}
}
