package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

func testTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	ids := NewIDs(testKey)
	for i := 0; i < n; i++ {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(ids.TraceID("o"))
		s.SetSpanID(ids.SpanID("o", string(rune('a'+i))))
		s.SetName("send orders")
	}
	return td
}

// receiver answers each export with the next status of its script (200
// after the script), and keeps what it was sent.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []ptrace.Traces
	headers  []http.Header
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	status := http.StatusOK
	if len(r.statuses) > 0 {
		status, r.statuses = r.statuses[0], r.statuses[1:]
	}
	r.headers = append(r.headers, req.Header.Clone())
	if status != http.StatusOK {
		http.Error(w, "no", status)
		return
	}
	er := ptraceotlp.NewExportRequest()
	if err := er.UnmarshalProto(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.got = append(r.got, er.Traces())
	w.Header().Set("Content-Type", "application/x-protobuf")
	resp := ptraceotlp.NewExportResponse()
	b, _ := resp.MarshalProto()
	_, _ = w.Write(b)
}

func (r *receiver) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, td := range r.got {
		n += td.SpanCount()
	}
	return n
}

func newTestExporter(t *testing.T, url string, clock clockwork.Clock, queue int) (*Exporter, metrics) {
	cfg := Default()
	cfg.Endpoint, cfg.QueueSpans, cfg.Headers = url, queue, map[string]string{"X-Tenant": "shop"}
	m := newMetrics(prometheus.NewRegistry())
	x, err := newExporter(cfg, nil, clock, zerolog.Nop(), m)
	require.NoError(t, err)
	return x, m
}

func TestExporterRetriesOnlyRetryableAnswers(t *testing.T) {
	rcv := &receiver{statuses: []int{http.StatusServiceUnavailable, http.StatusTooManyRequests}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	clock := clockwork.NewFakeClock()
	x, m := newTestExporter(t, srv.URL, clock, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { x.Run(ctx, time.Second); close(done) }()
	defer func() { cancel(); <-done }()

	require.True(t, x.Enqueue(testTraces(3)))
	for i := 0; i < 2; i++ { // two retryable answers, each waited out
		require.NoError(t, clock.BlockUntilContext(ctx, 1))
		clock.Advance(time.Minute)
	}
	require.Eventually(t, func() bool { return rcv.received() == 3 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, "shop", rcv.headers[0].Get("X-Tenant"))
	assert.Equal(t, "application/x-protobuf", rcv.headers[0].Get("Content-Type"))
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.spans.WithLabelValues(OutcomeExported)) == 3 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("503")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("429")))

	// A 400 is never retried: the spans are dropped as failed at once.
	rcv.mu.Lock()
	rcv.statuses = []int{http.StatusBadRequest}
	rcv.mu.Unlock()
	require.True(t, x.Enqueue(testTraces(2)))
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.spans.WithLabelValues(OutcomeFailed)) == 2 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("400")))
	assert.Equal(t, 3, rcv.received())
}

func TestExporterQueueBoundDropsWithoutBlocking(t *testing.T) {
	// Nothing sends (Run is not running): the queue fills and the rest is
	// dropped, counted, at once.
	x, m := newTestExporter(t, "http://127.0.0.1:1/v1/traces", clockwork.NewFakeClock(), 5)
	assert.True(t, x.Enqueue(testTraces(3)))
	assert.False(t, x.Enqueue(testTraces(3)), "6 spans do not fit a queue of 5")
	assert.True(t, x.Enqueue(testTraces(2)))
	assert.Equal(t, 3.0, testutil.ToFloat64(m.spans.WithLabelValues(OutcomeDropped)))
}
