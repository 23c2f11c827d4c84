package benchkit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/event"
)

// TestWorkloadRecords: the padded records are still valid JSON that weft
// decodes, in all three encodings, with the padding in the stored payload,
// about ValueBytes long on average, and the same on every call.
func TestWorkloadRecords(t *testing.T) {
	w := Workload{Records: 20_000, Partitions: 12, ValueBytes: 1024, Seed: 3,
		Now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	var recs []*kgo.Record
	require.NoError(t, w.Generate("bench.t", func(rs []*kgo.Record) error {
		recs = append(recs, rs...)
		return nil
	}))
	require.Len(t, recs, w.Records)

	d, err := collector.NewDecoder(collector.Default())
	require.NoError(t, err)
	formats := map[event.Format]int{}
	var total, padded int
	for i, r := range recs {
		require.Equal(t, "bench.t", r.Topic)
		require.True(t, json.Valid(r.Value), "record %d: %s", i, r.Value)
		e, err := d.Decode(r)
		require.NoError(t, err, "record %d: %s", i, r.Value)
		formats[e.Format]++
		if strings.Contains(string(r.Value), `"note":`) {
			assert.Contains(t, string(e.Payload), `"note":`, "record %d: padding is stored", i)
			padded++
		}
		total += len(r.Value)
	}
	assert.Len(t, formats, 3, "all three encodings: %v", formats)
	assert.Greater(t, padded, len(recs)*3/4, "most records are padded")
	mean := total / len(recs)
	assert.InDelta(t, w.ValueBytes, mean, 0.1*float64(w.ValueBytes), "mean value size")

	again := 0
	require.NoError(t, w.Generate("bench.t", func(rs []*kgo.Record) error {
		for _, r := range rs {
			require.Equal(t, string(recs[again].Value), string(r.Value))
			again++
		}
		return nil
	}))
	assert.Equal(t, len(recs), again)
}
