package chstore

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/ClickHouse/ch-go"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The cluster layout (docs/clickhouse-cluster.md). On a cluster every node
// holds, for each of weft's tables T, T_local with the rows of its shard
// and T, a Distributed table over every node's T_local. Every statement of
// weft names T, so reads see all shards and inserts are routed by the
// table's sharding key; only the schema's statements and mutations, which
// a Distributed table does not take, name T_local, on each node.
//
// The migrations are written for one server; clusterStatements rewrites
// each of their statements for one node of the cluster.

// localSuffix names a table's shard-local half.
const localSuffix = "_local"

// shardKeys is the sharding key of each table weft creates. A table whose
// rows collapse by key (ReplacingMergeTree, AggregatingMergeTree) must be
// sharded by an expression of that key, so that a row and its later
// version meet on one shard; tables read by order share
// cityHash64(order_id), so an order's chain, progress and findings sit
// together (and joins on order_id could stay on each shard).
var shardKeys = map[string]string{
	"events":                  "cityHash64(order_id)",
	"order_state":             "cityHash64(order_id)", // fed by events_local on each shard
	"quarantine":              "cityHash64(topic, partition)",
	"findings":                "cityHash64(order_id)",
	"queue_health":            "cityHash64(group_id, topic, partition)",
	"order_progress":          "cityHash64(order_id)",
	"order_deadlines":         "cityHash64(order_id)",
	"detector_state":          "cityHash64(name)",
	"audit_leaves":            "cityHash64(topic, partition)", // one log on one shard
	"audit_checkpoints":       "cityHash64(origin)",
	"audit_actions":           "cityHash64(leaf_index)", // racing writers of one index meet on one shard
	"replay_jobs":             "cityHash64(job_id)",
	"replay_items":            "cityHash64(job_id)",
	"otel_traces":             "cityHash64(TraceId)",
	"otel_traces_trace_id_ts": "cityHash64(TraceId)", // fed by otel_traces_local on each shard
}

// clusterSettings are the session settings of every query and insert on a
// cluster.
var clusterSettings = map[string]any{
	// An insert returns once every shard has written its rows, so the
	// tap commits offsets only for rows that are stored; a shard that is
	// down fails the insert, which is retried whole (its deduplication
	// token travels to each shard).
	"distributed_foreground_insert": 1,
	// A subquery or join over a Distributed table inside a distributed
	// query runs once, on the node asked, and its result is sent to the
	// shards: right for every join, whatever the tables are sharded by.
	"distributed_product_mode": "global",
	// Per-order reads (WHERE order_id = ...) go to the order's shard alone.
	"optimize_skip_unused_shards": 1,
}

var (
	reCreateTable = regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)\s`)
	reCreateView  = regexp.MustCompile(`^CREATE MATERIALIZED VIEW IF NOT EXISTS \{db\}\.\w+\s`)
	reAlterTable  = regexp.MustCompile(`^ALTER TABLE \{db\}\.(\w+)\s+(ADD COLUMN|ADD INDEX|MODIFY SETTING)\s`)
	reTableRef    = regexp.MustCompile(`\{db\}\.(\w+)\b`)
	reAction      = regexp.MustCompile(`\b(ADD|DROP|MODIFY|MATERIALIZE|CLEAR|RENAME|UPDATE|DELETE)\s+(COLUMN|INDEX|SETTING|TTL|PROJECTION|WHERE)?`)
)

// insertSettings are the settings the insert connection sends with every
// query: clusterSettings on a cluster.
func (l login) insertSettings() []ch.Setting {
	if !l.cluster {
		return nil
	}
	var out []ch.Setting
	for k, v := range clusterSettings {
		out = append(out, ch.Setting{Key: k, Value: fmt.Sprint(v), Important: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// clusterStatements rewrites one migration statement, written for one
// server, into what it is on one node of cluster:
//
//   - CREATE TABLE T creates T_local, then T as Distributed over T_local;
//   - CREATE MATERIALIZED VIEW reads from and writes to local tables, so
//     each shard's view sees that shard's inserts;
//   - ALTER TABLE T ADD COLUMN alters T_local, then T (a Distributed table
//     has the columns but no indexes or storage settings);
//   - ALTER TABLE T ADD INDEX or MODIFY SETTING alters T_local alone.
//
// Anything else is an error: a new kind of statement needs a rule here
// (TestClusterStatementsCoverEveryMigration).
func clusterStatements(stmt, cluster string) ([]string, error) {
	switch {
	case reCreateTable.MatchString(stmt):
		t := reCreateTable.FindStringSubmatch(stmt)[1]
		key, ok := shardKeys[t]
		if !ok {
			return nil, fmt.Errorf("table %s has no sharding key for the cluster layout (chstore.shardKeys)", t)
		}
		local := strings.Replace(stmt, "{db}."+t, "{db}."+t+localSuffix, 1)
		dist := fmt.Sprintf("CREATE TABLE IF NOT EXISTS {db}.%s AS {db}.%s ENGINE = Distributed(%s, {db}, %s, %s)",
			t, t+localSuffix, cluster, t+localSuffix, key)
		return []string{local, dist}, nil
	case reCreateView.MatchString(stmt):
		return []string{reTableRef.ReplaceAllStringFunc(stmt, func(ref string) string {
			if t := strings.TrimPrefix(ref, "{db}."); shardKeys[t] != "" {
				return ref + localSuffix
			}
			return ref
		})}, nil
	case reAlterTable.MatchString(stmt):
		if n := len(reAction.FindAllString(stmt, -1)); n != 1 {
			return nil, fmt.Errorf("an ALTER of %d actions has no cluster-layout rule: write one action per statement", n)
		}
		m := reAlterTable.FindStringSubmatch(stmt)
		t, action := m[1], m[2]
		if _, ok := shardKeys[t]; !ok {
			return nil, fmt.Errorf("table %s has no sharding key for the cluster layout (chstore.shardKeys)", t)
		}
		local := strings.Replace(stmt, "{db}."+t, "{db}."+t+localSuffix, 1)
		if action == "ADD COLUMN" {
			return []string{local, stmt}, nil
		}
		return []string{local}, nil
	}
	first, _, _ := strings.Cut(stmt, "\n")
	return nil, fmt.Errorf("no cluster-layout rule for the statement %q (chstore.clusterStatements)", first)
}

// layout is how weft's tables are laid out in a database that has them.
type layout struct {
	Name string // the cluster the tables are distributed over; empty: one server
}

func (l layout) String() string {
	if l.Name == "" {
		return "on one server (a database cannot move to a cluster: migrate into a new database)"
	}
	return "distributed over cluster " + l.Name
}

// reDistributed reads the cluster of a Distributed table's engine_full.
var reDistributed = regexp.MustCompile(`^Distributed\('?(\w+)'?,`)

// storedLayout reads the layout of db's events table: nil when there is
// none yet.
func storedLayout(ctx context.Context, conn driver.Conn, db string) (*layout, error) {
	rows, err := conn.Query(ctx, "SELECT engine_full FROM system.tables WHERE database = ? AND name = 'events'", db)
	if err != nil {
		return nil, fmt.Errorf("read the layout of weft's tables: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var engine string
	if err := rows.Scan(&engine); err != nil {
		return nil, err
	}
	if m := reDistributed.FindStringSubmatch(engine); m != nil {
		return &layout{Name: m[1]}, nil
	}
	return &layout{}, nil
}
