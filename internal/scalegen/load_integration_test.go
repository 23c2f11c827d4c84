package scalegen_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/scalegen"
	"github.com/weft-sh/weft/internal/testenv"
)

// A small workload, loaded through the real schema: the rows are what the
// manifest says, order by order; every cause is an event of the same order
// (but for the events after a lost one); every vector is its cause's with
// the producing service's entry one higher; offsets are dense per topic
// partition; and weft's own stuck query and chains agree with the plan.
func TestLoadInvariants(t *testing.T) {
	cfg := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db, err := scalegen.Open(ctx, cfg)
	require.NoError(t, err)
	defer db.Close()
	w := scalegen.Workload{Orders: 2000, Days: 1, ChunkOrders: 700}
	res, err := scalegen.Load(ctx, db, w, scalegen.Options{})
	require.NoError(t, err)
	m := res.Manifest
	require.False(t, res.Reused)
	require.Equal(t, int64(2000), m.Orders)
	require.Greater(t, m.Stuck, int64(5))
	require.Greater(t, m.InFlight, int64(20))
	require.InDelta(t, 9.5*2000, float64(m.Rows), 0.1*9.5*2000)

	again, err := scalegen.Load(ctx, db, w, scalegen.Options{})
	require.NoError(t, err)
	require.True(t, again.Reused)

	// The checks' own connection, and weft's store for its engine.
	conn, err := chstore.Dial(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close()
	store, err := chstore.Open(ctx, cfg)
	require.NoError(t, err)
	defer store.Close()
	q := func(query string) int64 {
		t.Helper()
		var n uint64
		require.NoError(t, conn.QueryRow(ctx, query).Scan(&n), query)
		return int64(n)
	}
	ev := cfg.Database + ".events"
	require.Equal(t, m.Rows, q("SELECT count() FROM "+ev))
	require.Equal(t, m.Orders, q("SELECT uniqExact(order_id) FROM "+ev))
	// Offsets: unique and dense, from 0, in each topic partition.
	require.Zero(t, q(`SELECT count() FROM (SELECT topic, partition FROM `+ev+` GROUP BY topic, partition
		HAVING uniqExact(offset) != count() OR min(offset) != 0 OR max(offset) + 1 != count())`))
	// Causes: in the same order, except those naming a lost event.
	require.Equal(t, m.Lost, q(`SELECT count() FROM `+ev+` WHERE causation_id != ''
		AND (order_id, causation_id) NOT IN (SELECT order_id, event_id FROM `+ev+`)`))
	// Vectors: each dominates its cause's, own entry + 1.
	require.Zero(t, q(`SELECT count() FROM `+ev+` AS e INNER JOIN `+ev+` AS c ON e.causation_id = c.event_id
		WHERE e.version_vector[e.service] != c.version_vector[e.service] + 1
		   OR NOT arrayAll(k -> e.version_vector[k] >= c.version_vector[k], mapKeys(c.version_vector))`))
	// One event id per idempotency key; a second record of an event id only
	// as a redelivery or a dead-letter copy.
	require.Zero(t, q(`SELECT count() FROM (SELECT idempotency_key FROM `+ev+` GROUP BY idempotency_key HAVING uniqExact(event_id) > 1)`))
	require.Equal(t, m.Duplicated+m.DeadLettered, q(`SELECT count() FROM (SELECT event_id FROM `+ev+` GROUP BY event_id HAVING count() > 1)`))
	require.Equal(t, m.Orders, q("SELECT count() FROM "+cfg.Database+".order_state"+" FINAL"))

	idx := make([]int64, w.Orders)
	for i := range idx {
		idx[i] = int64(i)
	}
	orders, err := scalegen.Sample(ctx, db, w, m, idx)
	require.NoError(t, err)
	require.Len(t, orders, w.Orders)
	rows, err := conn.Query(ctx, "SELECT order_id, count() FROM "+ev+" GROUP BY order_id")
	require.NoError(t, err)
	perOrder := map[string]int{}
	for rows.Next() {
		var id string
		var n uint64
		require.NoError(t, rows.Scan(&id, &n))
		perOrder[id] = int(n)
	}
	require.NoError(t, rows.Err())
	wantStuck := map[string]bool{}
	for _, o := range orders {
		require.Equal(t, o.Records, perOrder[o.OrderID], "records of order %d %s", o.Index, o.OrderID)
		if o.Stuck {
			wantStuck[o.OrderID] = true
		}
	}
	require.Len(t, wantStuck, int(m.Stuck))

	// weft's engine finds exactly the stuck orders, and each chain whole.
	require.NoError(t, scalegen.Tick(ctx, db, m))
	eng := consistency.NewEngine(store, consistency.Builtin())
	clock, err := eng.Clock(ctx)
	require.NoError(t, err)
	require.WithinDuration(t, m.Watermark, clock.Now, time.Minute)
	stuckSet := func(wantSource string) map[string]bool {
		t.Helper()
		res, err := eng.Stuck(ctx, clock, consistency.Filter{})
		require.NoError(t, err)
		require.Equal(t, wantSource, res.Source)
		got := map[string]bool{}
		for _, s := range res.Orders {
			got[s.OrderID] = true
		}
		return got
	}
	require.Equal(t, wantStuck, stuckSet("live"), "evaluated live, before any detector pass")
	det := consistency.NewDetector(eng, time.Minute, consistency.Default().Windows, consistency.Settings{})
	for {
		res, err := det.Pass(ctx)
		require.NoError(t, err)
		if !res.More {
			break
		}
	}
	require.Equal(t, wantStuck, stuckSet("detector"), "from the detector's findings")
	for _, o := range orders[:50] {
		chain, err := eng.Chain(ctx, o.OrderID)
		require.NoError(t, err)
		require.Len(t, chain, o.Records, o.OrderID)
	}

	b, err := scalegen.AddBatch(ctx, db, w, m, 100)
	require.NoError(t, err)
	require.InDelta(t, 950, float64(b.Rows), 200)
	pass, err := det.Pass(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, pass.Checked, b.Orders, "the pass checks the batch's orders")
	require.Equal(t, wantStuck, stuckSet("detector"), "a batch of finished orders adds no stuck order")
	again, err = scalegen.Load(ctx, db, w, scalegen.Options{})
	require.NoError(t, err)
	require.True(t, again.Reused, "clock ticks and batches do not spoil the reuse")
}
