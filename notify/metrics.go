package notify

import "github.com/prometheus/client_golang/prometheus"

// metrics count what the webhooks were sent, by webhook name (bounded by
// the configuration).
type metrics struct {
	messages   *prometheus.CounterVec
	findings   *prometheus.CounterVec
	retries    *prometheus.CounterVec
	duplicates prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "weft", Subsystem: "notify", Name: "messages_total",
			Help: "Webhook messages by outcome: sent, failed (after its retries)."}, []string{"webhook", "outcome"}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "weft", Subsystem: "notify", Name: "findings_total",
			Help: "Finding opens and resolves by webhook and outcome: sent, failed, dropped (the webhook's queue was full)."}, []string{"webhook", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "weft", Subsystem: "notify", Name: "retries_total",
			Help: "Webhook deliveries attempted again after a 5xx or 429 answer, a network error or a timeout."}, []string{"webhook"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "weft", Subsystem: "notify", Name: "duplicates_total",
			Help: "Finding opens or resolves not sent because the same one was already sent."}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.findings, m.retries, m.duplicates)
	}
	return m
}

// init exports a webhook's counters at zero.
func (m metrics) init(webhook string) {
	for _, o := range []string{"sent", "failed"} {
		m.messages.WithLabelValues(webhook, o)
	}
	for _, o := range []string{"sent", "failed", "dropped"} {
		m.findings.WithLabelValues(webhook, o)
	}
	m.retries.WithLabelValues(webhook)
}
