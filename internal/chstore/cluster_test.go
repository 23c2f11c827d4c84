package chstore_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/chstore"
)

// TestClusterStatementsCoverEveryMigration: every statement of every
// migration has a cluster-layout rule, every table it creates gets a local
// table and a Distributed one sharded by its key, and no statement of the
// result names a table that is neither local nor the Distributed table of
// one that exists.
func TestClusterStatementsCoverEveryMigration(t *testing.T) {
	names, stmts := chstore.MigrationStatements()
	require.NotEmpty(t, stmts)
	created := map[string]bool{}
	createTable := regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)`)
	for i, stmt := range stmts {
		out, err := chstore.ClusterStatements(stmt, "c1")
		require.NoError(t, err, "%s: %s", names[i], stmt)
		require.NotEmpty(t, out)
		if m := createTable.FindStringSubmatch(stmt); m != nil {
			tbl := m[1]
			require.Len(t, out, 2, names[i])
			assert.True(t, strings.HasPrefix(out[0], "CREATE TABLE IF NOT EXISTS {db}."+tbl+"_local"), out[0])
			assert.Regexp(t, `^CREATE TABLE IF NOT EXISTS \{db\}\.`+tbl+` AS \{db\}\.`+tbl+`_local ENGINE = Distributed\(c1, \{db\}, `+tbl+`_local, \S`, out[1])
			created[tbl] = true
			continue
		}
		if strings.HasPrefix(stmt, "CREATE MATERIALIZED VIEW") {
			// A view reads and fills the shard's own tables.
			for _, ref := range regexp.MustCompile(`\{db\}\.(\w+)`).FindAllStringSubmatch(out[0], -1)[1:] {
				assert.True(t, strings.HasSuffix(ref[1], "_local"), "%s: the view names %s", names[i], ref[1])
				assert.True(t, created[strings.TrimSuffix(ref[1], "_local")], "%s: %s", names[i], ref[1])
			}
			continue
		}
		// ALTER: the local table first; a column goes to the Distributed
		// table too, an index or a storage setting does not.
		require.True(t, strings.HasPrefix(stmt, "ALTER TABLE"), stmt)
		assert.Regexp(t, `^ALTER TABLE \{db\}\.\w+_local\s`, out[0])
		if strings.Contains(stmt, "ADD COLUMN") {
			require.Len(t, out, 2)
			assert.Equal(t, stmt, out[1])
		} else {
			assert.Len(t, out, 1)
		}
	}
	assert.True(t, created["events"] && created["findings"] && created["otel_traces"])
}

// TestClusterStatementsRefuseTheUnknown: a statement of a kind without a
// rule, a table without a sharding key, or an ALTER of several actions is an
// error, not a statement run as written on each node.
func TestClusterStatementsRefuseTheUnknown(t *testing.T) {
	for _, stmt := range []string{
		"CREATE TABLE IF NOT EXISTS {db}.new_table (a String) ENGINE = MergeTree ORDER BY a",
		"ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS a String, ADD INDEX IF NOT EXISTS i a TYPE minmax",
		"ALTER TABLE {db}.events DROP COLUMN a",
		"DROP TABLE {db}.events",
		"INSERT INTO {db}.events SELECT 1",
	} {
		_, err := chstore.ClusterStatements(stmt, "c1")
		assert.Error(t, err, stmt)
	}
}
