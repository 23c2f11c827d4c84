package consistency

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestRunAgainReadsStoredState: a detector whose Run is called again — a
// replica that leads again (docs/replicas.md) — starts from the state
// stored by the replica that led meanwhile, not from where its own last
// pass stopped: it does not check again what the other checked.
func TestRunAgainReadsStoredState(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	insert := func(id string) {
		t.Helper()
		at := time.Now().UTC()
		require.NoError(t, store.InsertEvents(ctx, []event.Event{{Topic: "payments", Offset: at.UnixNano(), EventID: id,
			Type: "PaymentRequested", Service: "payments", OrderID: id, EventTime: at, RecordTime: at,
			VersionVector: map[string]uint64{"payments": 1}, PayloadHash: id}}, at, ""))
	}
	e := NewEngine(store, Builtin())
	a := NewDetector(e, time.Hour, Default().Windows, Settings{})
	b := NewDetector(e, time.Hour, Default().Windows, Settings{})

	insert("pay-1")
	res, err := a.Pass(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Checked, "a checks pay-1")

	insert("pay-2") // while b leads
	res, err = b.Pass(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Checked, "b checks pay-2, from the state a stored")

	// a leads again: its Run's first pass starts where b stopped.
	before := testutil.ToFloat64(a.checked)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- a.Run(runCtx) }()
	require.Eventually(t, func() bool { return testutil.ToFloat64(a.passes) == 2 }, 30*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.Zero(t, testutil.ToFloat64(a.checked)-before, "nothing changed since b's pass: nothing checked again")
}

// TestResign: a replica that stops leading stops exporting the gauges of
// open findings and stuck orders, so sums over replicas count the
// leader's.
func TestResign(t *testing.T) {
	d := NewDetector(nil, time.Minute, Default().Windows, Settings{})
	d.open.WithLabelValues(KindStuck, "bopis").Set(2)
	d.alerts.stuck.WithLabelValues("bopis", "ready", "unknown").Set(2)
	d.alerts.open.WithLabelValues(KindStuck).Set(2)
	d.alerts.oldest.WithLabelValues("bopis").Set(60)
	d.Resign()
	for _, c := range append(d.alerts.collectors(), d.open) {
		assert.Zero(t, testutil.CollectAndCount(c))
	}
}
