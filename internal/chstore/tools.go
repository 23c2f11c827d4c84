package chstore

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// This file is what weft's test-data and benchmark tools get from the store
// besides its typed methods: the scale generator (internal/scalegen), the
// ingest benchmark (internal/benchkit) and the test environment
// (internal/testenv). Their statements are about their own tables, generated
// histories, ClickHouse's system tables or the Kafka table engine, not about
// what weft stores, so they keep them in a store.go of their own and run them
// over a connection of their own (Dial). weft's product components never
// get a connection: they use Store's typed methods.

// Dial opens a connection to the server c names, with the login, TLS,
// compression and settings Open uses, and pings it. It is for weft's
// test-data and benchmark tools only; product components use Store's typed
// methods. The connection is not bound to c.Database: statements name their
// tables in full, database names checked with CheckIdentifier, and bind
// every value.
func Dial(ctx context.Context, c Config) (driver.Conn, error) {
	l, err := c.login()
	if err != nil {
		return nil, err
	}
	return l.open(ctx)
}

// CheckIdentifier fails unless name can be written into a statement as a
// database or table name as it is: [A-Za-z_][A-Za-z0-9_]*, the pattern
// Config.Validate holds Database to. Names cannot be bound like values, so
// a tool checks them instead of quoting them.
func CheckIdentifier(name string) error {
	if !identifier.MatchString(name) {
		return fmt.Errorf("%q is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", name)
	}
	return nil
}

// DropDatabase drops the store's database and everything in it (ClickHouse
// frees the disk in the background). It is for tests and benchmarks, which
// each make a database of their own; weft never drops its database.
func (s *Store) DropDatabase(ctx context.Context) error {
	if err := CheckIdentifier(s.db); err != nil {
		return fmt.Errorf("drop database: %w", err)
	}
	return s.onEachNode(ctx, func(n node) error {
		if err := n.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+s.db); err != nil {
			return fmt.Errorf("drop database %s: %w", s.db, err)
		}
		return nil
	})
}
