package grafanasql

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	from = time.Date(2014, 11, 12, 11, 45, 26, 371e6, time.UTC)
	to   = time.Date(2015, 11, 12, 11, 45, 26, 371e6, time.UTC)
)

// The expected strings are what the plugin's backend produces
// (pkg/macros/macros.go and sqlutil.Interpolate).
func TestInterpolateMacros(t *testing.T) {
	tests := []struct {
		name, sql, want string
		interval        time.Duration
	}{
		{"fromTime", "SELECT 1 WHERE t > $__fromTime", "SELECT 1 WHERE t > toDateTime(1415792726)", 0},
		{"toTime", "SELECT 1 WHERE t < $__toTime", "SELECT 1 WHERE t < toDateTime(1447328726)", 0},
		{"fromTime_ms", "x > $__fromTime_ms", "x > fromUnixTimestamp64Milli(1415792726371)", 0},
		{"toTime_ms", "x < $__toTime_ms", "x < fromUnixTimestamp64Milli(1447328726371)", 0},
		{"timeFilter", "WHERE $__timeFilter(ts)", "WHERE ts >= toDateTime(1415792726) AND ts <= toDateTime(1447328726)", 0},
		{"timeFilter_ms", "WHERE $__timeFilter_ms(ts)",
			"WHERE ts >= fromUnixTimestamp64Milli(1415792726371) AND ts <= fromUnixTimestamp64Milli(1447328726371)", 0},
		{"dateFilter", "WHERE $__dateFilter(d)", "WHERE d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')", 0},
		{"dt", "WHERE $__dt(d, t)",
			"WHERE (d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')) AND (t >= toDateTime(1415792726) AND t <= toDateTime(1447328726))", 0},
		{"timeInterval", "SELECT $__timeInterval(ts) AS time", "SELECT toStartOfInterval(toDateTime(ts), INTERVAL 20 second) AS time", 20 * time.Second},
		{"timeInterval below 1s", "SELECT $__timeInterval(ts)", "SELECT toStartOfInterval(toDateTime(ts), INTERVAL 1 second)", 0},
		{"timeInterval_ms", "SELECT $__timeInterval_ms(ts)", "SELECT toStartOfInterval(toDateTime64(ts, 3), INTERVAL 1500 millisecond)", 1500 * time.Millisecond},
		{"interval_s", "toStartOfInterval(t, INTERVAL $__interval_s second)", "toStartOfInterval(t, INTERVAL 60 second)", time.Minute},
		{"sqlutil default timeFrom", "WHERE $__timeFrom(t)", "WHERE t >= '2014-11-12T11:45:26Z'", 0},
		{"every occurrence", "$__fromTime, $__fromTime)", "toDateTime(1415792726), toDateTime(1415792726))", 0},
		// sqlutil's scanner: an argument-less macro followed by a '(' before
		// any ')' takes everything up to the matching ')' as its "arguments".
		{"argument-less macro swallows a later call", "SELECT $__interval_s AS s, count(x) FROM t", "SELECT 60 FROM t", time.Minute},
		{"unknown macros pass through", "SELECT $__nope(x)", "SELECT $__nope(x)", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Interpolate(Query{RawSQL: tt.sql, From: from, To: to, Interval: tt.interval}, nil)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestInterpolateErrors(t *testing.T) {
	for _, sql := range []string{"WHERE $__timeFilter(a, b)", "WHERE $__timeFilter(a", "$__dt(a)"} {
		_, err := Interpolate(Query{RawSQL: sql, From: from, To: to}, nil)
		assert.Error(t, err, sql)
	}
}

// sqlutil expands macro names in Go map order, which is random: a query is
// only safe when every order gives the same SQL.
func TestInterpolateOrder(t *testing.T) {
	expand := func(sql string, order []string) string {
		got, err := Interpolate(Query{RawSQL: sql, From: from, To: to, Interval: time.Minute}, order)
		require.NoError(t, err)
		return got
	}
	names := MacroNames()
	rev := slices.Clone(names)
	slices.Reverse(rev)

	safe := "SELECT $__timeInterval(ts) AS time FROM t WHERE $__timeFilter(ts) AND (ts < $__toTime) AND (x > $__fromTime_ms)"
	assert.Equal(t, expand(safe, names), expand(safe, rev))

	// $__toTime followed by a call: expanded before fromTime_ms it is fine,
	// after it, it swallows fromUnixTimestamp64Milli(…).
	unsafe := "SELECT 1 FROM t WHERE ts < $__toTime AND x > $__fromTime_ms"
	assert.NotEqual(t, expand(unsafe, names), expand(unsafe, rev))
}

// The cases follow the plugin's frontend (CHDatasource.applyConditionalAll).
func TestApplyConditionalAll(t *testing.T) {
	vars := Variables{
		"all":   {Current: []string{AllValue}, Multi: true, Options: []string{"a", "b"}},
		"empty": {Current: []string{""}},
		"one":   {Current: []string{"a"}, Multi: true, Options: []string{"a", "b"}},
	}
	tests := []struct{ name, in, want string }{
		{"all selected", "WHERE $__conditionalAll(c IN ($all), $all)", "WHERE 1=1"},
		{"braced variable", "WHERE $__conditionalAll(c IN (${all:sqlstring}), ${all})", "WHERE 1=1"},
		{"empty value", "WHERE $__conditionalAll(c = '$empty', $empty)", "WHERE 1=1"},
		{"one selected keeps the condition", "WHERE $__conditionalAll(c IN ($one), $one)", "WHERE c IN ($one)"},
		{"unknown variable keeps the condition", "WHERE $__conditionalAll(c IN ($x), $x)", "WHERE c IN ($x)"},
		{"formatted variable is not recognised", "WHERE $__conditionalAll(c IN ($all), ${all:sqlstring})", "WHERE c IN ($all)"},
		{"several", "$__conditionalAll(a IN ($all), $all) AND $__conditionalAll(b IN (f(1, 2)), $one)", "1=1 AND b IN (f(1, 2))"},
		{"wrong arity left alone", "$__conditionalAll(a, b, $all)", "$__conditionalAll(a, b, $all)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ApplyConditionalAll(tt.in, vars))
		})
	}
}

func TestReplaceVariables(t *testing.T) {
	vars := Variables{
		"all":   {Current: []string{AllValue}, Multi: true, Options: []string{"a", "b'c"}},
		"multi": {Current: []string{"x", "y"}, Multi: true},
		"text":  {Current: []string{`o'1"`}},
	}
	tests := []struct{ name, in, want string }{
		{"plugin format: array", "IN ($multi)", "IN ('x','y')"},
		{"plugin format: all is every option, unescaped", "IN ($all)", "IN ('a','b'c')"},
		{"plugin format: single value raw", "= '$text'", `= 'o'1"'`},
		{"sqlstring", "= ${text:sqlstring}", `= 'o''1\"'`},
		{"sqlstring array", "IN (${all:sqlstring})", "IN ('a','b''c')"},
		{"brackets", "[[multi]]", "'x','y'"},
		{"csv", "${multi:csv}", "x,y"},
		{"macros pass through", "$__timeFilter(t) AND $__interval_s", "$__timeFilter(t) AND $__interval_s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReplaceVariables(tt.in, vars)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := ReplaceVariables("${text:percentencode}", vars)
	assert.Error(t, err)
}

func TestExpand(t *testing.T) {
	vars := Variables{"step": {Current: []string{AllValue}, Multi: true, Options: []string{"s1"}}}
	got, err := Expand("SELECT $__timeInterval(t) AS time FROM e WHERE $__timeFilter(t) AND $__conditionalAll(step IN (${step:sqlstring}), $step)",
		vars, Query{From: from, To: to, Interval: 30 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, "SELECT toStartOfInterval(toDateTime(t), INTERVAL 30 second) AS time FROM e WHERE t >= toDateTime(1415792726) AND t <= toDateTime(1447328726) AND 1=1", got)
}
