package scalegen

import (
	"bytes"
	"embed"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/demo"
)

//go:embed orders.sql events.sql payload.sql
var sqlFS embed.FS

var sqlTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"code": func(name string) (uint8, error) {
		for i, n := range typeNames {
			if n == name {
				return uint8(i + 1), nil
			}
		}
		return 0, fmt.Errorf("no event type %q", name)
	},
	// h is the order's random draw k, he the draw k of event j, hev the
	// draw k of event (or item) expr: see orders.sql.
	"h":   func(k int) string { return fmt.Sprintf("intHash64(hb + %d)", k) },
	"he":  func(k int) string { return fmt.Sprintf("intHash64(hb + %d + j)", k*64) },
	"hev": func(k int, expr string) string { return fmt.Sprintf("intHash64(hb + %d + (%s))", k*64, expr) },
	// uuid is the event id of the order's event expr (draws 60 and 61).
	"uuid": func(expr string) string {
		return fmt.Sprintf("toString(reinterpretAsUUID(concat(reinterpretAsFixedString(intHash64(hb + %d + (%s))), "+
			"reinterpretAsFixedString(intHash64(hb + %d + (%s))))))", 60*64, expr, 61*64, expr)
	},
	// money renders integer cents as a JSON number with two decimals.
	"money": func(cents string) string {
		return fmt.Sprintf("concat(toString(intDiv(%[1]s, 100)), '.', leftPad(toString(%[1]s %% 100), 2, '0'))", cents)
	},
	// ts renders epoch milliseconds as an RFC 3339 UTC timestamp.
	"ts": func(ms string) string {
		return fmt.Sprintf("concat(replaceOne(toString(fromUnixTimestamp64Milli(toInt64(%s), 'UTC')), ' ', 'T'), 'Z')", ms)
	},
}).ParseFS(sqlFS, "*.sql"))

// generator renders the SQL of one workload at one watermark.
type generator struct {
	w         Workload
	types     []eventType
	watermark time.Time
}

func newGenerator(w Workload, watermark time.Time) (*generator, error) {
	ts, err := eventTypes(consistency.Builtin())
	if err != nil {
		return nil, err
	}
	return &generator{w: w.withDefaults(), types: ts, watermark: watermark.UTC().Truncate(time.Millisecond)}, nil
}

// orderRange is a range of order indexes and the span their starts are
// spread over.
type orderRange struct {
	// From and Count select the indexes (numbers(From, Count)).
	From, Count int64
	// First and Spread: index First starts at SpanStart, index First+Spread at SpanEnd.
	First, Spread        int64
	SpanStart, SpanEnd   time.Time
	Stuck                float64
	orderIndexesOverride string // a table expression giving `number`, instead of numbers(From, Count)
}

// mainRange is the part [from, from+count) of the workload's orders.
func (g *generator) mainRange(from, count int64) orderRange {
	return orderRange{From: from, Count: count, First: 0, Spread: int64(g.w.Orders),
		SpanStart: g.watermark.Add(-g.w.Span()), SpanEnd: g.watermark, Stuck: StuckFraction}
}

// sampleRange is the workload's orders at the given indexes.
func (g *generator) sampleRange(idx []int64) orderRange {
	r := g.mainRange(0, 0)
	parts := make([]string, len(idx))
	for i, x := range idx {
		parts[i] = fmt.Sprint(x)
	}
	r.orderIndexesOverride = "(SELECT arrayJoin([" + strings.Join(parts, ", ") + "]) AS number)"
	return r
}

// sqlArray renders an array literal of numbers (names are bound, never
// rendered: binds).
func sqlArray[T any](xs []T, f func(T) string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = f(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// services are the producing services of the event types, sorted.
func (g *generator) services() []string {
	var services []string
	for _, t := range g.types {
		if !slices.Contains(services, t.service) {
			services = append(services, t.service)
		}
	}
	slices.Sort(services)
	return services
}

// params are what the templates render: the generator's constants and the
// range's numbers. Names are bound instead (binds).
func (g *generator) params(r orderRange) map[string]any {
	ms := func(d time.Duration) string { return fmt.Sprint(d.Milliseconds()) }
	source := fmt.Sprintf("numbers(%d, %d)", r.From, r.Count)
	if r.orderIndexesOverride != "" {
		source = r.orderIndexesOverride
	}
	services := g.services()
	return map[string]any{
		"Services":           services,
		"ServiceCodeArray":   sqlArray(g.types, func(t eventType) string { return fmt.Sprint(slices.Index(services, t.service) + 1) }),
		"Seed":               g.w.Seed,
		"Partitions":         partitionsPerTopic,
		"DLQPartitions":      partitionsDLQ,
		"PathCompleted":      pathCompleted,
		"PathExpired":        pathExpired,
		"PathDeclined":       pathDeclined,
		"AsyncPercent":       asyncPercent,
		"MaxRetries":         maxRetries,
		"HoldLoMs":           ms(holdLo),
		"HoldSpanMs":         ms(holdHi - holdLo + time.Millisecond),
		"BackoffMs":          ms(backoffBase),
		"JitterSpanMs":       ms(backoffJitter + time.Millisecond),
		"CodeArray":          sqlArray(g.types, func(t eventType) string { return fmt.Sprint(t.code) }),
		"DwellLoArray":       sqlArray(g.types, func(t eventType) string { return ms(t.dwellLo) }),
		"DwellSpanArray":     sqlArray(g.types, func(t eventType) string { return ms(t.dwellHi - t.dwellLo + time.Millisecond) }),
		"SLAArray":           sqlArray(g.types, func(t eventType) string { return ms(t.sla) }),
		"SpanStartMs":        r.SpanStart.UnixMilli(),
		"SpanMs":             fmt.Sprintf("%d.0", r.SpanEnd.Sub(r.SpanStart).Milliseconds()),
		"FirstIndex":         r.First,
		"SpreadOrders":       r.Spread,
		"WatermarkMs":        g.watermark.UnixMilli(),
		"StuckFraction":      r.Stuck,
		"GapFraction":        GapFraction,
		"DupFraction":        DupFraction,
		"OutOfOrderFraction": OutOfOrderFraction,
		"MarginMs":           ms(slaMargin),
		"Source":             source,
		"Catalog":            demo.Catalog,
		"PriceArray":         sqlArray(demo.Catalog, func(p demo.Product) string { return fmt.Sprint(p.Cents) }),
	}
}

// binds are the values of the templates' {name:Type} parameters: every
// name the generated rows carry, bound rather than quoted into the SQL.
func (g *generator) binds() map[string]any {
	names := func(f func(eventType) string) []string {
		out := make([]string, len(g.types))
		for i, t := range g.types {
			out[i] = f(t)
		}
		return out
	}
	catalog := func(f func(demo.Product) string) []string {
		out := make([]string, len(demo.Catalog))
		for i, p := range demo.Catalog {
			out[i] = f(p)
		}
		return out
	}
	return map[string]any{
		"type_names":     names(func(t eventType) string { return t.name }),
		"type_services":  names(func(t eventType) string { return t.service }),
		"type_topics":    names(func(t eventType) string { return t.topic }),
		"services":       g.services(),
		"topic_prefix":   topicPrefix,
		"dlq_topic":      topicPrefix + dlqTopic,
		"payments_topic": topicPrefix + "payments",
		"skus":           catalog(func(p demo.Product) string { return p.SKU }),
		"products":       catalog(func(p demo.Product) string { return p.Name }),
	}
}

// stmt is a statement rendered from the templates and the values bound to
// its {name:Type} parameters (clickhouse.Named, sent to the server apart
// from the SQL).
type stmt struct {
	sql  string
	args []any
}

// render renders template name and binds the values the SQL names.
func render(name string, p, binds map[string]any) (stmt, error) {
	var b bytes.Buffer
	if err := sqlTemplates.ExecuteTemplate(&b, name, p); err != nil {
		return stmt{}, fmt.Errorf("scalegen: render %s: %w", name, err)
	}
	st := stmt{sql: b.String()}
	for _, k := range slices.Sorted(maps.Keys(binds)) {
		if strings.Contains(st.sql, "{"+k+":") {
			st.args = append(st.args, clickhouse.Named(k, binds[k]))
		}
	}
	return st, nil
}

// ordersSQL is the per-order query (orders.sql) over r.
func (g *generator) ordersSQL(r orderRange) (stmt, error) {
	return render("orders.sql", g.params(r), g.binds())
}

// insertSQL is the INSERT … SELECT of r's records into db.events, offsets
// continuing from base (topic/partition → next offset). ingestNow stamps
// ingested_at with the server's clock instead of a realistic lag after
// the produce time (a batch arriving now). db must be a checked
// identifier (DB checks it when it is opened).
func (g *generator) insertSQL(db string, r orderRange, base map[string]int64, ingestNow bool) (stmt, error) {
	p := g.params(r)
	orders, err := render("orders.sql", p, nil)
	if err != nil {
		return stmt{}, err
	}
	p["Orders"] = orders.sql
	p["DB"] = db
	p["IngestNow"] = ingestNow
	if base == nil {
		base = map[string]int64{}
	}
	binds := g.binds()
	binds["offset_base"] = base
	return render("events.sql", p, binds)
}

// typeNames are the event types by code - 1.
var typeNames = func() []string {
	ts, err := eventTypes(nil)
	if err != nil {
		panic(err)
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.name
	}
	return out
}()
