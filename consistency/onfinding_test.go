package consistency

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestOnFinding: Settings.OnFinding hears of a finding once when it opens
// and once when it resolves, not at the passes between, on the real store.
func TestOnFinding(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	ev := func(id, typ string, at time.Time, off int64, n uint64) event.Event {
		return event.Event{Topic: "payments", Offset: off, EventID: id, Type: typ, Service: "payments", OrderID: "pay-1",
			EventTime: at, RecordTime: at, VersionVector: map[string]uint64{"payments": n}, PayloadHash: id}
	}
	require.NoError(t, store.InsertEvents(ctx, []event.Event{ev("r1", "PaymentRequested", now, 1, 1)}, time.Now().UTC(), ""))

	var heard [][]Finding
	e := NewEngine(store, Builtin())
	d := NewDetector(e, time.Minute, Default().Windows, Settings{OnFinding: func(fs []Finding) { heard = append(heard, fs) }})
	_, err := d.Pass(ctx)
	require.NoError(t, err)
	assert.Empty(t, heard, "within the SLA nothing opened")

	// The 5m SLA of payment_requested runs out.
	e.wall = func() time.Time { return time.Now().Add(6 * time.Minute) }
	res, err := d.Pass(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Opened)
	require.Len(t, heard, 1)
	require.Len(t, heard[0], 1)
	opened := heard[0][0]
	assert.Equal(t, KindStuck, opened.Kind)
	assert.Equal(t, StatusOpen, opened.Status)
	assert.Equal(t, "pay-1", opened.OrderID)
	assert.Equal(t, "payment_requested", opened.Step)
	assert.NotEmpty(t, opened.Reason)

	_, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Len(t, heard, 1, "still stuck: nothing new to hear")

	// The payment is authorized: the stuck finding resolves.
	// Stored on the engine's clock: the passes' ingest windows run on it.
	require.NoError(t, store.InsertEvents(ctx, []event.Event{ev("a1", "PaymentAuthorized", now.Add(time.Second), 2, 2)}, e.wall().UTC(), ""))
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Resolved)
	require.Len(t, heard, 2)
	var resolved []Finding
	for _, f := range heard[1] {
		if f.Status == StatusResolved {
			resolved = append(resolved, f)
		}
	}
	require.Len(t, resolved, 1)
	assert.Equal(t, opened.ID, resolved[0].ID)
	assert.NotNil(t, resolved[0].ResolvedAt)
}
