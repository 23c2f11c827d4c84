package scalegen

import (
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/consistency"
)

// The generator's waits stay under the built-in workflows' SLAs, with margin:
// otherwise orders merely in flight would count as stuck.
func TestDwellUnderSLA(t *testing.T) {
	ts, err := eventTypes(consistency.Builtin())
	require.NoError(t, err)
	require.Len(t, ts, int(cOrderCancelled))
	for i, et := range ts {
		require.Equal(t, uint8(i+1), et.code)
	}
	too := []eventType{{code: cFulfillmentStarted, name: "FulfillmentStarted", dwellHi: 30 * time.Minute, sla: 30 * time.Minute}}
	require.Error(t, checkDwell(too))
}

func TestInsertSQLRenders(t *testing.T) {
	g, err := newGenerator(Workload{Orders: 10}, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))
	require.NoError(t, err)
	st, err := g.insertSQL("db", g.mainRange(0, 10), map[string]int64{"commerce.orders/3": 7}, false)
	require.NoError(t, err)
	q := st.sql
	for _, want := range []string{"INSERT INTO db.events", "numbers(0, 10)", "{offset_base:Map(String, Int64)}", "row_number() OVER"} {
		require.Contains(t, q, want)
	}
	require.NotContains(t, q, "<no value>")
	// The offsets already stored are bound, like every name, not quoted into the SQL.
	require.Contains(t, st.args, clickhouse.Named("offset_base", map[string]int64{"commerce.orders/3": 7}))
	require.NotContains(t, q, "'commerce.")
	for _, a := range st.args {
		require.Contains(t, q, "{"+a.(driver.NamedValue).Name+":", "only the parameters the SQL names are bound")
	}
	s, err := g.ordersSQL(g.sampleRange([]int64{3, 5}))
	require.NoError(t, err)
	require.True(t, strings.Contains(s.sql, "arrayJoin([3, 5])"))
}

func TestDatabaseName(t *testing.T) {
	require.Equal(t, "weft_scale_n10000000_d30_s1_v1", Workload{Orders: 10_000_000}.Database())
	require.Error(t, Workload{}.Validate())
}
