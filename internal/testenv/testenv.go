// Package testenv gives integration tests the real servers `make test`
// starts: an Apache Kafka broker and the embedded ClickHouse. Under
// `go test -short` integration tests skip; otherwise a missing server fails
// the test, so nothing is skipped silently.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/weft-sh/weft/internal/chstore"
)

// Environment variables set by `make test` (scripts/with-servers.sh).
const (
	EnvKafka      = "WEFT_TEST_KAFKA"
	EnvClickHouse = "WEFT_TEST_CLICKHOUSE"
	// EnvClickHouseCluster holds the native addresses of the cluster of
	// embedded ClickHouse servers named ClusterName, one shard each.
	EnvClickHouseCluster = "WEFT_TEST_CLICKHOUSE_CLUSTER"
	// EnvLayout, set to "cluster", puts every test's ClickHouse on that
	// cluster: `make test` runs the store's, the engine's and the
	// dashboards' tests once on each layout (docs/clickhouse-cluster.md).
	EnvLayout = "WEFT_TEST_LAYOUT"
)

// ClusterName is the test cluster's name in its servers' remote_servers.
const ClusterName = "weft_test"

// OnCluster reports whether this run tests the cluster layout.
func OnCluster() bool { return os.Getenv(EnvLayout) == "cluster" }

// Integration skips under -short and otherwise returns nothing: call it first.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (needs real Kafka and ClickHouse); run `make test`")
	}
}

// Kafka returns the bootstrap address of the real test broker.
func Kafka(t testing.TB) []string {
	t.Helper()
	Integration(t)
	v := os.Getenv(EnvKafka)
	if v == "" {
		t.Fatalf("%s is not set: run `make test`, which starts a real Apache Kafka broker", EnvKafka)
	}
	return strings.Split(v, ",")
}

// ClickHouseAddr returns the native address of the real test ClickHouse:
// on the cluster layout, those of the cluster's shards, each of which
// answers for the whole cluster.
func ClickHouseAddr(t testing.TB) []string {
	t.Helper()
	Integration(t)
	env := EnvClickHouse
	if OnCluster() {
		env = EnvClickHouseCluster
	}
	v := os.Getenv(env)
	if v == "" {
		t.Fatalf("%s is not set: run `make test`, which starts the embedded ClickHouse servers", env)
	}
	return strings.Split(v, ",")
}

// ClickHouse returns a store config with a fresh database of its own,
// dropped when the test ends (kept when it failed, for a look): on the
// cluster layout, on the cluster.
func ClickHouse(t testing.TB) chstore.Config {
	t.Helper()
	if OnCluster() {
		return Cluster(t)
	}
	c := chstore.Default()
	c.Addr = ClickHouseAddr(t)
	return freshDatabase(t, c)
}

// Cluster returns a store config with a fresh database of its own on the
// test cluster (ClusterName), whatever the layout of the run, dropped from
// every node when the test ends (kept when it failed).
func Cluster(t testing.TB) chstore.Config {
	t.Helper()
	Integration(t)
	v := os.Getenv(EnvClickHouseCluster)
	if v == "" {
		t.Fatalf("%s is not set: run `make test`, which starts a cluster of embedded ClickHouse servers", EnvClickHouseCluster)
	}
	c := chstore.Default()
	c.Addr = strings.Split(v, ",")
	c.Cluster.Name = ClusterName
	return freshDatabase(t, c)
}

func freshDatabase(t testing.TB, c chstore.Config) chstore.Config {
	t.Helper()
	c.Database = "t_" + Name(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept ClickHouse database %s for inspection", c.Database)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if s, err := chstore.Open(ctx, c); err == nil {
			_ = s.DropDatabase(ctx)
			_ = s.Close()
		}
	})
	return c
}

// Store opens and migrates a fresh database, closed at the end of the test.
func Store(t testing.TB) *chstore.Store {
	t.Helper()
	c := ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := chstore.Open(ctx, c)
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// Name is a short unique identifier for topics, groups and databases.
func Name(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '_'
	}, t.Name())
	if len(base) > 40 {
		base = base[:40]
	}
	return base + "_" + hex.EncodeToString(b)
}

// Conn opens a connection of the test's own to the real test ClickHouse,
// closed when the test ends, to check what weft stored independently of
// the store's methods. Statements name their tables in full
// (Store.Table). On the cluster layout it has the settings weft's own
// connections have there, so an insert has reached every shard when it
// returns; a statement that changes rows in place goes through Mutate.
func Conn(t testing.TB) driver.Conn {
	t.Helper()
	c := chstore.Default()
	c.Addr = ClickHouseAddr(t)
	if OnCluster() {
		c.Cluster.Name = ClusterName
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := chstore.Dial(ctx, c)
	if err != nil {
		t.Fatalf("clickhouse: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
