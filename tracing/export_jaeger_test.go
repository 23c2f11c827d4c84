package tracing

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestExportToJaegerBothProtocols: one order's spans exported to a real
// Jaeger v2 over OTLP/gRPC and another's over OTLP/HTTP come back through
// its query API with their parents, services, attributes and links.
func TestExportToJaegerBothProtocols(t *testing.T) {
	jg := testenv.Jaeger(t)
	t0 := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Minute)
	b := Builder{IDs: NewIDs(testKey), Group: "weft-tap"}
	orderTrace := func(order string) ptrace.Traces {
		placed := row(order, "orders", 1, order+"-e1", "OrderPlaced", "orders", "", t0)
		placed.TraceID, placed.SpanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		reserved := row(order, "inventory", 2, order+"-e2", "InventoryReserved", "inventory", order+"-e1", t0.Add(3*time.Second))
		rows := []chstore.TraceEventRow{placed, reserved}
		td := ptrace.NewTraces()
		require.Equal(t, 2, b.Build(td, Assemble(rows, chainOf(rows, nil, "")), nil))
		return td
	}
	for _, tc := range []struct{ protocol, endpoint, order string }{
		{ProtocolGRPC, "http://" + jg.OTLPGRPC, "o-grpc"},
		{ProtocolHTTP, jg.OTLPHTTP, "o-http"},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			cfg := Default()
			cfg.Endpoint, cfg.Protocol, cfg.Headers = tc.endpoint, tc.protocol, map[string]string{"X-Tenant": "shop"}
			m := newMetrics(prometheus.NewRegistry())
			x, err := newExporter(cfg, nil, clockwork.NewRealClock(), zerolog.Nop(), m)
			require.NoError(t, err)
			defer x.close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { x.Run(ctx, time.Second); close(done) }()
			defer func() { cancel(); <-done }()

			want := orderTrace(tc.order)
			require.True(t, x.Enqueue(want))
			var got ptrace.Traces
			require.Eventually(t, func() bool {
				got = testenv.JaegerTrace(t, jg.Query, b.IDs.TraceID(tc.order).String())
				return got.SpanCount() >= 2
			}, 60*time.Second, 200*time.Millisecond)
			assert.Equal(t, 2, got.SpanCount(), "each span once")
			assert.Equal(t, 2.0, testutil.ToFloat64(m.spans.WithLabelValues(OutcomeExported)))
			ws, wsvc := spansByID(want)
			gs, gsvc := spansByID(got)
			assert.Equal(t, wsvc, gsvc, "service names")
			for id, w := range ws {
				g, ok := gs[id]
				require.True(t, ok, "span %s in jaeger", id)
				assert.Equal(t, w.ParentSpanID(), g.ParentSpanID())
				assert.Equal(t, w.Name(), g.Name())
				assert.Equal(t, w.Kind(), g.Kind())
				assert.Equal(t, w.Attributes().AsRaw(), g.Attributes().AsRaw())
				assert.Equal(t, w.Links().Len(), g.Links().Len())
				assert.Equal(t, w.StartTimestamp(), g.StartTimestamp())
				assert.Equal(t, w.EndTimestamp(), g.EndTimestamp())
			}
			assert.Equal(t, consistency.ViaCausation, gs[b.IDs.SpanID(tc.order, tc.order+"-e2")].Attributes().AsRaw()[AttrParentVia])
		})
	}
}
