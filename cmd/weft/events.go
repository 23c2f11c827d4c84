package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/internal/chstore"
)

// EventsReport is the answer of `weft events` and GET /api/v1/events: one
// page of events, newest first unless asked otherwise, and the cursor of
// the next page (null on the last).
type EventsReport struct {
	Events []FoundEvent `json:"events"`
	Next   *string      `json:"next"`
}

// FoundEvent is one event a search found, with where weft read it.
type FoundEvent struct {
	Topic         string            `json:"topic"`
	Partition     int32             `json:"partition"`
	Offset        int64             `json:"offset"`
	EventTime     time.Time         `json:"event_time"`
	OrderID       string            `json:"order_id"`
	Type          string            `json:"type"`
	Service       string            `json:"service"`
	EventID       string            `json:"event_id"`
	RecordKey     string            `json:"record_key"`
	RecordTime    time.Time         `json:"record_time"`
	CausationID   string            `json:"causation_id,omitempty"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	TraceID       string            `json:"trace_id,omitempty"`
	Format        string            `json:"format"`
	Headers       map[string]string `json:"headers"`
	// Payload is the event's data as stored (masked).
	Payload    json.RawMessage `json:"payload"`
	IngestedAt time.Time       `json:"ingested_at"`
}

func eventsReport(p chstore.EventPage) EventsReport {
	rep := EventsReport{Events: make([]FoundEvent, len(p.Events))}
	for i, e := range p.Events {
		payload := json.RawMessage(e.Payload)
		if !json.Valid(payload) {
			payload, _ = json.Marshal(e.Payload)
		}
		rep.Events[i] = FoundEvent{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, EventTime: e.EventTime,
			OrderID: e.OrderID, Type: e.Type, Service: e.Service, EventID: e.EventID, RecordKey: e.RecordKey,
			RecordTime: e.RecordTime, CausationID: e.CausationID, CorrelationID: e.CorrelationID, TraceID: e.TraceID,
			Format: e.Format, Headers: e.Headers, Payload: payload, IngestedAt: e.IngestedAt}
	}
	if p.Next != nil {
		s := p.Next.String()
		rep.Next = &s
	}
	return rep
}

// defaultSearchLimit is a page's size unless asked otherwise.
const defaultSearchLimit = 50

// searchRequest is a search as typed: the flags of `weft events` or the
// query parameters of GET /api/v1/events, which have the same names
// (event_id is --event-id).
type searchRequest struct {
	Order, EventID, Key, Type, Service, Topic string
	Headers, Fields                           []string
	Since, Until, Cursor                      string
	Limit                                     int
	OldestFirst                               bool
}

// badSearch is a mistake in a search request, which names the flag or
// parameter it is in: exit 2 on the command line, 400 from the API.
type badSearch struct{ error }

// search turns the request into the store's search, with now the time
// that durations in since and until count back from. name renders a
// parameter's name as the user wrote it (--event-id or event_id).
func (r searchRequest) search(now time.Time, name func(param string) string) (chstore.EventSearch, error) {
	s := chstore.EventSearch{OrderID: r.Order, EventID: r.EventID, RecordKey: r.Key, Type: r.Type, Service: r.Service,
		Topic: r.Topic, Limit: r.Limit, OldestFirst: r.OldestFirst}
	var errs []error
	bad := func(param, value string, err error) {
		errs = append(errs, fmt.Errorf("%s %q: %w", name(param), value, err))
	}
	for _, h := range r.Headers {
		n, v, ok := strings.Cut(h, "=")
		if !ok || n == "" {
			bad("header", h, errors.New("want NAME=VALUE"))
			continue
		}
		s.Headers = append(s.Headers, chstore.HeaderMatch{Name: n, Value: v})
	}
	for _, f := range r.Fields {
		p, v, ok := strings.Cut(f, "=")
		if !ok {
			bad("field", f, errors.New("want PATH=VALUE, e.g. data.customer.tier=gold"))
			continue
		}
		path, err := chstore.ParseFieldPath(p)
		if err != nil {
			bad("field", f, err)
			continue
		}
		s.Fields = append(s.Fields, chstore.FieldMatch{Path: path, Value: v})
	}
	var err error
	if s.Since, err = timeBound(r.Since, now); err != nil {
		bad("since", r.Since, err)
	}
	if s.Until, err = timeBound(r.Until, now); err != nil {
		bad("until", r.Until, err)
	}
	if !s.Since.IsZero() && !s.Until.IsZero() && !s.Since.Before(s.Until) {
		errs = append(errs, fmt.Errorf("%s %s is not before %s %s", name("since"), s.Since.Format(time.RFC3339Nano),
			name("until"), s.Until.Format(time.RFC3339Nano)))
	}
	if r.Limit < 1 || r.Limit > chstore.MaxSearchLimit {
		bad("limit", strconv.Itoa(r.Limit), fmt.Errorf("want 1 to %d", chstore.MaxSearchLimit))
	}
	if r.Cursor != "" {
		c, err := chstore.ParseCursor(r.Cursor)
		switch {
		case err != nil:
			bad("cursor", r.Cursor, err)
		case c.OldestFirst != r.OldestFirst:
			with := "without"
			if c.OldestFirst {
				with = "with"
			}
			bad("cursor", r.Cursor, fmt.Errorf("made for a search %s %s", with, name("oldest_first")))
		default:
			s.After = &c
		}
	}
	if len(errs) > 0 {
		return chstore.EventSearch{}, badSearch{joinOnOneLine(errs)}
	}
	return s, nil
}

// joinOnOneLine joins errors with "; ": weft's errors are one line.
func joinOnOneLine(errs []error) error {
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// timeBound reads an end of a time range: RFC 3339 (2026-11-24T10:00:00Z),
// a date (2026-11-24, midnight UTC), or a duration back from now (90s, 15m,
// 2h, 7d); "" is an open end.
func timeBound(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, nerr := strconv.Atoi(days)
		d, err = time.Duration(n)*24*time.Hour, nerr
	}
	if err != nil || d <= 0 {
		return time.Time{}, errors.New("want an RFC 3339 time (2026-11-24T10:00:00Z), a date (2026-11-24) or a duration back from now (15m, 2h, 7d)")
	}
	return now.Add(-d).UTC(), nil
}

// searchParams are the query parameters of GET /api/v1/events.
var searchParams = []string{"order", "event_id", "key", "type", "service", "topic", "header", "field",
	"since", "until", "cursor", "limit", "oldest_first"}

// searchRequestFromQuery reads GET /api/v1/events' query string. Unknown
// parameters are a mistake: a misspelt filter would widen the search.
func searchRequestFromQuery(q url.Values) (searchRequest, error) {
	var unknown []string
	for k := range q {
		if !slices.Contains(searchParams, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return searchRequest{}, badSearch{fmt.Errorf("unknown parameter %s; want %s", strings.Join(unknown, ", "), strings.Join(searchParams, ", "))}
	}
	r := searchRequest{Order: q.Get("order"), EventID: q.Get("event_id"), Key: q.Get("key"), Type: q.Get("type"),
		Service: q.Get("service"), Topic: q.Get("topic"), Headers: q["header"], Fields: q["field"],
		Since: q.Get("since"), Until: q.Get("until"), Cursor: q.Get("cursor"), Limit: defaultSearchLimit}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return searchRequest{}, badSearch{fmt.Errorf("limit %q: want a number from 1 to %d", s, chstore.MaxSearchLimit)}
		}
		r.Limit = n
	}
	switch s := q.Get("oldest_first"); s {
	case "", "false":
	case "true":
		r.OldestFirst = true
	default:
		return searchRequest{}, badSearch{fmt.Errorf("oldest_first %q: want true or false", s)}
	}
	return r, nil
}

func apiParam(p string) string  { return p }
func flagParam(p string) string { return "--" + strings.ReplaceAll(p, "_", "-") }

func newEventsCmd(g *globalFlags) *cobra.Command {
	r := searchRequest{Limit: defaultSearchLimit}
	var explain bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Find stored events by order, id, key, type, service, header or data field",
		Long: `events finds stored events, newest first: by order id, event id, record
key, type, service, topic, header value (--header NAME=VALUE) or a field of
the event's data (--field PATH=VALUE, the path from data, the event's data
as stored: data.customer.tier, data.items[0].sku, data["odd.key"]), over a
range of event time (--since/--until: RFC 3339, a date, or a duration back
from now such as 2h or 7d; since included, until excluded). Every filter
given must match. A page holds --limit events; the next page is asked for
with --cursor and the value the previous page printed.

Payloads, headers and keys are stored masked (card numbers, CVV, e-mail,
phone): searching for such a value in clear finds nothing. docs/search.md
says which filters are indexed.`,
		Example: `  weft events --order o-000123
  weft events --event-id 7f3e2a40-0c1d-4e55-9c47-2b1e0f6a9d10
  weft events --type PaymentFailed --since 2h
  weft events --header correlation-id=chk_4c1d2e --field data.store_id=store-0101 -o json
  weft events --service payments --since 2026-11-24T00:00:00Z --until 2026-11-25 --cursor eyJ0Ijo...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := r.search(time.Now(), flagParam)
			if err != nil {
				return usageError{err}
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			store, err := openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			if explain {
				plan, err := store.ExplainEventSearch(cmd.Context(), s)
				if err != nil {
					return err
				}
				_, err = io.WriteString(cmd.OutOrStdout(), plan)
				return err
			}
			page, err := store.SearchEvents(cmd.Context(), s)
			if errors.Is(err, chstore.ErrBadSearch) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			rep := eventsReport(page)
			return g.emit(cmd.OutOrStdout(), rep, func(w io.Writer) { printEvents(w, rep) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&r.Order, "order", "", "only this order's events")
	fl.StringVar(&r.EventID, "event-id", "", "only the event with this id")
	fl.StringVar(&r.Key, "key", "", "only records with this key")
	fl.StringVar(&r.Type, "type", "", "only events of this type, e.g. PaymentFailed")
	fl.StringVar(&r.Service, "service", "", "only events of this service")
	fl.StringVar(&r.Topic, "topic", "", "only records of this topic")
	fl.StringArrayVar(&r.Headers, "header", nil, "NAME=VALUE: only records whose header NAME is VALUE (repeatable)")
	fl.StringArrayVar(&r.Fields, "field", nil, "PATH=VALUE: only events whose data holds VALUE at PATH, e.g. data.customer.tier=gold (repeatable)")
	fl.StringVar(&r.Since, "since", "", "only events at or after this event time: RFC 3339, a date, or a duration back from now (2h)")
	fl.StringVar(&r.Until, "until", "", "only events before this event time: RFC 3339, a date, or a duration back from now")
	fl.BoolVar(&r.OldestFirst, "oldest-first", false, "oldest event first (default: newest first)")
	fl.IntVar(&r.Limit, "limit", r.Limit, fmt.Sprintf("events per page, 1 to %d", chstore.MaxSearchLimit))
	fl.StringVar(&r.Cursor, "cursor", "", "continue after the page that printed this cursor")
	fl.BoolVar(&explain, "explain", false, "print ClickHouse's plan of the search (which indexes it uses) instead of the events")
	return cmd
}

func printEvents(w io.Writer, rep EventsReport) {
	if len(rep.Events) == 0 {
		fmt.Fprintln(w, "No events found.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WHERE\tEVENT TIME\tORDER\tTYPE\tSERVICE\tEVENT ID")
	for _, e := range rep.Events {
		fmt.Fprintf(tw, "%s/%d@%d\t%s\t%s\t%s\t%s\t%s\n", e.Topic, e.Partition, e.Offset,
			e.EventTime.Format("2006-01-02 15:04:05.000"), e.OrderID, e.Type, e.Service, e.EventID)
	}
	_ = tw.Flush()
	if rep.Next != nil {
		fmt.Fprintf(w, "\n%d events; more with --cursor %s\n", len(rep.Events), *rep.Next)
	}
}
