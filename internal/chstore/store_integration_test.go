package chstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

func events(n int, base int64) []event.Event {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	out := make([]event.Event, n)
	for i := range out {
		off := base + int64(i) // a record decodes the same every time it is read
		out[i] = event.Event{Topic: "orders", Partition: 1, Offset: off, EventID: fmt.Sprint("e", off),
			Type: "OrderPlaced", OrderID: fmt.Sprint("o", off%3), EventTime: t0.Add(time.Duration(off) * time.Second),
			RecordTime: t0, PayloadHash: fmt.Sprintf("%064d", off), Payload: []byte(`{}`)}
	}
	return out
}

// scalar is the one number query q returns.
func scalar(t *testing.T, store *chstore.Store, q string) uint64 {
	t.Helper()
	var v uint64
	require.NoError(t, testenv.Conn(t).QueryRow(context.Background(), q).Scan(&v))
	return v
}

// TestInsertDeduplication: a retried batch (same token) is stored once, in
// the table and in the per-order view; a re-read overlapping batch (new
// token) collapses to one row per record under FINAL.
func TestInsertDeduplication(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	n := func(q string) uint64 { return scalar(t, store, q) }
	batch := events(10, 0)
	now := time.Now().UTC()
	require.NoError(t, store.InsertEvents(ctx, batch, now, "tok-1"))
	require.NoError(t, store.InsertEvents(ctx, batch, now.Add(time.Second), "tok-1"))
	assert.Equal(t, uint64(10), n("SELECT count() FROM "+store.Table("events")), "same token: dropped at insert")
	assert.Equal(t, uint64(10), n("SELECT sum(events) FROM "+store.Table("order_state")), "and not fed to the view twice")

	// After a crash the records are re-read in a differently shaped batch.
	require.NoError(t, store.InsertEvents(ctx, events(10, 5), now.Add(2*time.Second), "tok-2"))
	assert.Equal(t, uint64(20), n("SELECT count() FROM "+store.Table("events")))
	assert.Equal(t, uint64(15), n("SELECT count() FROM "+store.Table("events")+" FINAL"), "exactly once under FINAL")

	// Migrations are idempotent: running them again changes nothing.
	require.NoError(t, store.Migrate(ctx))
	assert.Equal(t, uint64(15), n("SELECT count() FROM "+store.Table("events")+" FINAL"))
}

// TestInsertEventsRoundTrip: every field of an event comes back as it went
// in, through the insert connection, batch after batch (its columns are
// reused, so a second batch must not carry anything of the first); after a
// failed insert the next one dials again and succeeds.
func TestInsertEventsRoundTrip(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 123_000_000, time.UTC)
	full := event.Event{
		Topic: "payments", Partition: 7, Offset: 1 << 40, Key: "k-1", RecordTime: t0,
		EventID: "ev-1", Type: "PaymentAuthorized", Service: "payments-svc", OrderID: "o-42",
		EventTime: t0.Add(-time.Second), CausationID: "ev-0", CorrelationID: "corr-1",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", ParentSpanID: "00f067aa0ba902b6",
		TraceState: "vendor=x", VersionVector: map[string]uint64{"payments": 3, "orders": 18446744073709551615},
		IdempotencyKey: "idem-1", Format: event.FormatCloudEventsStructured,
		Headers: map[string]string{"ce_type": "PaymentAuthorized", "content-type": "application/json"},
		Payload: []byte(`{"amount":"12.50","card":"************1111"}`), PayloadHash: fmt.Sprintf("%064x", 42),
	}
	bare := event.Event{Topic: "orders", Partition: 0, Offset: 0, EventID: "ev-2", Type: "OrderPlaced",
		OrderID: "o-43", EventTime: t0, RecordTime: t0, Payload: []byte(`{}`), PayloadHash: "short"}
	at := t0.Add(time.Minute)
	require.NoError(t, store.InsertEvents(ctx, []event.Event{full}, at, "rt-1"))
	require.NoError(t, store.InsertEvents(ctx, []event.Event{bare}, at.Add(time.Second), "rt-2"))

	type row struct {
		Topic, Key, EventID, Type, Service, OrderID, Causation, Correlation string
		Trace, Span, Parent, State, Idem, Format, Payload, Hash             string
		Partition                                                           int32
		Offset                                                              int64
		RecordTime, EventTime, IngestedAt                                   time.Time
		Vector                                                              map[string]uint64
		Headers                                                             map[string]string
	}
	read := func(id string) row {
		var r row
		require.NoError(t, testenv.Conn(t).QueryRow(ctx, `SELECT topic, record_key, event_id, event_type, service, order_id,
			causation_id, correlation_id, trace_id, span_id, parent_span_id, trace_state, idempotency_key, format,
			payload, trimRight(payload_hash, '\0'), partition, offset, record_time, event_time, ingested_at, version_vector, headers
			FROM `+store.Table("events")+` WHERE event_id = ?`, id).Scan(
			&r.Topic, &r.Key, &r.EventID, &r.Type, &r.Service, &r.OrderID, &r.Causation, &r.Correlation,
			&r.Trace, &r.Span, &r.Parent, &r.State, &r.Idem, &r.Format, &r.Payload, &r.Hash,
			&r.Partition, &r.Offset, &r.RecordTime, &r.EventTime, &r.IngestedAt, &r.Vector, &r.Headers))
		return r
	}
	want := func(e event.Event, at time.Time) row {
		return row{e.Topic, e.Key, e.EventID, e.Type, e.Service, e.OrderID, e.CausationID, e.CorrelationID,
			e.TraceID, e.SpanID, e.ParentSpanID, e.TraceState, e.IdempotencyKey, string(e.Format), string(e.Payload), e.PayloadHash,
			e.Partition, e.Offset, e.RecordTime, e.EventTime, at, e.VersionVector, e.Headers}
	}
	got := read("ev-1")
	assert.Equal(t, want(full, at), got)
	got = read("ev-2")
	w := want(bare, at.Add(time.Second))
	w.Vector, w.Headers = map[string]uint64{}, map[string]string{}
	assert.Equal(t, w, got, "nothing of the previous batch")

	// A failing insert (the table is gone) closes the insert connection;
	// once the table is back the next insert dials again.
	require.NoError(t, testenv.Conn(t).Exec(ctx, "RENAME TABLE "+store.Table("events")+" TO "+store.Table("events_away")))
	err := store.InsertEvents(ctx, []event.Event{bare}, at, "rt-3")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "events")
	require.NoError(t, testenv.Conn(t).Exec(ctx, "RENAME TABLE "+store.Table("events_away")+" TO "+store.Table("events")))
	next := bare
	next.EventID, next.Offset = "ev-3", 1
	require.NoError(t, store.InsertEvents(ctx, []event.Event{next}, at, "rt-4"))
	assert.Equal(t, "ev-3", read("ev-3").EventID)
}

// TestInsertBlocks holds ClickHouse to what the insert connection relies on
// when it sends a batch as several blocks: the server squashes the blocks of
// one INSERT into one written part (per month of record time), so the batch
// still carries one deduplication token and is stored whole or not at all.
// A batch cut off after some of its blocks stores nothing, and its retry,
// cut the same way, stores it once.
func TestInsertBlocks(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	n := func(q string) uint64 { return scalar(t, store, q) }
	db, _, _ := strings.Cut(store.Table("events"), ".")
	// A batch is written as one part on each shard it has rows for: on
	// the cluster layout, events_local of each node.
	parts := func() uint64 {
		return n("SELECT count() FROM system.parts WHERE active AND database = '" + db + "' AND table = 'events'")
	}
	shards := func() uint64 { return 1 }
	if testenv.OnCluster() {
		parts = func() uint64 {
			return n("SELECT count() FROM clusterAllReplicas('" + testenv.ClusterName + "', system.parts) WHERE active AND database = '" + db + "' AND table = 'events_local'")
		}
		shards = func() uint64 { return n("SELECT uniqExact(_shard_num) FROM " + store.Table("events")) }
	}
	now := time.Now().UTC()

	chstore.SetInsertBlocks(store, 3, nil) // 10 events: four blocks
	require.NoError(t, store.InsertEvents(ctx, events(10, 0), now, "blk-1"))
	assert.Equal(t, uint64(10), n("SELECT count() FROM "+store.Table("events")))
	assert.Equal(t, shards(), parts(), "the four blocks are written as one part (per shard)")

	require.NoError(t, store.InsertEvents(ctx, events(10, 0), now.Add(time.Second), "blk-1"))
	assert.Equal(t, uint64(10), n("SELECT count() FROM "+store.Table("events")), "a retry of a multi-block insert is dropped whole")
	assert.Equal(t, uint64(10), n("SELECT sum(events) FROM "+store.Table("order_state")), "and not fed to the view twice")

	// Cut off after two of four blocks: nothing of it is stored.
	cut := errors.New("connection lost")
	chstore.SetInsertBlocks(store, 3, func(sent int) error {
		if sent == 2 {
			return cut
		}
		return nil
	})
	err := store.InsertEvents(ctx, events(10, 10), now, "blk-2")
	require.ErrorIs(t, err, cut)
	time.Sleep(500 * time.Millisecond) // the server sees the connection close
	assert.Equal(t, uint64(10), n("SELECT count() FROM "+store.Table("events")), "a cut-off insert stores none of its blocks")
	assert.Equal(t, shards(), parts())

	chstore.SetInsertBlocks(store, 3, nil)
	require.NoError(t, store.InsertEvents(ctx, events(10, 10), now, "blk-2"))
	require.NoError(t, store.InsertEvents(ctx, events(10, 10), now, "blk-2"))
	assert.Equal(t, uint64(20), n("SELECT count() FROM "+store.Table("events")), "its retry is stored once")
	assert.Equal(t, uint64(20), n("SELECT count() FROM "+store.Table("events")+" FINAL"))
	assert.Equal(t, uint64(20), n("SELECT sum(events) FROM "+store.Table("order_state")))
}
