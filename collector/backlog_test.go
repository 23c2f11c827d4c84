package collector

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
)

func fetchOf(topic string, p int32, hw, lso int64, offsets ...int64) kgo.Fetches {
	fp := kgo.FetchPartition{Partition: p, HighWatermark: hw, LastStableOffset: lso}
	for _, o := range offsets {
		fp.Records = append(fp.Records, &kgo.Record{Topic: topic, Partition: p, Offset: o})
	}
	return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: topic, Partitions: []kgo.FetchPartition{fp}}}}}
}

// TestBacklogReadings: the backlog is the end of the log (the last stable
// offset, else the high watermark) minus the offset after the last record
// polled, per partition, from each partition's latest reading. Readings do
// not age while nothing is polled; one backlogTTL older than the newest
// reading, or of a partition revoked, no longer counts.
func TestBacklogReadings(t *testing.T) {
	var b backlog
	t0 := time.Unix(1_700_000_000, 0)
	b.note(fetchOf("a", 0, 1000, 1000, 10, 11, 12), t0) // 1000 - 13
	b.note(fetchOf("a", 1, 500, -1, 99), t0)            // no LSO: 500 - 100
	b.note(fetchOf("b", 0, 900, 800, 799), t0)          // LSO below HW (open transaction): 800 - 800
	assert.EqualValues(t, 987+400+0, b.records())

	b.note(fetchOf("a", 0, 1000, 1000, 999), t0.Add(time.Second)) // caught up
	b.note(fetchOf("a", 1, 600, 600), t0.Add(time.Second))        // no records: reading kept
	assert.EqualValues(t, 400, b.records())
	assert.EqualValues(t, 400, b.records(), "no poll for a while (ClickHouse down): nothing ages")

	b.note(fetchOf("a", 0, 5000, 5000, 1999), t0.Add(backlogTTL+2*time.Second))
	assert.EqualValues(t, 3000, b.records(), "a partition not read for backlogTTL while others are no longer counts")
	assert.Len(t, b.parts, 1)

	b.forget(map[string][]int32{"a": {0}})
	assert.Zero(t, b.records(), "revoked")
	assert.Empty(t, b.parts)
}

// TestBehindOnRealBroker: a tap started over a topic already holding many
// batches' worth of records says it is behind, and stops saying so once it
// has read to the end; the gauge follows.
func TestBehindOnRealBroker(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "orders.backlog_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 3, nil)
	const n = 30_000
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte(fmt.Sprintf("ord-%d", i%500)),
			Value: []byte(fmt.Sprintf(`{"order_id":"ord-%d","event_type":"OrderPlaced","event_id":"e-%d"}`, i%500, i))}
	}
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
	cl.Close()

	cfg := Default()
	cfg.Group = "g_" + testenv.Name(t)
	cfg.Topics.Include = []string{regexp.QuoteMeta(topic)}
	cfg.Batch.MaxRecords = 500 // behind means more than 1,000 records wait
	cfg.Fetch.MaxPartitionBytes = 64 << 10
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	tp := runTapWith(t, cfg, kc, store)
	c, reg := tp.c, tp.reg

	var sawBehind bool
	var most int64
	require.Eventually(t, func() bool {
		sawBehind = sawBehind || c.Behind()
		most = max(most, c.Backlog())
		return c.Stats().Stored >= n
	}, 90*time.Second, 2*time.Millisecond)
	assert.True(t, sawBehind, "a tap starting %d records behind never said so (largest backlog seen %d)", n, most)
	assert.LessOrEqual(t, most, int64(n))
	assert.Eventually(t, func() bool { return !c.Behind() && c.Backlog() == 0 }, 10*time.Second, 10*time.Millisecond,
		"caught up, the backlog is %d", c.Backlog())
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var gauge *float64
	for _, mf := range mfs {
		if mf.GetName() == "weft_collector_backlog_records" {
			gauge = mf.GetMetric()[0].GetGauge().Value
		}
	}
	require.NotNil(t, gauge, "weft_collector_backlog_records is exported")
	assert.Zero(t, *gauge)
}
