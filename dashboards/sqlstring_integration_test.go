package dashboards

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/dashboards/internal/grafanasql"
	"github.com/weft-sh/weft/internal/testenv"
	"github.com/weft-sh/weft/queuehealth"
)

// TestSQLStringOnClickHouse: sqlString and sqlList, the one quoting of the
// dashboards' SQL (Grafana cannot bind parameters), give back every string
// as it was on the real ClickHouse — quotes, backslashes, escape sequences
// spelled out, control bytes, SQL and comments in the value — directly and
// after Grafana's interpolation (grafanasql) for the values without a $
// (Grafana would take $name for a variable, wherever it stands).
func TestSQLStringOnClickHouse(t *testing.T) {
	hostile := []string{
		``, `it's`, `''`, `\`, `\\`, `\'`, `'\`, `a\'b`, `ends with \`, `\n and \t spelled out`, `\0`, `\x41`,
		`'); DROP DATABASE weft; --`, `' OR 1=1 --`, `"double" and ` + "`back`", "new\nline", "tab\there", "cr\rhere",
		"nul\x00byte", "\xff\xfe not UTF-8", `é ✓ 日本`, `/* comment */`, `-- comment`, `{name:String}`, `?`, `%s %d`,
		queuehealth.DefaultDLQPattern, `$__timeFilter(ts)`, `${var}`,
	}
	db := clickhouse.OpenDB(&clickhouse.Options{Addr: testenv.ClickHouseAddr(t), Auth: clickhouse.Auth{Username: "default"}})
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	expand := func(sql string) string {
		t.Helper()
		out, err := grafanasql.Expand(sql, grafanasql.Variables{}, grafanasql.Query{From: time.Now().Add(-time.Hour), To: time.Now()})
		require.NoError(t, err)
		return out
	}
	for _, v := range hostile {
		queries := map[string]string{"direct": "SELECT " + sqlString(v)}
		if !strings.Contains(v, "$") || v == queuehealth.DefaultDLQPattern {
			queries["after Grafana"] = expand(queries["direct"])
		}
		for how, q := range queries {
			var got string
			require.NoError(t, db.QueryRowContext(ctx, q).Scan(&got), "%s: %s", how, q)
			require.Equal(t, v, got, "%s: %s", how, q)
		}
	}
	var got []string
	q := "SELECT " + sqlList(hostile)
	require.NoError(t, db.QueryRowContext(ctx, q).Scan(&got), q)
	require.Equal(t, hostile, got)
}
