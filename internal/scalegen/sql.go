package scalegen

import (
	"bytes"
	"embed"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"

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

func sqlArray[T any](xs []T, f func(T) string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = f(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// params are what the templates read.
func (g *generator) params(r orderRange) map[string]any {
	type named struct {
		Code uint8
		Name string
	}
	var types []named
	for _, t := range g.types {
		types = append(types, named{t.code, t.name})
	}
	ms := func(d time.Duration) string { return fmt.Sprint(d.Milliseconds()) }
	source := fmt.Sprintf("numbers(%d, %d)", r.From, r.Count)
	if r.orderIndexesOverride != "" {
		source = r.orderIndexesOverride
	}
	var services []string
	for _, t := range g.types {
		if !slices.Contains(services, t.service) {
			services = append(services, t.service)
		}
	}
	slices.Sort(services)
	return map[string]any{
		"Services":           services,
		"ServiceCodeArray":   sqlArray(g.types, func(t eventType) string { return fmt.Sprint(slices.Index(services, t.service) + 1) }),
		"Seed":               g.w.Seed,
		"Types":              types,
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
		"NameArray":          sqlArray(g.types, func(t eventType) string { return quote(t.name) }),
		"ServiceArray":       sqlArray(g.types, func(t eventType) string { return quote(t.service) }),
		"TopicArray":         sqlArray(g.types, func(t eventType) string { return quote(t.topic) }),
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
		"TopicPrefix":        topicPrefix,
		"DLQTopic":           dlqTopic,
		"Catalog":            demo.Catalog,
		"PriceArray":         sqlArray(demo.Catalog, func(p demo.Product) string { return fmt.Sprint(p.Cents) }),
		"SKUArray":           sqlArray(demo.Catalog, func(p demo.Product) string { return quote(p.SKU) }),
		"ProductArray":       sqlArray(demo.Catalog, func(p demo.Product) string { return quote(p.Name) }),
	}
}

func render(name string, p map[string]any) (string, error) {
	var b bytes.Buffer
	if err := sqlTemplates.ExecuteTemplate(&b, name, p); err != nil {
		return "", fmt.Errorf("scalegen: render %s: %w", name, err)
	}
	return b.String(), nil
}

// ordersSQL is the per-order query (orders.sql) over r.
func (g *generator) ordersSQL(r orderRange) (string, error) {
	return render("orders.sql", g.params(r))
}

// insertSQL is the INSERT … SELECT of r's records into db.events, offsets
// continuing from base (topic/partition → next offset). ingestNow stamps
// ingested_at with the server's clock instead of a realistic lag after
// the produce time (a batch arriving now).
func (g *generator) insertSQL(db string, r orderRange, base map[string]int64, ingestNow bool) (string, error) {
	p := g.params(r)
	orders, err := render("orders.sql", p)
	if err != nil {
		return "", err
	}
	var keys, vals []string
	for k, v := range base {
		keys, vals = append(keys, quote(k)), append(vals, fmt.Sprint(v))
	}
	p["Orders"] = orders
	p["DB"] = db
	p["IngestNow"] = ingestNow
	p["OffsetBase"] = fmt.Sprintf("CAST(mapFromArrays([%s], [%s]), 'Map(String, Int64)')",
		strings.Join(keys, ", "), strings.Join(vals, ", "))
	if len(keys) == 0 {
		p["OffsetBase"] = "CAST(map(), 'Map(String, Int64)')"
	}
	return render("events.sql", p)
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
