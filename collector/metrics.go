package collector

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	consumed    *prometheus.CounterVec
	stored      *prometheus.CounterVec
	quarantined *prometheus.CounterVec
	insertErrs  prometheus.Counter
	insertTime  prometheus.Histogram
	batchSize   prometheus.Histogram
	// The group's view (membership.go) and the last store.
	assigned   prometheus.Gauge
	rebalances *prometheus.CounterVec
	lastStored prometheus.Gauge
	recreated  prometheus.Gauge
	// The audit trail's checkpoints (audit.go): published or failed.
	checkpoints    *prometheus.CounterVec
	lastCheckpoint prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "collector", Name: "records_consumed_total",
			Help: "Kafka records read by the tap.",
		}, []string{"topic"}),
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "collector", Name: "events_stored_total",
			Help: "Decoded events inserted into ClickHouse.",
		}, []string{"topic"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "collector", Name: "records_quarantined_total",
			Help: "Records that could not be decoded and were stored in the quarantine table.",
		}, []string{"topic"}),
		insertErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "collector", Name: "insert_errors_total",
			Help: "Failed ClickHouse batch inserts (each is retried).",
		}),
		insertTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "weft", Subsystem: "collector", Name: "insert_duration_seconds",
			Help: "Duration of successful ClickHouse batch inserts.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "weft", Subsystem: "collector", Name: "batch_records",
			Help: "Records per flushed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "weft", Subsystem: "collector", Name: "assigned_partitions",
			Help: "Partitions of the tapped topics this replica owns in its consumer group.",
		}),
		rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "collector", Name: "rebalances_total",
			Help: "Rebalance events of the tap's consumer group seen by this replica: a session began (assigned), partitions were given up to another member (revoked), or a failed session lost them all (lost).",
		}, []string{"kind"}),
		lastStored: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "weft", Subsystem: "collector", Name: "last_stored_timestamp_seconds",
			Help: "When this replica last stored a batch of records in ClickHouse (Unix time; 0: not yet). time() minus it is the time since the last stored record.",
		}),
		recreated: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "weft", Subsystem: "collector", Name: "recreated_topics",
			Help: "Topics deleted and recreated while this tap read them (UNKNOWN_TOPIC_ID): it reads only their first instance, so their new records are not stored, and it is not ready until an operator acts.",
		}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "audit", Name: "checkpoints_total",
			Help: "Audit checkpoints this replica signed and stored (result=stored), or failed to store in ClickHouse or the sink (result=failed, tried again on the next pass).",
		}, []string{"result"}),
		lastCheckpoint: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "weft", Subsystem: "audit", Name: "last_checkpoint_timestamp_seconds",
			Help: "When this replica last stored an audit checkpoint (Unix time; 0: not yet).",
		}),
	}
	for _, result := range []string{"stored", "failed"} {
		m.checkpoints.WithLabelValues(result)
	}
	for _, kind := range []string{"assigned", "revoked", "lost"} {
		m.rebalances.WithLabelValues(kind) // exported at 0 from the start
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.stored, m.quarantined, m.insertErrs, m.insertTime, m.batchSize, m.assigned, m.rebalances, m.lastStored, m.recreated,
			m.checkpoints, m.lastCheckpoint)
	}
	return m
}

// topicCounter is a per-topic counter that looks its topic's child up only
// when the topic changes: records come in runs of one partition, and
// WithLabelValues hashes the label under a lock on every call. Not safe for
// concurrent use: the goroutine that counts owns it.
type topicCounter struct {
	vec   *prometheus.CounterVec
	topic string
	child prometheus.Counter
}

func (t *topicCounter) add(topic string, n int) {
	if t.child == nil || topic != t.topic {
		t.topic, t.child = topic, t.vec.WithLabelValues(topic)
	}
	t.child.Add(float64(n))
}

// addPerTopic adds to vec one per record, topic(i) naming the topic of
// record i < n, one call per run of records of the same topic.
func addPerTopic(vec *prometheus.CounterVec, n int, topic func(int) string) {
	for i := 0; i < n; {
		j := i + 1
		for j < n && topic(j) == topic(i) {
			j++
		}
		vec.WithLabelValues(topic(i)).Add(float64(j - i))
		i = j
	}
}
