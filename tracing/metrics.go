package tracing

import "github.com/prometheus/client_golang/prometheus"

// Span outcomes (weft_tracing_spans_total's outcome label).
const (
	OutcomeBuilt     = "built"     // made from a newly stored event
	OutcomeDuplicate = "duplicate" // a record of an event that already has its span: not built again
	OutcomeUnsampled = "unsampled" // not sent to the endpoint (tracing.sampling)
	OutcomeExported  = "exported"  // accepted by the endpoint
	OutcomeRejected  = "rejected"  // refused by the endpoint in a partial success
	OutcomeDropped   = "dropped"   // the queue was full
	OutcomeFailed    = "failed"    // a request refused for good, or retried for retry_for
	OutcomeStored    = "stored"    // written to otel_traces
)

type metrics struct {
	spans    *prometheus.CounterVec
	requests *prometheus.CounterVec
	queued   prometheus.Gauge
	lag      prometheus.Gauge
	errors   prometheus.Counter
	yields   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		spans: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "weft", Subsystem: "tracing", Name: "spans_total",
			Help: "Spans by outcome: built, duplicate, unsampled, exported, rejected, dropped (queue full), failed, stored (otel_traces)."}, []string{"outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "weft", Subsystem: "tracing", Name: "export_requests_total",
			Help: "OTLP export requests by HTTP status (\"error\" for a network error)."}, []string{"status"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "weft", Subsystem: "tracing", Name: "queue_spans",
			Help: "Spans waiting to be exported (bounded by tracing.queue_spans)."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "weft", Subsystem: "tracing", Name: "lag_seconds",
			Help: "How far behind the tap's stores the tracer's cursor is."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "weft", Subsystem: "tracing", Name: "pass_errors_total",
			Help: "Tracer passes that failed (a ClickHouse read or insert) and will be tried again."}),
		yields: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "weft", Subsystem: "tracing", Name: "yields_total",
			Help: "Tracer passes put off because the tap was catching up on a backlog (tracing.backlog_interval)."}),
	}
	for _, o := range []string{OutcomeBuilt, OutcomeDuplicate, OutcomeUnsampled, OutcomeExported, OutcomeRejected, OutcomeDropped, OutcomeFailed, OutcomeStored} {
		m.spans.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.spans, m.requests, m.queued, m.lag, m.errors, m.yields)
	}
	return m
}
