package chstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// EventSearch is a search of the stored events (`weft events`, GET
// /api/v1/events; docs/search.md). Every filter that is set must match;
// the zero value of a filter leaves it out.
type EventSearch struct {
	OrderID   string
	EventID   string
	RecordKey string
	Type      string
	Service   string
	Topic     string
	// Headers: each named header must hold exactly the value.
	Headers []HeaderMatch
	// Fields: each path of the event's data must hold the value.
	Fields []FieldMatch
	// Since (included) and Until (excluded) bound the event time; the
	// zero time leaves that end open.
	Since, Until time.Time
	// OldestFirst sorts by event time ascending; by default the newest
	// event comes first.
	OldestFirst bool
	// Limit is the most events a page holds: 1 to MaxSearchLimit.
	Limit int
	// After continues a search after the last event of a previous page
	// (its EventPage.Next); nil starts at the beginning.
	After *Cursor
}

// HeaderMatch asks for a record header Name (case-sensitive, as produced)
// holding exactly Value.
type HeaderMatch struct{ Name, Value string }

// FieldMatch asks for the event's data to hold Value at Path: a JSON string
// equal to Value; a number equal to Value when Value is a number (12.5
// matches 12.50 and 1.25e1; integers are compared exactly); true, false or
// null when Value is that word. An object or array matches nothing.
type FieldMatch struct {
	Path  FieldPath
	Value string
}

// MaxSearchLimit bounds EventSearch.Limit.
const MaxSearchLimit = 1000

// ErrBadSearch marks a search that cannot be run as asked (a caller's
// mistake, not a ClickHouse failure).
var ErrBadSearch = errors.New("bad search")

// Validate reports what makes the search impossible to run.
func (s EventSearch) Validate() error {
	var errs []error
	if s.Limit < 1 || s.Limit > MaxSearchLimit {
		errs = append(errs, fmt.Errorf("limit %d: want 1 to %d", s.Limit, MaxSearchLimit))
	}
	if !s.Since.IsZero() && !s.Until.IsZero() && !s.Since.Before(s.Until) {
		errs = append(errs, fmt.Errorf("since %s is not before until %s", s.Since.Format(time.RFC3339Nano), s.Until.Format(time.RFC3339Nano)))
	}
	if s.After != nil && s.After.OldestFirst != s.OldestFirst {
		errs = append(errs, errors.New("cursor was made for the other sort order"))
	}
	for _, h := range s.Headers {
		if h.Name == "" {
			errs = append(errs, errors.New("header: empty name"))
		}
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, err := range errs {
			msgs[i] = err.Error()
		}
		return fmt.Errorf("%w: %s", ErrBadSearch, strings.Join(msgs, "; "))
	}
	return nil
}

// FoundEvent is one event a search found, with where it was read from.
type FoundEvent struct {
	Topic         string
	Partition     int32
	Offset        int64
	RecordKey     string
	RecordTime    time.Time
	EventID       string
	Type          string
	Service       string
	OrderID       string
	EventTime     time.Time
	CausationID   string
	CorrelationID string
	TraceID       string
	Format        string
	Headers       map[string]string
	// Payload is the event's data as stored: JSON, masked.
	Payload    string
	IngestedAt time.Time
}

// EventPage is one page of a search: its events in the search's order, and
// Next, the cursor of the following page (nil on the last page).
type EventPage struct {
	Events []FoundEvent
	Next   *Cursor
}

// SearchEvents runs the search q and returns one page. Each stored record is found
// once, whatever copies of it are stored before ClickHouse merges them
// (docs/delivery.md). Pages chain without gaps or repeats: the next page
// starts strictly after the last event of this one in the order (event
// time, topic, partition, offset). A page may hold fewer than Limit events
// and still have a Next (when copies of a record filled the rest).
func (s *Store) SearchEvents(ctx context.Context, q EventSearch) (EventPage, error) {
	if err := q.Validate(); err != nil {
		return EventPage{}, err
	}
	filter, args := q.filter()
	order := "DESC"
	if q.OldestFirst {
		order = "ASC"
	}
	sortKey := fmt.Sprintf("event_time %[1]s, topic %[1]s, partition %[1]s, offset %[1]s", order)
	args = append(args, clickhouse.Named("limit", q.Limit+1))
	// The filter finds the page's positions reading only the columns it
	// tests and the sort key; the rows themselves are then read by primary
	// key, so a broad search does not read every matching payload.
	query := `SELECT topic, partition, offset, record_key, record_time, event_id, event_type, service, order_id,
       event_time, causation_id, correlation_id, trace_id, format, headers, payload, ingested_at
FROM ` + s.Table("events") + `
WHERE (order_id, topic, partition, offset) IN (
    SELECT order_id, topic, partition, offset FROM ` + s.Table("events") + `
    WHERE ` + filter + `
    ORDER BY ` + sortKey + `
    LIMIT @limit)
ORDER BY ` + sortKey + `, ingested_at DESC`
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return EventPage{}, fmt.Errorf("search events: %w", err)
	}
	defer rows.Close()
	var (
		page EventPage
		raw  int
	)
	for rows.Next() {
		var e FoundEvent
		if err := rows.Scan(&e.Topic, &e.Partition, &e.Offset, &e.RecordKey, &e.RecordTime, &e.EventID, &e.Type, &e.Service,
			&e.OrderID, &e.EventTime, &e.CausationID, &e.CorrelationID, &e.TraceID, &e.Format, &e.Headers, &e.Payload,
			&e.IngestedAt); err != nil {
			return EventPage{}, fmt.Errorf("search events: %w", err)
		}
		raw++
		if n := len(page.Events); n > 0 && samePosition(page.Events[n-1], e) {
			continue // a copy not merged yet; the newest ingest came first
		}
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return EventPage{}, fmt.Errorf("search events: %w", err)
	}
	if len(page.Events) > q.Limit {
		page.Events = page.Events[:q.Limit]
		page.Next = cursorAt(page.Events[q.Limit-1], q.OldestFirst)
	} else if raw > q.Limit && len(page.Events) > 0 {
		// Copies filled the page's extra row: more may follow.
		page.Next = cursorAt(page.Events[len(page.Events)-1], q.OldestFirst)
	}
	return page, nil
}

// ExplainEventSearch returns ClickHouse's plan (EXPLAIN indexes = 1) of the
// part of s that filters, the part that reads the table at large: which
// indexes it consults and how many parts and granules each leaves. On a
// cluster it is the plan of each shard's own rows, node by node, each under
// a line "-- node ADDR".
func (s *Store) ExplainEventSearch(ctx context.Context, q EventSearch) (string, error) {
	if err := q.Validate(); err != nil {
		return "", err
	}
	filter, args := q.filter()
	stmt := "EXPLAIN indexes = 1 SELECT order_id, topic, partition, offset FROM " + s.shardTable("events") + " WHERE " + filter
	plans, err := perNode(ctx, s, func(n node) (string, error) {
		var b strings.Builder
		if s.cluster.Enabled() {
			b.WriteString("-- node " + n.addr + "\n")
		}
		rows, err := n.conn.Query(ctx, stmt, args...)
		if err != nil {
			return "", fmt.Errorf("explain search: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return "", fmt.Errorf("explain search: %w", err)
			}
			b.WriteString(line + "\n")
		}
		return b.String(), rows.Err()
	})
	return strings.Join(plans, ""), err
}

func samePosition(a, b FoundEvent) bool {
	return a.Offset == b.Offset && a.Partition == b.Partition && a.Topic == b.Topic
}

func cursorAt(e FoundEvent, oldestFirst bool) *Cursor {
	return &Cursor{EventTime: e.EventTime, Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, OldestFirst: oldestFirst}
}

// filter writes the search's WHERE clause: fixed SQL whose every value is
// a bound argument (@name, bound by clickhouse-go, which quotes it),
// returned with the arguments. Not {name:Type} server-side parameters:
// clickhouse-go v2.50 escapes their text once where the server unescapes it
// twice, so a backslash in a value would be misread.
func (q EventSearch) filter() (string, []any) {
	var args []any
	conds := []string{}
	bind := func(name string, value any) string {
		args = append(args, clickhouse.Named(name, value))
		return "@" + name
	}
	for _, c := range []struct{ column, value string }{
		{"order_id", q.OrderID},
		{"event_id", q.EventID},
		{"record_key", q.RecordKey},
		{"event_type", q.Type},
		{"service", q.Service},
		{"topic", q.Topic},
	} {
		if c.value != "" {
			conds = append(conds, c.column+" = "+bind(c.column, c.value))
		}
	}
	for i, h := range q.Headers {
		name := bind(fmt.Sprintf("h%d_name", i), h.Name)
		value := bind(fmt.Sprintf("h%d_value", i), h.Value)
		// headers[name] is '' for a header the record lacks.
		cond := "headers[" + name + "] = " + value
		if h.Value == "" {
			cond = "mapContains(headers, " + name + ") AND " + cond
		}
		conds = append(conds, cond)
	}
	for i, f := range q.Fields {
		path := "payload"
		for j, st := range f.Path {
			if st.IsIndex {
				// ClickHouse counts array elements from 1.
				path += ", " + bind(fmt.Sprintf("f%d_step%d", i, j), int64(st.Index+1))
			} else {
				path += ", " + bind(fmt.Sprintf("f%d_step%d", i, j), st.Key)
			}
		}
		// The index first: every token of the value must be in the payload.
		if !jsonNumber.MatchString(f.Value) {
			for j, tok := range valueTokens(f.Value) {
				conds = append(conds, "hasToken(payload, "+bind(fmt.Sprintf("f%d_token%d", i, j), tok)+")")
			}
		}
		n := 0
		conds = append(conds, fieldCond(path, f.Value, func(v any) string {
			n++
			return bind(fmt.Sprintf("f%d_value%d", i, n), v)
		}))
	}
	ms := func(name string, t time.Time) string {
		return "fromUnixTimestamp64Milli(" + bind(name, t.UnixMilli()) + ", 'UTC')"
	}
	if !q.Since.IsZero() {
		conds = append(conds, "event_time >= "+ms("since_ms", q.Since))
	}
	if !q.Until.IsZero() {
		conds = append(conds, "event_time < "+ms("until_ms", q.Until))
	}
	if c := q.After; c != nil {
		// The bound on event_time alone is implied by the tuple's, and is
		// what the event-time index understands.
		op, timeOp := "<", "<="
		if q.OldestFirst {
			op, timeOp = ">", ">="
		}
		at := ms("after_ms", c.EventTime)
		conds = append(conds, "event_time "+timeOp+" "+at,
			"(event_time, topic, partition, offset) "+op+" ("+at+", "+bind("after_topic", c.Topic)+", "+
				bind("after_partition", c.Partition)+", "+bind("after_offset", c.Offset)+")")
	}
	if len(conds) == 0 {
		return "1", args
	}
	return strings.Join(conds, "\n      AND "), args
}

// jsonNumber is a JSON number's text.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// jsonInteger is a JSON number's text without fraction or exponent.
var jsonInteger = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// fieldCond is FieldMatch's test of the JSON value at path (JSON function
// arguments): a string equal to v; a number equal to v when v is one
// (integers exactly, other numbers as Float64); true, false or null when v
// is that word. Objects and arrays match nothing. bind binds a value.
func fieldCond(path, v string, bind func(any) string) string {
	typ := "JSONType(" + path + ")"
	alts := []string{typ + " = 'String' AND JSONExtractString(" + path + ") = " + bind(v)}
	switch {
	case jsonInteger.MatchString(v):
		f, _ := strconv.ParseFloat(v, 64)
		alts = append(alts,
			typ+" IN ('Int64', 'UInt64') AND JSONExtractRaw("+path+") = "+bind(v),
			typ+" = 'Double' AND JSONExtractFloat("+path+") = "+bind(f))
	case jsonNumber.MatchString(v):
		f, _ := strconv.ParseFloat(v, 64)
		alts = append(alts, typ+" IN ('Int64', 'UInt64', 'Double') AND JSONExtractFloat("+path+") = "+bind(f))
	case v == "true" || v == "false":
		alts = append(alts, typ+" = 'Bool' AND JSONExtractRaw("+path+") = "+bind(v))
	case v == "null":
		// JSONType is Null for a missing member too.
		alts = append(alts, "JSONHas("+path+") AND "+typ+" = 'Null'")
	}
	return "(" + strings.Join(alts, "\n           OR ") + ")"
}
