package queuehealth

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics exports the latest queue-health sample. The gauges are
// rendered from that sample on each scrape, so a group or partition that
// disappears stops being exported instead of freezing at its last value.
type metrics struct {
	mu     sync.RWMutex
	rows   []healthRow
	report Report

	samples  prometheus.Counter
	failures *prometheus.CounterVec
	duration prometheus.Histogram
}

var (
	descLagMessages = prometheus.NewDesc("weft_queue_lag_messages",
		"Records a consumer group has not consumed: end offset minus committed offset (minus start offset where it never committed).",
		[]string{"group", "topic", "partition"}, nil)
	descLagSeconds = prometheus.NewDesc("weft_queue_lag_seconds",
		"Age of the oldest record a consumer group has not consumed, from the record timestamp; 0 when caught up. Keeps growing while a group is stuck.",
		[]string{"group", "topic", "partition"}, nil)
	descCommitted = prometheus.NewDesc("weft_queue_committed_offset",
		"A consumer group's committed offset (absent where it never committed).",
		[]string{"group", "topic", "partition"}, nil)
	descCommitAge = prometheus.NewDesc("weft_queue_group_commit_age_seconds",
		"Seconds since the consumer group's committed offset last moved on any partition (counted from weft's first sample of the group).",
		[]string{"group"}, nil)
	descGroupLag = prometheus.NewDesc("weft_queue_group_lag_seconds",
		"The worst lag in seconds of a consumer group on a topic.",
		[]string{"group", "topic"}, nil)
	descDepth = prometheus.NewDesc("weft_queue_depth_messages",
		"Records retained in a partition: end offset minus start offset.",
		[]string{"topic", "partition"}, nil)
	descRate = prometheus.NewDesc("weft_queue_produce_rate",
		"Records produced per second to a topic, from end-offset changes between two samples.",
		[]string{"topic"}, nil)
	descDLQDepth = prometheus.NewDesc("weft_queue_dlq_depth",
		"Records retained in a dead-letter topic.",
		[]string{"topic"}, nil)
	descDLQAge = prometheus.NewDesc("weft_queue_dlq_oldest_age_seconds",
		"Age of the oldest record retained in a dead-letter topic; 0 when it is empty.",
		[]string{"topic"}, nil)
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "queue", Name: "samples_total",
			Help: "Queue-health samples taken.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "queue", Name: "sample_errors_total",
			Help: "Queue-health sampling failures by stage: kafka (offsets or groups not read), timestamps (records not read in time), clickhouse (sample not stored).",
		}, []string{"stage"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "weft", Subsystem: "queue", Name: "sample_duration_seconds",
			Help: "Duration of one queue-health sample.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
	}
	for _, stage := range []string{"kafka", "timestamps", "clickhouse"} {
		m.failures.WithLabelValues(stage)
	}
	if reg != nil {
		reg.MustRegister(m, m.samples, m.failures, m.duration)
	}
	return m
}

func (m *metrics) publish(rows []healthRow, rep Report) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows, m.report = rows, rep
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLagMessages, descLagSeconds, descCommitted, descCommitAge, descGroupLag,
		descDepth, descRate, descDLQDepth, descDLQAge} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, r := range m.rows {
		part := strconv.Itoa(int(r.Partition))
		if r.Group == "" {
			gauge(descDepth, float64(r.Lag), r.Topic, part)
			continue
		}
		gauge(descLagMessages, float64(r.Lag), r.Group, r.Topic, part)
		if r.LagSeconds >= 0 {
			gauge(descLagSeconds, r.LagSeconds, r.Group, r.Topic, part)
		}
		if r.Committed >= 0 {
			gauge(descCommitted, float64(r.Committed), r.Group, r.Topic, part)
		}
	}
	groups := map[string]bool{}
	for _, g := range m.report.Groups {
		if !groups[g.Group] {
			groups[g.Group] = true
			gauge(descCommitAge, g.CommitAgeSeconds, g.Group)
		}
		if g.LagSeconds >= 0 {
			gauge(descGroupLag, g.LagSeconds, g.Group, g.Topic)
		}
	}
	for _, t := range m.report.Topics {
		if t.ProduceRate >= 0 {
			gauge(descRate, t.ProduceRate, t.Topic)
		}
		if t.DLQ {
			gauge(descDLQDepth, float64(t.DepthMessages), t.Topic)
			if t.OldestAgeSeconds >= 0 {
				gauge(descDLQAge, t.OldestAgeSeconds, t.Topic)
			}
		}
	}
}
