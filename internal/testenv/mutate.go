package testenv

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/weft-sh/weft/internal/chstore"
)

// reMutation matches the statements Mutate runs and the table each names,
// in full (Store.Table).
var reMutation = regexp.MustCompile(`^\s*(?:ALTER|OPTIMIZE|TRUNCATE) TABLE (\w+\.\w+)\b`)

// Mutate changes rows of one of weft's tables in place, as a test that
// tampers with what weft stored does: a mutation (ALTER TABLE db.T UPDATE
// or DELETE), OPTIMIZE TABLE or TRUNCATE TABLE, the table named in full
// (Store.Table). A mutation has finished on every node when Mutate
// returns (mutations_sync = 2).
//
// On one server the statement runs as written. On the cluster layout T is
// a Distributed table, which takes none of these statements
// (docs/clickhouse-cluster.md): the statement runs on T_local, on every
// node of the cluster, so it changes every shard's rows.
func Mutate(t testing.TB, stmt string, args ...any) {
	t.Helper()
	local, ok := localStatement(stmt)
	if !ok {
		t.Fatalf("testenv.Mutate: %q is not an ALTER, OPTIMIZE or TRUNCATE of a table named in full", stmt)
	}
	addrs := ClickHouseAddr(t)
	nodes := [][]string{addrs} // one server, which may have several addresses
	if OnCluster() {
		nodes = nodes[:0]
		for _, a := range addrs {
			nodes = append(nodes, []string{a})
		}
		stmt = local
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"mutations_sync": 2}))
	for _, addr := range nodes {
		c := chstore.Default()
		c.Addr = addr
		conn, err := chstore.Dial(ctx, c)
		if err != nil {
			t.Fatalf("clickhouse %v: %v", addr, err)
		}
		err = conn.Exec(ctx, stmt, args...)
		_ = conn.Close()
		if err != nil {
			t.Fatalf("clickhouse %v: %s: %v", addr, stmt, err)
		}
	}
}

// localStatement is stmt on the shard-local half of the table it names,
// and false unless stmt is a statement Mutate runs.
func localStatement(stmt string) (string, bool) {
	m := reMutation.FindStringSubmatchIndex(stmt)
	if m == nil {
		return "", false
	}
	return stmt[:m[3]] + "_local" + stmt[m[3]:], true
}
