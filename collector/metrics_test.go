package collector

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/kafkaconn"
)

// The per-topic counters count every record under its own topic, however
// the topics alternate.
func TestPerTopicCounters(t *testing.T) {
	c, err := New(Default(), kafkaconn.Default(), nil, Settings{})
	require.NoError(t, err)
	b := newBatch()
	topics := []string{"a", "a", "b", "a", "c", "c", "c", "b"}
	for i, topic := range topics {
		value := `{"event_type":"T","order_id":"o"}`
		if i%3 == 0 {
			value = `not json`
		}
		c.add(b, &kgo.Record{Topic: topic, Offset: int64(i), Value: []byte(value), Timestamp: time.Unix(1764000000, 0)})
	}
	assert.Equal(t, 3.0, testutil.ToFloat64(c.metrics.consumed.WithLabelValues("a")))
	assert.Equal(t, 2.0, testutil.ToFloat64(c.metrics.consumed.WithLabelValues("b")))
	assert.Equal(t, 3.0, testutil.ToFloat64(c.metrics.consumed.WithLabelValues("c")))

	addPerTopic(c.metrics.stored, len(b.events), func(i int) string { return b.events[i].Topic })
	addPerTopic(c.metrics.quarantined, len(b.quarantine), func(i int) string { return b.quarantine[i].Topic })
	for _, topic := range []string{"a", "b", "c"} {
		var stored, quarantined float64
		for _, e := range b.events {
			if e.Topic == topic {
				stored++
			}
		}
		for _, q := range b.quarantine {
			if q.Topic == topic {
				quarantined++
			}
		}
		assert.Equal(t, stored, testutil.ToFloat64(c.metrics.stored.WithLabelValues(topic)), topic)
		assert.Equal(t, quarantined, testutil.ToFloat64(c.metrics.quarantined.WithLabelValues(topic)), topic)
	}
	assert.Equal(t, 3, len(b.quarantine))
}
