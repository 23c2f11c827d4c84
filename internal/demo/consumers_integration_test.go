package demo_test

import (
	"context"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
	"github.com/weft-sh/weft/queuehealth"
)

// TestConsumersQueueHealth runs the demo's services as consumer groups on
// the real broker while live demo traffic flows, and samples queue health
// with the real monitor: the services that keep up have a small lag, the
// lagging one's lag grows between two samples while it still commits, and
// the stopped one is Empty with lag — each as the manifest says.
func TestConsumersQueueHealth(t *testing.T) {
	brokers := testenv.Kafka(t)
	// Registered first, so it runs last, after every client is closed.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := testenv.Name(t)

	cfg := demo.DefaultConfig()
	cfg.Seed = 3
	cfg.Orders = 20
	cfg.Topics = demo.TopicNames{Suffix: "." + name}
	// About 50 records a second on payments, which the lagging service
	// (fulfillment) reads at 2 a second.
	cfg.Live = demo.LiveConfig{Rate: 20, StepDelayMin: 20 * time.Millisecond, StepDelayMax: 100 * time.Millisecond}
	cfg.Consumers.GroupPrefix = name + "."
	cfg.Consumers.LaggingRate = 2
	cfg.Consumers.StopAfter = 2 * time.Second
	require.NoError(t, cfg.Validate())

	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer prod.Close()
	gen, err := demo.New(cfg, prod, zerolog.Nop())
	require.NoError(t, err)
	require.NoError(t, gen.EnsureTopics(ctx, kadm.NewClient(prod), 2))
	m, err := gen.RunHistory(ctx)
	require.NoError(t, err)

	cons, err := demo.NewConsumers(cfg, []kgo.Opt{kgo.SeedBrokers(brokers...)}, zerolog.Nop())
	require.NoError(t, err)
	require.NoError(t, cons.Start(ctx))
	defer func() { require.NoError(t, cons.Shutdown(context.Background())) }()
	m.Consumers = cons.Groups()
	lagging, stopped, keepUp := m.GroupsWith(demo.BehaviorLagging), m.GroupsWith(demo.BehaviorStopped), m.GroupsWith(demo.BehaviorKeepsUp)
	require.Len(t, lagging, 1)
	require.Len(t, stopped, 1)
	require.Len(t, keepUp, 4)
	assert.Equal(t, name+".fulfillment-svc", lagging[0].Group)
	assert.Equal(t, name+".notifications-svc", stopped[0].Group)

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var liveErr, runErr error
	wg.Go(func() { _, liveErr = gen.RunLive(runCtx, nil) })
	wg.Go(func() { runErr = cons.Run(runCtx) })
	defer func() {
		stop()
		wg.Wait()
		assert.NoError(t, liveErr)
		assert.NoError(t, runErr)
	}()

	qcfg := queuehealth.Default()
	qcfg.Groups.Include = []string{regexp.QuoteMeta(cfg.Consumers.GroupPrefix) + ".*"}
	qcfg.ReadTimeout = 5 * time.Second
	qcfg.DLQPattern = regexp.QuoteMeta(cfg.Topics.Name(demo.TopicPaymentsDLQ)) // not the other tests' dead-letter topics
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	tapped := queuehealth.Topics{Include: []string{".*" + regexp.QuoteMeta("."+name)}}
	mon, err := queuehealth.New(qcfg, tapped, kc, nil, queuehealth.Settings{Logger: zerolog.Nop()})
	require.NoError(t, err)
	require.NoError(t, mon.Start(ctx))
	defer func() { require.NoError(t, mon.Shutdown(context.Background())) }()

	// sample measures queue health; find returns a group's lag on one topic.
	sample := func(c require.TestingT) queuehealth.Report {
		rep, err := mon.Sample(ctx)
		require.NoError(c, err)
		return rep
	}
	find := func(c require.TestingT, rep queuehealth.Report, group, topic string) queuehealth.GroupLag {
		for _, g := range rep.Groups {
			if g.Group == group && g.Topic == topic {
				return g
			}
		}
		require.Failf(c, "group not reported", "%s on %s in %+v", group, topic, rep.Groups)
		return queuehealth.GroupLag{}
	}
	committed := func(g queuehealth.GroupLag) (n int64) {
		for _, p := range g.Partitions {
			n += max(p.CommittedOffset, 0)
		}
		return n
	}

	// The stopped service read for StopAfter, then left: its group is Empty
	// and what arrives since waits.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		rep := sample(c)
		for _, topic := range stopped[0].Topics {
			g := find(c, rep, stopped[0].Group, topic)
			assert.Equal(c, "Empty", g.State, topic)
			assert.Positive(c, g.LagMessages, topic)
		}
	}, 30*time.Second, 200*time.Millisecond, "%s Empty with lag", stopped[0].Group)

	// The others keep up: a few records, a second or two behind at most.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		rep := sample(c)
		for _, kg := range keepUp {
			for _, topic := range kg.Topics {
				g := find(c, rep, kg.Group, topic)
				assert.Equal(c, "Stable", g.State, "%s on %s", kg.Group, topic)
				assert.LessOrEqual(c, g.LagMessages, int64(10), "%s on %s", kg.Group, topic)
				assert.True(c, g.LagSeconds >= 0 && g.LagSeconds <= 2, "%s on %s: %vs behind", kg.Group, topic, g.LagSeconds)
			}
		}
	}, 20*time.Second, 200*time.Millisecond, "the keeping-up groups have small lag")

	// The lagging service reads and commits, but slower than its topic
	// grows: its lag in messages and in seconds grows between two samples.
	topic := lagging[0].Topics[0]
	first := find(t, sample(t), lagging[0].Group, topic)
	assert.Equal(t, "Stable", first.State)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		later := find(c, sample(c), lagging[0].Group, topic)
		assert.Equal(c, "Stable", later.State)
		assert.Greater(c, later.LagMessages, first.LagMessages, "lag in messages grows")
		assert.Greater(c, later.LagSeconds, first.LagSeconds, "lag in seconds grows")
		assert.Greater(c, committed(later), committed(first), "it still reads and commits")
		assert.Greater(c, later.LagMessages, int64(10), "far more behind than the groups that keep up")
	}, 20*time.Second, 200*time.Millisecond, "%s falls behind", lagging[0].Group)
}
