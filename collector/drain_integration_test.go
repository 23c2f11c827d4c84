package collector

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestGracefulStopStoresTheBufferedBatch: records the tap has polled but
// not yet flushed (the flush interval is an hour away) are stored and
// committed when Run's context ends, not dropped and read again.
func TestGracefulStopStoresTheBufferedBatch(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	name := testenv.Name(t)
	topic := "drain_" + name + ".orders"
	testenv.CreateTopic(t, brokers, topic, 3, nil)

	const n = 300
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer cl.Close()
	for i := range n {
		v := fmt.Sprintf(`{"event_id":"e-%d","event_type":"OrderPlaced","order_id":"o-%d","occurred_at":"2026-11-01T10:00:00Z"}`, i, i)
		cl.Produce(context.Background(), &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(v)}, nil)
	}
	require.NoError(t, cl.Flush(context.Background()))

	cfg := Default()
	cfg.Group = "g_" + name
	cfg.Topics.Include = []string{regexp.QuoteMeta(topic)}
	cfg.Batch.FlushInterval = time.Hour
	cfg.Batch.MaxRecords = 100_000
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	c, err := New(cfg, kc, store, Settings{Logger: zerolog.Nop(), Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, c.Start(ctx))
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	require.Eventually(t, func() bool { return c.Stats().Consumed == n }, 30*time.Second, 20*time.Millisecond)
	require.Zero(t, c.Stats().Stored, "nothing flushed before the stop")

	cancel()
	require.NoError(t, <-done)
	require.NoError(t, c.Shutdown(context.Background()))
	assert.EqualValues(t, n, c.Stats().Stored, "the buffered batch was stored on the way out")

	offsets, err := kadm.NewClient(cl).FetchOffsets(context.Background(), cfg.Group)
	require.NoError(t, err)
	var committed int64
	offsets.Each(func(o kadm.OffsetResponse) { committed += o.At })
	assert.EqualValues(t, n, committed, "and its offsets committed, so the next start reads nothing again")
}

// TestStoringSinceMarksTheInsertInFlight: while a batch is being stored —
// here retried, ClickHouse refusing it — StoringSince says since when, so
// the detector's ingest window stops there; with nothing in flight it is
// zero.
func TestStoringSinceMarksTheInsertInFlight(t *testing.T) {
	brokers := testenv.Kafka(t)
	cfgCH := testenv.ClickHouse(t)
	store, err := chstore.Open(context.Background(), cfgCH)
	require.NoError(t, err)
	require.NoError(t, store.Migrate(context.Background()))
	name := testenv.Name(t)
	topic := "storing_" + name + ".orders"
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(`{"event_type":"OrderPlaced","order_id":"o-1"}`)}).FirstErr())

	cfg := Default()
	cfg.Group = "g_" + name
	cfg.Topics.Include = []string{regexp.QuoteMeta(topic)}
	cfg.Batch.FlushInterval = 50 * time.Millisecond
	cfg.Batch.DrainTimeout = time.Second
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	c, err := New(cfg, kc, store, Settings{Logger: zerolog.Nop()})
	require.NoError(t, err)
	assert.True(t, c.StoringSince().IsZero())
	require.NoError(t, store.Close()) // every insert fails from now on
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, c.Start(ctx))
	before := time.Now()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	require.Eventually(t, func() bool { return !c.StoringSince().IsZero() }, 30*time.Second, 10*time.Millisecond)
	assert.WithinRange(t, c.StoringSince(), before.Add(-time.Second), time.Now())
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, c.Shutdown(context.Background()))
	assert.True(t, c.StoringSince().IsZero(), "nothing in flight once Run returned")
}
