// Package chstore owns weft's ClickHouse connection, its schema migrations,
// the batch inserts of events and quarantined records, and the statements of
// the consistency engine (one file per table or area: findings, progress,
// detector state, the stuck-orders query, reads of events), as typed methods
// with bound parameters.
package chstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/ch-go"
	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ErrUnreachable marks a ClickHouse server that did not answer.
var ErrUnreachable = errors.New("clickhouse unreachable")

// Store is a connection to ClickHouse bound to weft's database.
type Store struct {
	conn driver.Conn
	db   string
	// ins is the insert connection of the batch inserts; events and leaves
	// are the columns they fill.
	ins    *insertConn
	events *eventWriter
	leaves *leafWriter
	// login reaches the servers; the schema's migrations and mutations
	// also open connections of their own to each node of cluster.
	login   login
	cluster Cluster
}

// login is how the store's two connections (clickhouse-go's pool for
// queries, the insert connection) reach the server, resolved once from
// Config.
type login struct {
	addr           []string
	user, password string
	tls            *tls.Config
	dial           time.Duration
	compression    string // Config.compression()
	// cluster makes every query and insert run with clusterSettings.
	cluster bool
}

func (c Config) login() (login, error) {
	tlsCfg, err := c.TLS.Build()
	if err != nil {
		return login{}, fmt.Errorf("clickhouse tls: %w", err)
	}
	l := login{addr: c.Addr, user: c.Username, password: c.Password, tls: tlsCfg, dial: c.DialTimeout,
		compression: c.compression(), cluster: c.Cluster.Enabled()}
	if l.user == "" {
		l.user = "default"
	}
	if l.dial <= 0 {
		l.dial = 10 * time.Second
	}
	return l, nil
}

// compressions maps Config.Compression, resolved, to the methods of the
// two clients: clickhouse-go's pool and the ch-go insert connection.
var compressions = map[string]struct {
	query  clickhouse.CompressionMethod
	insert ch.Compression
}{
	CompressionLZ4:  {clickhouse.CompressionLZ4, ch.CompressionLZ4},
	CompressionZSTD: {clickhouse.CompressionZSTD, ch.CompressionZSTD},
	CompressionNone: {clickhouse.CompressionNone, ch.CompressionDisabled},
}

// Open connects and pings. It does not create anything; call Migrate for
// that. The store follows the layout weft's tables already have: a
// database whose tables are Distributed is used as a cluster even when c
// names none (so `weft stuck --clickhouse host:port` reads one), and a
// layout other than c's is an error naming the key.
func Open(ctx context.Context, c Config) (*Store, error) {
	l, err := c.login()
	if err != nil {
		return nil, err
	}
	conn, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	db := c.Database
	if db == "" {
		db = "weft"
	}
	stored, err := storedLayout(ctx, conn, db)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	switch {
	case stored == nil, stored.Name == c.Cluster.Name:
	case c.Cluster.Name == "":
		// Distributed tables, no cluster configured: reconnect with the
		// cluster's settings.
		_ = conn.Close()
		c.Cluster.Name = stored.Name
		return Open(ctx, c)
	default:
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse.cluster.name is %q, but weft's tables in database %s are %s", c.Cluster.Name, db, stored)
	}
	return &Store{conn: conn, db: db, ins: newInsertConn(l), events: newEventWriter(), leaves: newLeafWriter(),
		login: l, cluster: c.Cluster}, nil
}

// open connects clickhouse-go's pool and pings the server.
func (l login) open(ctx context.Context) (driver.Conn, error) {
	settings := clickhouse.Settings{"max_execution_time": 120}
	if l.cluster {
		for k, v := range clusterSettings {
			settings[k] = v
		}
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:         l.addr,
		Auth:         clickhouse.Auth{Username: l.user, Password: l.password},
		TLS:          l.tls,
		DialTimeout:  l.dial,
		Compression:  &clickhouse.Compression{Method: compressions[l.compression].query},
		Settings:     settings,
		MaxOpenConns: 8,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse open: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, l.dial)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("%w: %s did not answer: %v", ErrUnreachable, strings.Join(l.addr, ","), err)
	}
	return conn, nil
}

// Ping checks that ClickHouse answers, for readiness probes: on a
// cluster, every shard (through the server the store is connected to), so
// a shard that is down shows before an insert fails on it.
func (s *Store) Ping(ctx context.Context) error {
	if !s.cluster.Enabled() {
		return s.conn.Ping(ctx)
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM cluster(?, system.one)", s.cluster.Name).Scan(&n); err != nil {
		return fmt.Errorf("cluster %s: %w", s.cluster.Name, err)
	}
	return nil
}

// Table returns the qualified name of one of weft's tables.
func (s *Store) Table(name string) string { return s.db + "." + name }

// shardTable is the table a node keeps its own rows of name in: name
// itself, or name_local on a cluster. Only statements a Distributed table
// does not take (mutations) name it.
func (s *Store) shardTable(name string) string {
	if s.cluster.Enabled() {
		return s.Table(name + localSuffix)
	}
	return s.Table(name)
}

// msParam is a DateTime64(3) query parameter given as Unix milliseconds:
// clickhouse-go binds a time.Time to whole seconds.
const msParam = "fromUnixTimestamp64Milli(?, 'UTC')"

// Close closes the connection.
func (s *Store) Close() error { return errors.Join(s.ins.close(), s.conn.Close()) }

// splitStatements splits a migration file on semicolons that end a line,
// dropping comment-only and empty statements.
func splitStatements(sql string) []string {
	var out []string
	for _, part := range strings.Split(sql, ";\n") {
		var kept []string
		for _, line := range strings.Split(part, "\n") {
			if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "--") {
				continue
			}
			kept = append(kept, line)
		}
		if stmt := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(strings.Join(kept, "\n")), ";")); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}
