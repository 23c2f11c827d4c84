package demo

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

// fakeKafka starts an in-process broker and a producer client on it.
func fakeKafka(t *testing.T) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return c, cl
}

// consumeAll reads every topic from the start until want records arrived.
func consumeAll(t *testing.T, c *kfake.Cluster, topics []string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "got %d of %d records", len(out), want)
		fs.EachError(func(topic string, p int32, err error) { t.Errorf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func TestRunHistoryIntoKafka(t *testing.T) {
	defer goleak.VerifyNone(t)
	c, cl := fakeKafka(t)
	defer c.Close()
	defer cl.Close()

	cfg := testConfig()
	cfg.Topics = TopicNames{Prefix: "demo."}
	g, err := New(cfg, cl, zerolog.Nop())
	require.NoError(t, err)
	ctx := context.Background()
	admin := kadm.NewClient(cl)
	for range 2 { // idempotent
		require.NoError(t, g.EnsureTopics(ctx, admin, 3))
	}
	fresh, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...)) // admin's metadata is cached
	require.NoError(t, err)
	details, err := kadm.NewClient(fresh).ListTopics(ctx, cfg.Topics.All()...)
	fresh.Close()
	require.NoError(t, err)
	for _, topic := range cfg.Topics.All() {
		want := 3
		if topic == cfg.Topics.Name(TopicPaymentsDLQ) {
			want = 1
		}
		assert.Len(t, details[topic].Partitions, want, topic)
	}

	m, err := g.RunHistory(ctx)
	require.NoError(t, err)
	assert.Equal(t, 200, len(m.Orders))

	recs := consumeAll(t, c, cfg.Topics.All(), m.Records())
	got := map[string]int{}
	offsets := map[string]int64{} // PaymentFailed event id → offset on payments
	for _, r := range recs {
		got[r.Topic]++
		d := decode(t, r)
		if r.Topic == cfg.Topics.Name(TopicPayments) && d.typ == PaymentFailed {
			offsets[d.id] = r.Offset
		}
		assert.True(t, r.Timestamp.Equal(d.at), "record timestamp is the event time")
	}
	assert.Equal(t, m.RecordsPerTopic, got)

	dlq := 0
	for _, r := range recs {
		if r.Topic != cfg.Topics.Name(TopicPaymentsDLQ) {
			continue
		}
		dlq++
		d := decode(t, r)
		assert.Equal(t, strconv.FormatInt(offsets[d.id], 10), d.headers[HeaderDLQOriginalOffset])
		assert.Equal(t, cfg.Topics.Name(TopicPayments), d.headers[HeaderDLQOriginalTopic])
	}
	assert.Equal(t, len(m.FaultsOf(KindPaymentFailed)), dlq)

	// Same key, same partition: an order's records share a partition per topic.
	parts := map[string]int32{}
	for _, r := range recs {
		k := r.Topic + "/" + string(r.Key)
		if p, ok := parts[k]; ok {
			assert.Equal(t, p, r.Partition, k)
		}
		parts[k] = r.Partition
	}
}

func TestRunLiveIntoKafka(t *testing.T) {
	defer goleak.VerifyNone(t)
	c, cl := fakeKafka(t)
	defer c.Close()
	defer cl.Close()

	cfg := testConfig()
	cfg.Orders = 0
	cfg.Faults = FaultMix{Stuck: FaultShare{Fraction: 0.3}, Duplicate: FaultShare{Fraction: 0.2},
		PaymentFailed: FaultShare{Fraction: 0.2}, OutOfOrder: FaultShare{Fraction: 0.1}}
	cfg.Live = LiveConfig{Rate: 200, StepDelayMin: time.Millisecond, StepDelayMax: 5 * time.Millisecond, MaxOrders: 40}
	g, err := New(cfg, cl, zerolog.Nop())
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, g.EnsureTopics(ctx, kadm.NewClient(cl), 2))

	start := time.Now()
	var reported []Fault
	m, err := g.RunLive(ctx, func(f Fault) { reported = append(reported, f) })
	require.NoError(t, err)
	assert.Len(t, m.Orders, 40)
	assert.Empty(t, m.Interrupted)
	assert.Equal(t, m.Faults, reported)
	assert.Equal(t, 40, len(m.Healthy)+len(m.Faults))
	assert.NotEmpty(t, m.FaultsOf(KindStuck))

	recs := consumeAll(t, c, cfg.Topics.All(), m.Records())
	got := map[string]int{}
	for _, r := range recs {
		got[r.Topic]++
		d := decode(t, r)
		assert.False(t, d.at.Before(start.Truncate(time.Millisecond)), "live event time is wall clock")
		assert.False(t, d.at.After(time.Now()))
	}
	assert.Equal(t, m.RecordsPerTopic, got)
	for _, f := range m.FaultsOf(KindStuck) {
		assert.Equal(t, f.Step, StepOf(f.LastEventType))
	}
}

func TestRunLiveStopsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	c, cl := fakeKafka(t)
	defer c.Close()
	defer cl.Close()

	cfg := testConfig()
	cfg.Live = LiveConfig{Rate: 50, StepDelayMin: 5 * time.Millisecond, StepDelayMax: 20 * time.Millisecond}
	g, err := New(cfg, cl, zerolog.Nop())
	require.NoError(t, err)
	require.NoError(t, g.EnsureTopics(context.Background(), kadm.NewClient(cl), 1))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	m, err := g.RunLive(ctx, nil)
	require.NoError(t, err)
	assert.NotEmpty(t, m.Orders)
	for _, o := range m.Orders {
		assert.NotContains(t, m.Interrupted, o.ID)
	}
	// Live order ids continue after the history's.
	assert.Equal(t, "ord-"+newPlanner(cfg, nil).tag+"-00201", m.Orders[0].ID)
}

func TestNewRejectsBadInput(t *testing.T) {
	_, err := New(testConfig(), nil, zerolog.Nop())
	assert.Error(t, err)
	cfg := testConfig()
	cfg.Orders = -1
	_, err = New(cfg, nil, zerolog.Nop())
	var ce *ConfigError
	assert.ErrorAs(t, err, &ce)
}
