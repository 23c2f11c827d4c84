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

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestRunAgainReadsCursor: a Tracer whose Run is called again — a replica
// that leads again (docs/replicas.md) — reads the cursor the replica that
// led meanwhile stored, and does not read that replica's events again.
func TestRunAgainReadsCursor(t *testing.T) {
	store := testenv.Store(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	clock := clockwork.NewFakeClockAt(t0)
	cfg := Default()
	cfg.Enabled, cfg.IDKeyFile, cfg.ClickHouse = true, keyFile(t), true
	key := cfg.IDKeyFile
	tracer := func() *Tracer {
		cfg.IDKeyFile = key
		tr, err := New(cfg, store, consistency.NewEngine(store, consistency.Builtin()), Settings{Logger: zerolog.Nop(),
			Registerer: prometheus.NewRegistry(), Settle: time.Second, Clock: clock})
		require.NoError(t, err)
		require.NoError(t, tr.Start(ctx))
		return tr
	}
	insert := func(id string, ingested time.Time) {
		t.Helper()
		require.NoError(t, store.InsertEvents(ctx, []event.Event{{Topic: "orders", Offset: ingested.UnixMilli(), Key: id, EventID: id,
			Type: "OrderPlaced", Service: "orders", OrderID: id, EventTime: t0, RecordTime: t0, PayloadHash: id}}, ingested, ""))
	}
	stored := func(tr *Tracer) float64 { return testutil.ToFloat64(tr.m.spans.WithLabelValues(OutcomeStored)) }

	a := tracer()
	insert("o-1", t0.Add(time.Second))
	clock.Advance(3 * time.Second)
	n, err := a.Pass(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "a stores o-1's span")

	b := tracer() // leads while a does not
	insert("o-2", t0.Add(4*time.Second))
	clock.Advance(3 * time.Second)
	n, err = b.Pass(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "b stores o-2's span, from the cursor a stored")

	// a leads again: its first pass starts from b's cursor.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- a.Run(runCtx) }()
	require.NoError(t, clock.BlockUntilContext(ctx, 1)) // Run's ticker
	clock.Advance(cfg.Interval)
	want := clock.Now().Add(-time.Second).UTC()
	require.Eventually(t, func() bool { return a.Cursor().Equal(want) }, 30*time.Second, 10*time.Millisecond)
	stop()
	require.NoError(t, <-done)
	assert.Equal(t, 1.0, stored(a), "o-2's span, stored by b, not stored again")
	assert.Zero(t, testutil.ToFloat64(a.m.spans.WithLabelValues(OutcomeDuplicate)),
		"o-2 not even read again (otel_traces would catch it; an OTLP endpoint would not)")
}
