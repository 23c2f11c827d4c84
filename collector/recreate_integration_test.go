package collector

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestRecreatedTopicIsSaid: a topic deleted and recreated under the same
// name while the tap reads it. The tap keeps what it stored of the first
// instance, does not take the new instance's offsets for the old one's,
// and says so: Ready names the topic, once it knows.
func TestRecreatedTopicIsSaid(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "orders.recreate_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	produce := func(first, n int) {
		produceOrders(ctx, t, brokers, topic, first, n)
	}
	produce(0, 10)
	tp := startTap(t, brokers, store, regexp.QuoteMeta(topic))
	tp.waitConsumed(t, 10)

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	_, err = adm.DeleteTopics(ctx, topic)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := adm.CreateTopic(ctx, 1, -1, nil, topic)
		return err == nil
	}, time.Minute, 500*time.Millisecond, "the topic recreated")
	produce(100, 5)

	require.Eventually(t, func() bool {
		err := tp.c.Ready()
		return err != nil && strings.Contains(err.Error(), "deleted and recreated")
	}, 90*time.Second, 200*time.Millisecond, "the tap says the topic was recreated: %v", tp.c.Ready())
	assert.Equal(t, 1.0, testutil.ToFloat64(tp.c.metrics.recreated), "weft_collector_recreated_topics")
	var stored []string
	readEvents(t, store, topic, 0, func(e event.Event) { stored = append(stored, e.EventID) })
	assert.Equal(t, []string{"e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"}, stored,
		"the first instance's rows kept; none of the new instance's taken for them")
	err = tp.c.Ready()
	require.Error(t, err)
	assert.Contains(t, err.Error(), topic)
}
