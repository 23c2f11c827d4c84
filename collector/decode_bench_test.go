package collector

import (
	"testing"
	"time"

	"github.com/weft-sh/weft/internal/demo"
)

// BenchmarkDecode decodes and masks demo records (the three encodings mixed
// as the demo mixes them), with no I/O: the tap's per-record CPU cost.
func BenchmarkDecode(b *testing.B) {
	cfg := demo.DefaultConfig()
	cfg.Orders = 200
	cfg.Now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	batch, err := demo.Plan(cfg)
	if err != nil {
		b.Fatal(err)
	}
	d, err := NewDecoder(Default())
	if err != nil {
		b.Fatal(err)
	}
	recs := batch.Records
	var bytes int64
	for _, r := range recs {
		bytes += int64(len(r.Value))
	}
	b.SetBytes(bytes / int64(len(recs)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.Decode(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
}
