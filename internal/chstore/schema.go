package chstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed migrations/*.sql
var migrations embed.FS

// node is one server weft's schema lives on: the store's own server, or one
// node of the cluster, over a connection of its own.
type node struct {
	addr string
	conn driver.Conn
	own  bool // the store's own connection: not closed with the node
}

func (n node) close() {
	if !n.own {
		_ = n.conn.Close()
	}
}

// nodes returns the servers the schema lives on: the store's own server,
// or every node of the cluster (Cluster.Nodes, or those system.clusters
// lists), each connected with the store's login.
func (s *Store) nodes(ctx context.Context) ([]node, error) {
	if !s.cluster.Enabled() {
		return []node{{addr: strings.Join(s.login.addr, ","), conn: s.conn, own: true}}, nil
	}
	addrs := s.cluster.Nodes
	if len(addrs) == 0 {
		var err error
		if addrs, err = s.clusterNodes(ctx); err != nil {
			return nil, err
		}
	}
	var out []node
	for _, a := range addrs {
		l := s.login
		l.addr = []string{a}
		conn, err := l.open(ctx)
		if err != nil {
			closeNodes(out)
			return nil, fmt.Errorf("cluster %s node %s: %w", s.cluster.Name, a, err)
		}
		out = append(out, node{addr: a, conn: conn})
	}
	return out, nil
}

func closeNodes(ns []node) {
	for _, n := range ns {
		n.close()
	}
}

// clusterNodes asks the store's server which nodes make up the cluster.
func (s *Store) clusterNodes(ctx context.Context) ([]string, error) {
	rows, err := s.conn.Query(ctx, `SELECT host_name, port FROM system.clusters WHERE cluster = ?
ORDER BY shard_num, replica_num`, s.cluster.Name)
	if err != nil {
		return nil, fmt.Errorf("read cluster %s from system.clusters: %w", s.cluster.Name, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var host string
		var port uint16
		if err := rows.Scan(&host, &port); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("%s:%d", host, port))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cluster %s is not in the remote_servers of %s (system.clusters lists no node of it)",
			s.cluster.Name, strings.Join(s.login.addr, ","))
	}
	return out, nil
}

// perNode runs f on every node the schema lives on, all at once, each
// over a connection of its own, and returns their results in the nodes'
// order and their errors, each naming its node.
func perNode[T any](ctx context.Context, s *Store, f func(node) (T, error)) ([]T, error) {
	ns, err := s.nodes(ctx)
	if err != nil {
		return nil, err
	}
	defer closeNodes(ns)
	out := make([]T, len(ns))
	errs := make([]error, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Go(func() {
			var err error
			out[i], err = f(n)
			if err != nil && s.cluster.Enabled() {
				err = fmt.Errorf("clickhouse node %s: %w", n.addr, err)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// onEachNode runs f on every node the schema lives on (perNode).
func (s *Store) onEachNode(ctx context.Context, f func(node) error) error {
	_, err := perNode(ctx, s, func(n node) (struct{}, error) { return struct{}{}, f(n) })
	return err
}

// Migrate creates the database and applies every embedded migration that
// has not been applied yet, in file-name order, on every node the schema
// lives on (the nodes at once). Each node records what it has applied in its own
// schema_migrations, so a run stopped half-way through a cluster resumes
// where it stopped. Every statement is idempotent (IF NOT EXISTS), so two
// runs racing do no harm, but on a cluster or with replicas prefer one
// `weft migrate` (Config.Migrate external).
func (s *Store) Migrate(ctx context.Context) error {
	return s.onEachNode(ctx, func(n node) error {
		applied, err := s.applied(ctx, n, true)
		if err != nil {
			return err
		}
		for _, m := range s.migrations(applied) {
			stmts, err := s.statements(m)
			if err != nil {
				return err
			}
			for i, stmt := range stmts {
				if err := n.conn.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("migration %s statement %d: %w", m.name, i+1, err)
				}
			}
			if err := n.conn.Exec(ctx, "INSERT INTO "+s.Table("schema_migrations")+" (name) VALUES (?)", m.name); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
		}
		return nil
	})
}

// PendingMigration is a migration a node has not applied.
type PendingMigration struct {
	Node string // the node's address
	Name string // the migration's file name
}

// Pending lists the migrations each node has not applied, creating
// nothing: empty when the schema is what this weft expects.
func (s *Store) Pending(ctx context.Context) ([]PendingMigration, error) {
	byNode, err := perNode(ctx, s, func(n node) ([]PendingMigration, error) {
		applied, err := s.applied(ctx, n, false)
		if err != nil {
			return nil, err
		}
		var out []PendingMigration
		for _, m := range s.migrations(applied) {
			out = append(out, PendingMigration{Node: n.addr, Name: m.name})
		}
		return out, nil
	})
	return slices.Concat(byNode...), err
}

// applied returns the migrations node n has applied. With create it first
// creates the database and schema_migrations (a table of each node's own,
// never distributed); without, a missing one means nothing is applied.
func (s *Store) applied(ctx context.Context, n node, create bool) (map[string]bool, error) {
	if create {
		if err := n.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+s.db); err != nil {
			return nil, fmt.Errorf("create database %s: %w", s.db, err)
		}
		if err := n.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.Table("schema_migrations")+` (
		name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
	) ENGINE = ReplacingMergeTree ORDER BY name`); err != nil {
			return nil, fmt.Errorf("create schema_migrations: %w", err)
		}
	} else if exists, err := s.tableExists(ctx, n, "schema_migrations"); err != nil || !exists {
		return map[string]bool{}, err
	}
	if err := s.checkShards(ctx, n, create); err != nil {
		return nil, err
	}
	applied := map[string]bool{}
	rows, err := n.conn.Query(ctx, "SELECT name FROM "+s.Table("schema_migrations"))
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		applied[name] = true
	}
	return applied, rows.Err()
}

// migration is one embedded migration file.
type migration struct {
	name string // file name, e.g. 001_events.sql
	body string
}

// migrations returns the embedded migrations not in applied, in file-name
// order.
func (s *Store) migrations(applied map[string]bool) []migration {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		panic(err) // a malformed pattern: a bug
	}
	sort.Strings(names)
	var out []migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		if applied[base] {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			panic(err) // embedded: cannot fail
		}
		out = append(out, migration{name: base, body: string(body)})
	}
	return out
}

// statements returns what applying m runs on one node: its statements as
// written for one server, or rewritten for the cluster layout.
func (s *Store) statements(m migration) ([]string, error) {
	var out []string
	for _, stmt := range splitStatements(m.body) {
		if s.cluster.Enabled() {
			cs, err := clusterStatements(stmt, s.cluster.Name)
			if err != nil {
				return nil, fmt.Errorf("migration %s: %w", m.name, err)
			}
			out = append(out, cs...)
		} else {
			out = append(out, stmt)
		}
	}
	for i := range out {
		out[i] = strings.ReplaceAll(out[i], "{db}", s.db)
	}
	return out, nil
}

// ErrSchemaPending is returned by CheckSchema when a migration is pending.
var ErrSchemaPending = errors.New("weft's ClickHouse schema is behind this weft")

// CheckSchema fails with ErrSchemaPending, naming the first pending
// migration and its node, unless every node has applied every migration.
func (s *Store) CheckSchema(ctx context.Context) error {
	p, err := s.Pending(ctx)
	if err != nil {
		return err
	}
	if len(p) > 0 {
		return fmt.Errorf("%w: %d migration(s) pending, the first %s on %s: run `weft migrate`", ErrSchemaPending, len(p), p[0].Name, p[0].Node)
	}
	return nil
}

// ErrShardsChanged is returned when the cluster has another number of
// shards than weft's tables were sharded over.
var ErrShardsChanged = errors.New("the cluster's shards changed")

// checkShards holds a cluster to the number of shards weft's tables were
// created over, which node n keeps in its schema_shards (a table of its
// own, never distributed): rows are placed by their key modulo the shards,
// and the tables that collapse rows by key (FINAL) need every version of
// a row on one shard, so a shard added or removed would split orders.
// With create it records the count on a node that has none.
func (s *Store) checkShards(ctx context.Context, n node, create bool) error {
	if !s.cluster.Enabled() {
		return nil
	}
	var now uint64
	if err := n.conn.QueryRow(ctx, "SELECT uniqExact(shard_num) FROM system.clusters WHERE cluster = ?",
		s.cluster.Name).Scan(&now); err != nil {
		return fmt.Errorf("read cluster %s from system.clusters: %w", s.cluster.Name, err)
	}
	if now == 0 {
		return fmt.Errorf("cluster %s is not in this node's remote_servers", s.cluster.Name)
	}
	tbl := s.Table("schema_shards")
	if create {
		if err := n.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+tbl+` (
		cluster String, shards UInt64, recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
	) ENGINE = ReplacingMergeTree ORDER BY cluster`); err != nil {
			return fmt.Errorf("create schema_shards: %w", err)
		}
	} else if exists, err := s.tableExists(ctx, n, "schema_shards"); err != nil || !exists {
		return err
	}
	var was []uint64
	rows, err := n.conn.Query(ctx, "SELECT shards FROM "+tbl+" FINAL WHERE cluster = ?", s.cluster.Name)
	if err != nil {
		return fmt.Errorf("read schema_shards: %w", err)
	}
	for rows.Next() {
		var v uint64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		was = append(was, v)
	}
	rows.Close()
	switch {
	case len(was) > 0 && was[0] != now:
		return fmt.Errorf("%w: cluster %s has %d shards, weft's tables in %s were sharded over %d; "+
			"adding or removing a shard would split orders between shards: keep %d, or migrate into a new database (docs/clickhouse-cluster.md)",
			ErrShardsChanged, s.cluster.Name, now, s.db, was[0], was[0])
	case len(was) == 0 && create:
		if err := n.conn.Exec(ctx, "INSERT INTO "+tbl+" (cluster, shards) VALUES (?, ?)", s.cluster.Name, now); err != nil {
			return fmt.Errorf("record the shards: %w", err)
		}
	}
	return nil
}

// tableExists reports whether node n has the table name in the store's
// database.
func (s *Store) tableExists(ctx context.Context, n node, name string) (bool, error) {
	var exists uint8
	if err := n.conn.QueryRow(ctx, "SELECT count() > 0 FROM system.tables WHERE database = ? AND name = ?",
		s.db, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look for %s: %w", name, err)
	}
	return exists == 1, nil
}
