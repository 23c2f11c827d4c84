package chstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// nodeConns dials each node of the test cluster on its own.
func nodeConns(t *testing.T, cfg chstore.Config) []driver.Conn {
	t.Helper()
	var out []driver.Conn
	for _, addr := range cfg.Addr {
		c := chstore.Default()
		c.Addr = []string{addr}
		conn, err := chstore.Dial(context.Background(), c)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		out = append(out, conn)
	}
	return out
}

// clusterStore opens and migrates a fresh database on the test cluster,
// whatever the run's layout.
func clusterStore(t *testing.T) (chstore.Config, *chstore.Store) {
	t.Helper()
	cfg := testenv.Cluster(t)
	ctx := context.Background()
	store, err := chstore.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	require.NoError(t, store.Migrate(ctx))
	return cfg, store
}

func nodeScalar(t *testing.T, conn driver.Conn, q string, args ...any) uint64 {
	t.Helper()
	var v uint64
	require.NoError(t, conn.QueryRow(context.Background(), q, args...).Scan(&v), q)
	return v
}

// TestClusterMigratesEveryNode: with clickhouse.cluster set, Migrate
// creates on every node each table's local half and its Distributed table,
// records on each node what that node has applied, and picks up a node that
// lacks the schema (a node added, or one whose database was lost) where it
// is; Pending and CheckSchema name that node until then.
func TestClusterMigratesEveryNode(t *testing.T) {
	cfg, store := clusterStore(t)
	ctx := context.Background()

	nodes := nodeConns(t, cfg)
	require.Len(t, nodes, 2)
	var migrations uint64
	for i, n := range nodes {
		applied := nodeScalar(t, n, "SELECT count() FROM "+store.Table("schema_migrations")+" FINAL")
		if i == 0 {
			migrations = applied
		}
		assert.Equal(t, migrations, applied, "node %d applied every migration", i)
		for tbl, engine := range map[string]string{"events_local": "ReplacingMergeTree", "events": "Distributed",
			"findings_local": "ReplacingMergeTree", "findings": "Distributed", "order_state_local": "AggregatingMergeTree"} {
			var got string
			require.NoError(t, n.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?",
				cfg.Database, tbl).Scan(&got), "node %d %s", i, tbl)
			assert.Equal(t, engine, got, "node %d %s", i, tbl)
		}
	}
	assert.Greater(t, migrations, uint64(15))
	pending, err := store.Pending(ctx)
	require.NoError(t, err)
	assert.Empty(t, pending)
	require.NoError(t, store.CheckSchema(ctx))

	// The second node loses its database: it alone is behind.
	require.NoError(t, nodes[1].Exec(ctx, "DROP DATABASE "+cfg.Database))
	pending, err = store.Pending(ctx)
	require.NoError(t, err)
	require.Len(t, pending, int(migrations))
	for _, p := range pending {
		assert.Equal(t, cfg.Addr[1], p.Node)
	}
	err = store.CheckSchema(ctx)
	require.ErrorIs(t, err, chstore.ErrSchemaPending)
	assert.Contains(t, err.Error(), cfg.Addr[1])
	require.NoError(t, store.Migrate(ctx))
	pending, err = store.Pending(ctx)
	require.NoError(t, err)
	assert.Empty(t, pending)
	assert.Equal(t, migrations, nodeScalar(t, nodes[1], "SELECT count() FROM "+store.Table("schema_migrations")+" FINAL"))

	// Tables sharded over three shards, on a cluster of two: refused, by
	// Migrate and by the check of `weft run` with migrate: external.
	require.NoError(t, nodes[0].Exec(ctx, "INSERT INTO "+store.Table("schema_shards")+" (cluster, shards) VALUES (?, 3)", testenv.ClusterName))
	err = store.Migrate(ctx)
	require.ErrorIs(t, err, chstore.ErrShardsChanged)
	assert.Contains(t, err.Error(), "has 2 shards")
	assert.Contains(t, err.Error(), "sharded over 3")
	require.ErrorIs(t, store.CheckSchema(ctx), chstore.ErrShardsChanged)
}

// TestClusterShardsByOrder: events inserted through the Distributed table
// land on both shards, every order's rows on one; the store's reads see
// them all; a store opened with no cluster configured finds the layout
// from the tables, and one configured with another cluster is refused.
// Erasing an order reaches its shard.
func TestClusterShardsByOrder(t *testing.T) {
	cfg, store := clusterStore(t)
	ctx := context.Background()

	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := range 400 {
		order := fmt.Sprintf("ord-%03d", i%100)
		evs = append(evs, event.Event{Topic: "orders", Partition: int32(i % 4), Offset: int64(i), EventID: fmt.Sprint("e", i),
			Type: "OrderPlaced", OrderID: order, EventTime: t0.Add(time.Duration(i) * time.Second), RecordTime: t0,
			PayloadHash: fmt.Sprintf("%064d", i), Payload: []byte(`{"card":"masked"}`), Key: order})
	}
	require.NoError(t, store.InsertEvents(ctx, evs, time.Now().UTC(), "shard-1"))

	// Each node's own rows: both hold some, no order on both.
	owner := map[string]int{}
	total := uint64(0)
	for i, n := range nodeConns(t, cfg) {
		rows, err := n.Query(ctx, "SELECT order_id, count() FROM "+store.Table("events_local")+" GROUP BY order_id")
		require.NoError(t, err)
		held := 0
		for rows.Next() {
			var order string
			var c uint64
			require.NoError(t, rows.Scan(&order, &c))
			prev, seen := owner[order]
			assert.False(t, seen, "order %s is on node %d and node %d", order, prev, i)
			owner[order] = i
			total += c
			held++
		}
		require.NoError(t, rows.Err())
		rows.Close()
		assert.Positive(t, held, "node %d holds orders", i)
	}
	assert.Len(t, owner, 100)
	assert.Equal(t, uint64(400), total)

	// The store reads across shards: one order's chain, and a search.
	var chain []chstore.EventRow
	require.NoError(t, store.OrderEvents(ctx, []string{"ord-007"}, func(r chstore.EventRow) { chain = append(chain, r) }))
	assert.Len(t, chain, 4)
	page, err := store.SearchEvents(ctx, chstore.EventSearch{RecordKey: "ord-042", Limit: 10})
	require.NoError(t, err)
	assert.Len(t, page.Events, 4)

	// No cluster in the config: the tables say it.
	bare := cfg
	bare.Cluster = chstore.Cluster{}
	found, err := chstore.Open(ctx, bare)
	require.NoError(t, err)
	chain = nil
	require.NoError(t, found.OrderEvents(ctx, []string{"ord-007"}, func(r chstore.EventRow) { chain = append(chain, r) }))
	assert.Len(t, chain, 4)
	require.NoError(t, found.Ping(ctx))
	require.NoError(t, found.Close())
	other := cfg
	other.Cluster.Name = "another"
	_, err = chstore.Open(ctx, other)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "clickhouse.cluster.name")

	// Erasure runs on each node's shard table.
	require.NoError(t, store.EraseOrder(ctx, "ord-007"))
	var payloads []string
	rows, err := nodeConns(t, cfg)[0].Query(ctx, "SELECT payload FROM "+store.Table("events")+" WHERE order_id = 'ord-007'")
	require.NoError(t, err)
	for rows.Next() {
		var p string
		require.NoError(t, rows.Scan(&p))
		payloads = append(payloads, p)
	}
	rows.Close()
	assert.Equal(t, []string{"", "", "", ""}, payloads)
}
