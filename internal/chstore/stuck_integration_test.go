package chstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestStatementsBindValues: values that would break hand-quoted SQL (a
// quote, a backslash, a comment) reach ClickHouse as values, in the
// generated stuck-orders query and in the findings' filters.
func TestStatementsBindValues(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	const odd = `it's \ -- odd`
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	require.NoError(t, store.InsertEvents(ctx, []event.Event{
		{Topic: "orders", Offset: 1, EventID: "e1", Type: odd, OrderID: "o1", EventTime: t0, RecordTime: t0},
		{Topic: "orders", Offset: 2, EventID: "e2", Type: "Done", OrderID: "o2", EventTime: t0, RecordTime: t0},
	}, t0, ""))

	rules := []chstore.WorkflowRule{{Name: odd, IdentifiedBy: []string{odd, "Done"}, Steps: []chstore.StepRule{
		{On: []string{odd}, SLA: time.Minute},
		{On: []string{"Done"}, Terminal: true},
	}}}
	stuck, err := store.StuckOrders(ctx, rules, chstore.StuckQuery{Now: t0.Add(time.Hour), Limit: 10})
	require.NoError(t, err)
	require.Len(t, stuck, 1, "o2 is done")
	assert.Equal(t, chstore.StuckRow{OrderID: "o1", Workflow: odd, Rank: 1, EnteredAt: t0, LastEventType: odd, LastEventTime: t0,
		InStep: time.Hour, SLA: time.Minute}, stuck[0])
	stuck, err = store.StuckOrders(ctx, rules, chstore.StuckQuery{Now: t0.Add(time.Hour), OlderThan: 2 * time.Hour})
	require.NoError(t, err)
	assert.Empty(t, stuck, "in its step for less than OlderThan")

	f := chstore.FindingRow{ID: "f1", Kind: chstore.KindStuck, OrderID: "o1", Workflow: odd, Step: odd, Since: t0,
		Status: "open", Evidence: `{}`, FirstSeen: t0, LastSeen: t0}
	require.NoError(t, store.InsertFindings(ctx, []chstore.FindingRow{f}, t0))
	got, total, err := store.StuckFindings(ctx, chstore.StuckFindingQuery{Workflow: odd, Step: odd,
		Steps: []chstore.StepRef{{Workflow: odd, Step: odd}}, SinceBy: t0})
	require.NoError(t, err)
	assert.Equal(t, 1, total)
	assert.Equal(t, []chstore.StuckFindingRow{{OrderID: "o1", Workflow: odd, Step: odd, Since: t0}}, got)
	fs, err := store.Findings(ctx, chstore.FindingQuery{OrderID: "o1' OR 1 = 1 --"})
	require.NoError(t, err)
	assert.Empty(t, fs)
}
