package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestMigrateCommand: against a database weft never touched, with
// clickhouse.migrate external, `weft migrate --check` exits 3 and weft run
// (and a reading command) refuse to start, creating nothing; `weft migrate`
// applies every embedded migration once and says the schema is current;
// afterwards --check passes and weft run gets past the schema (to Kafka,
// which the test leaves unreachable).
func TestMigrateCommand(t *testing.T) {
	ch := testenv.ClickHouse(t)
	conn := testenv.Conn(t)
	tables := func() []string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? ORDER BY name", ch.Database)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var n string
			require.NoError(t, rows.Scan(&n))
			out = append(out, n)
		}
		require.NoError(t, rows.Err())
		return out
	}
	embedded, err := filepath.Glob(filepath.Join("..", "..", "internal", "chstore", "migrations", "*.sql"))
	require.NoError(t, err)
	require.NotEmpty(t, embedded)
	path := writeFile(t, fmt.Sprintf("http:\n  listen: 127.0.0.1:0\nkafka:\n  brokers: [127.0.0.1:1]\n  dial_timeout: 1s\n"+
		"clickhouse:\n  addr: [%s]\n  database: %s\n  migrate: external\n  cluster:\n    name: %q\n",
		strings.Join(ch.Addr, ", "), ch.Database, ch.Cluster.Name))
	// nodeLines checks the per-node lines of out (one on a single server,
	// one per node on the cluster layout) and returns the rest.
	nodeLines := func(out, verb string) []string {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		n := 0
		for ; n < len(lines) && strings.HasPrefix(lines[n], "clickhouse "); n++ {
			assert.Contains(t, lines[n], fmt.Sprintf(": %s %d migration(s): 001_", verb, len(embedded)))
		}
		if ch.Cluster.Name == "" {
			assert.Equal(t, 1, n, out)
		} else {
			assert.GreaterOrEqual(t, n, 2, out)
		}
		return lines[n:]
	}

	out, err := runCmd(t, "migrate", "--config", path, "--check")
	var ce codeError
	require.ErrorAs(t, err, &ce, out)
	assert.Equal(t, exitSchemaPending, ce.code)
	assert.ErrorIs(t, err, chstore.ErrSchemaPending)
	assert.Contains(t, err.Error(), "run `weft migrate`")
	assert.Empty(t, nodeLines(out, "pending"), out)
	assert.Empty(t, tables(), "--check creates nothing")

	code, stderr := runMain(t, nil, "run", "--config", path)
	assert.Equal(t, 1, code, stderr)
	last := lastLine(stderr)
	assert.True(t, strings.HasPrefix(last, "weft: clickhouse.migrate is external: weft's ClickHouse schema is behind this weft: "), last)
	assert.Contains(t, last, "run `weft migrate`")
	assert.NotContains(t, stderr, "kafka", "nothing started before the schema check")
	code, stderr = runMain(t, nil, "stuck", "--config", path)
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, lastLine(stderr), "clickhouse.migrate is external")
	assert.Empty(t, tables(), "with migrate: external neither weft run nor a reading command creates a table")

	out, err = runCmd(t, "migrate", "--config", path)
	require.NoError(t, err, out)
	assert.Equal(t, []string{fmt.Sprintf("database %s: schema current on every node", ch.Database)}, nodeLines(out, "applied"))
	assert.Contains(t, tables(), "schema_migrations")
	assert.Contains(t, tables(), "events")

	out, err = runCmd(t, "migrate", "--config", path, "--check", "-o", "json")
	require.NoError(t, err, out)
	var rep MigrateReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Equal(t, MigrateReport{Database: ch.Database, Applied: []NodeMigrations{}, Pending: []NodeMigrations{}}, rep)
	out, err = runCmd(t, "migrate", "--config", path)
	require.NoError(t, err, out)
	assert.Equal(t, fmt.Sprintf("database %s: schema current on every node, nothing to apply\n", ch.Database), out)

	code, stderr = runMain(t, nil, "run", "--config", path)
	assert.Equal(t, 1, code, stderr)
	assert.True(t, strings.HasPrefix(lastLine(stderr), "weft: kafka unreachable"), "past the schema check: %s", stderr)
}

// TestMigrateUnreachableIsOneLine: nothing listens on the address; --check
// exits 1 too, not 3 (unknown is not pending).
func TestMigrateUnreachableIsOneLine(t *testing.T) {
	for _, args := range [][]string{{"migrate"}, {"migrate", "--check"}} {
		code, stderr := runMain(t, []string{"WEFT_CLICKHOUSE_DIAL_TIMEOUT=2s"}, append(args, "--clickhouse", "127.0.0.1:1")...)
		assert.Equal(t, 1, code, stderr)
		assert.True(t, strings.HasPrefix(stderr, "weft: clickhouse unreachable: 127.0.0.1:1 did not answer"), stderr)
		assert.Equal(t, 1, len(strings.Split(strings.TrimSpace(stderr), "\n")), stderr)
	}
}
