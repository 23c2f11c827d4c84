package leader

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	isLeader prometheus.Gauge
	changes  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "weft", Subsystem: "leader", Name: "is_leader",
			Help: "1 while this replica leads (runs the detector, queue-health samples and the other once-only work), else 0."}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "weft", Subsystem: "leader", Name: "changes_total",
			Help: "Times this replica started or stopped leading."}),
	}
	if reg != nil {
		reg.MustRegister(m.isLeader, m.changes)
	}
	return m
}
