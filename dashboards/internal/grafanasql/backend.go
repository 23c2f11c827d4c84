package grafanasql

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Query is what the plugin's backend knows about a query when it expands
// macros (the fields of sqlutil.Query the macros read).
type Query struct {
	RawSQL string
	// From and To are the dashboard's time range.
	From, To time.Time
	// Interval is the request's interval (Grafana derives it from the time
	// range and the panel's width).
	Interval time.Duration
	// Table and Column feed sqlutil's $__table and $__column.
	Table, Column string
}

// ErrBadArgumentCount is sqlutil.ErrorBadArgumentCount.
var ErrBadArgumentCount = errors.New("unexpected number of arguments")

type macroFunc func(q *Query, args []string) (string, error)

func toDate(t time.Time) string     { return fmt.Sprintf("toDate('%s')", t.Format("2006-01-02")) }
func toDateTime(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
func toDateTime64(t time.Time) string {
	return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", t.UnixMilli())
}

func oneArg(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: expected 1 argument, received %d", ErrBadArgumentCount, len(args))
	}
	return nil
}

// clickhouseMacros are the plugin's (pkg/macros/macros.go).
var clickhouseMacros = map[string]macroFunc{
	"fromTime":    func(q *Query, _ []string) (string, error) { return toDateTime(q.From), nil },
	"toTime":      func(q *Query, _ []string) (string, error) { return toDateTime(q.To), nil },
	"fromTime_ms": func(q *Query, _ []string) (string, error) { return toDateTime64(q.From), nil },
	"toTime_ms":   func(q *Query, _ []string) (string, error) { return toDateTime64(q.To), nil },
	"timeFilter": func(q *Query, a []string) (string, error) {
		if err := oneArg(a); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s >= %s AND %s <= %s", a[0], toDateTime(q.From), a[0], toDateTime(q.To)), nil
	},
	"timeFilter_ms": func(q *Query, a []string) (string, error) {
		if err := oneArg(a); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s >= %s AND %s <= %s", a[0], toDateTime64(q.From), a[0], toDateTime64(q.To)), nil
	},
	"dateFilter": func(q *Query, a []string) (string, error) {
		if err := oneArg(a); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s >= %s AND %s <= %s", a[0], toDate(q.From), a[0], toDate(q.To)), nil
	},
	"dateTimeFilter": dateTimeFilter,
	"dt":             dateTimeFilter,
	"timeInterval": func(q *Query, a []string) (string, error) {
		if err := oneArg(a); err != nil {
			return "", err
		}
		s := math.Max(q.Interval.Seconds(), 1)
		return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", a[0], int(s)), nil
	},
	"timeInterval_ms": func(q *Query, a []string) (string, error) {
		if err := oneArg(a); err != nil {
			return "", err
		}
		ms := math.Max(float64(q.Interval.Milliseconds()), 1)
		return fmt.Sprintf("toStartOfInterval(toDateTime64(%s, 3), INTERVAL %d millisecond)", a[0], int(ms)), nil
	},
	"interval_s": func(q *Query, _ []string) (string, error) {
		return fmt.Sprintf("%d", int(math.Max(q.Interval.Seconds(), 1))), nil
	},
}

func dateTimeFilter(q *Query, a []string) (string, error) {
	if len(a) != 2 {
		return "", fmt.Errorf("%w: expected 2 arguments, received %d", ErrBadArgumentCount, len(a))
	}
	return fmt.Sprintf("(%s >= %s AND %s <= %s) AND (%s >= %s AND %s <= %s)",
		a[0], toDate(q.From), a[0], toDate(q.To), a[1], toDateTime(q.From), a[1], toDateTime(q.To)), nil
}

// sqlutilDefaults are grafana-plugin-sdk-go's DefaultMacros that the plugin
// does not override.
var sqlutilDefaults = map[string]macroFunc{
	"timeFrom": func(q *Query, a []string) (string, error) {
		if err := oneArg(a); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s >= '%s'", a[0], q.From.UTC().Format(time.RFC3339)), nil
	},
	"timeTo": func(q *Query, a []string) (string, error) {
		if err := oneArg(a); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s <= '%s'", a[0], q.To.UTC().Format(time.RFC3339)), nil
	},
	"timeGroup": func(_ *Query, a []string) (string, error) {
		if len(a) != 2 {
			return "", fmt.Errorf("%w: expected 1 argument, received %d", ErrBadArgumentCount, len(a))
		}
		parts := map[string][]string{
			"minute": {"minute", "hour", "day", "month", "year"}, "hour": {"hour", "day", "month", "year"},
			"day": {"day", "month", "year"}, "month": {"month", "year"}, "year": {"year"},
		}[a[1]]
		out := make([]string, len(parts))
		for i, p := range parts {
			out[i] = fmt.Sprintf("datepart(%s, %s)", p, a[0])
		}
		return strings.Join(out, ","), nil
	},
	"table":  func(q *Query, _ []string) (string, error) { return q.Table, nil },
	"column": func(q *Query, _ []string) (string, error) { return q.Column, nil },
}

// MacroNames lists every macro the backend expands, sorted.
func MacroNames() []string {
	var names []string
	for n := range clickhouseMacros {
		names = append(names, n)
	}
	for n := range sqlutilDefaults {
		if _, ok := clickhouseMacros[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

func macroByName(name string) macroFunc {
	if f, ok := clickhouseMacros[name]; ok {
		return f
	}
	return sqlutilDefaults[name]
}

// Interpolate expands the backend macros as sqlutil.Interpolate does, one
// macro name at a time in the given order (sqlutil ranges over a Go map, so
// the order is random in Grafana: a query must expand the same in every
// order, which tests check by passing different orders). A nil order
// means MacroNames().
func Interpolate(q Query, order []string) (string, error) {
	if order == nil {
		order = MacroNames()
	}
	raw := q.RawSQL
	for _, name := range order {
		macro := macroByName(name)
		if macro == nil {
			return raw, fmt.Errorf("unknown macro %q", name)
		}
		matches, err := macroMatches(raw, name)
		if err != nil {
			return raw, err
		}
		for _, m := range matches {
			var args []string
			if len(m) > 1 {
				for _, a := range strings.Split(m[1], ",") {
					args = append(args, strings.TrimSpace(a))
				}
			}
			qq := q
			qq.RawSQL = raw
			res, err := macro(&qq, args)
			if err != nil {
				return raw, fmt.Errorf("$__%s: %w", name, err)
			}
			raw = strings.ReplaceAll(raw, m[0], res)
		}
	}
	return raw, nil
}

// macroMatches is sqlutil's getMacroMatches, unchanged in behaviour: after
// the macro's name it scans for the first '(' anywhere later in the query
// and takes everything up to its matching ')' as the arguments, unless a
// ')' comes first. So a macro without arguments must be followed by a ')'
// before any '(' (`INTERVAL $__interval_s second)`), or it swallows the
// text up to the next parenthesis.
func macroMatches(input, name string) ([][]string, error) {
	rgx, err := regexp.Compile(fmt.Sprintf(`\$__%s\b`, name))
	if err != nil {
		return nil, err
	}
	matched := rgx.FindAllStringIndex(input, -1)
	var out [][]string
	for _, loc := range matched {
		macroEnd, argStart := 0, 0
		forceBreak := false
		macroStart := loc[0]
		inputCopy := input[macroStart:]
		depth := 0
		for idx, r := range inputCopy {
			if depth == 0 && macroEnd > 0 || forceBreak {
				break
			}
			switch r {
			case '(':
				depth++
				if argStart == 0 {
					argStart = idx + 1
				}
			case ')':
				if depth == 0 {
					macroEnd = 0
					forceBreak = true
					break
				}
				depth--
				macroEnd = idx + 1
			}
		}
		if macroEnd == 0 {
			macroEnd = loc[1] - macroStart
		}
		m := []string{inputCopy[:macroEnd]}
		args := ""
		if argStart > 0 {
			if argStart > macroEnd-1 {
				// sqlutil panics here (slice bounds); report it instead.
				return nil, fmt.Errorf("$__%s: unbalanced parentheses", name)
			}
			args = inputCopy[argStart : macroEnd-1]
		}
		out = append(out, append(m, args))
	}
	return out, nil
}

// Expand runs the whole pipeline: the frontend's conditional-all and
// variable replacement, then the backend's macros.
func Expand(raw string, vars Variables, q Query) (string, error) {
	sql, err := ReplaceVariables(ApplyConditionalAll(raw, vars), vars)
	if err != nil {
		return "", err
	}
	q.RawSQL = sql
	return Interpolate(q, nil)
}
