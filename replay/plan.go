package replay

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
)

// Kinds of job.
const (
	KindOrder   = "order"
	KindFinding = "finding"
	KindRedrive = "redrive"
	KindRange   = "range"
)

// Item is one record a job produces: read back from From, produced to To.
type Item struct {
	Seq  uint64    `json:"seq"`
	From Position  `json:"from"`
	To   string    `json:"to"`
	Type string    `json:"type,omitempty"` // the stored event's type, when known
	Time time.Time `json:"time,omitzero"`  // the original record's timestamp, when read
	Size int       `json:"bytes,omitempty"`
}

// Missing is a record a job cannot produce, and why.
type Missing struct {
	From   Position `json:"from"`
	Reason string   `json:"reason"`
}

// Plan is what a job produces, fixed before anything is.
type Plan struct {
	Kind     string `json:"kind"`
	Resource string `json:"resource"`
	// OrderID is the order acted on, for the audit trail ("" for a redrive).
	OrderID string    `json:"order_id,omitempty"`
	Items   []Item    `json:"items"`
	Missing []Missing `json:"missing"`
	// Skipped counts records the request covers that the plan leaves out
	// on purpose, with the reason (dead-letter copies in an order replay).
	Skipped map[string]int `json:"skipped,omitempty"`
}

// PerTopic counts the plan's records by target topic.
func (p Plan) PerTopic() map[string]int {
	m := map[string]int{}
	for _, it := range p.Items {
		m[it.To]++
	}
	return m
}

// OrderRequest asks for an order's records.
type OrderRequest struct {
	OrderID string
	// Types keeps the events of these types; none keeps every one.
	Types []string
	// To sends every record to this topic instead of its own.
	To string
	// DLQPattern matches dead-letter topics (collector.lag.dlq_pattern):
	// an order's dead-letter copies are left out (weft redrive sends them).
	DLQPattern string
}

// RedriveRequest asks for a dead-letter topic's records.
type RedriveRequest struct {
	Topic string
	// To sends every record to this topic; else replay.redrive.targets,
	// else the record's original-topic header.
	To string
	// OlderThan keeps records at least this old; NewerThan those at most
	// this old. Zero: no bound.
	OlderThan, NewerThan time.Duration
	// Header keeps records with this header and value (Name empty: all).
	HeaderName, HeaderValue string
	// Limit keeps the oldest Limit records (0: all).
	Limit int
}

// RangeRequest asks for the stored records of one topic in a time range.
type RangeRequest struct {
	Topic string
	// From and To bound the records' Kafka timestamps: From ≤ t < To.
	From, To time.Time
	// Types, Services and OrderIDs keep the records of these event types,
	// emitting services and orders; none keeps every one.
	Types, Services, OrderIDs []string
	// Target sends every record to this topic instead of Topic.
	Target string
	// Limit keeps the oldest Limit records (0: all).
	Limit int
}

// ErrRefused marks a request replay refuses: nothing was produced.
var ErrRefused = errors.New("refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// PlanOrder plans the replay of an order's stored events, each read back
// from Kafka.
func (r *Replayer) PlanOrder(ctx context.Context, q OrderRequest) (Plan, error) {
	recs, err := r.s.Store.OrderRecords(ctx, q.OrderID)
	if err != nil {
		return Plan{}, err
	}
	if len(recs) == 0 {
		return Plan{}, refuse("order %s: no events stored", q.OrderID)
	}
	plan := Plan{Kind: KindOrder, Resource: "order/" + q.OrderID, OrderID: q.OrderID, Skipped: map[string]int{}}
	var dlq *regexp.Regexp
	if q.DLQPattern != "" {
		if dlq, err = regexp.Compile("^(?:" + q.DLQPattern + ")$"); err != nil {
			return Plan{}, fmt.Errorf("dead-letter pattern: %w", err)
		}
	}
	var items []Item
	for _, rec := range recs {
		switch {
		case len(q.Types) > 0 && !slices.Contains(q.Types, rec.Type):
			plan.Skipped["not of the types asked"]++
		case dlq != nil && dlq.MatchString(rec.Topic):
			plan.Skipped["dead-letter copies (weft redrive "+rec.Topic+" sends them)"]++
		default:
			to := rec.Topic
			if q.To != "" {
				to = q.To
			}
			items = append(items, Item{From: Position{rec.Topic, rec.Partition, rec.Offset}, To: to, Type: rec.Type})
		}
	}
	if len(items) == 0 {
		return Plan{}, refuse("order %s: none of its %d stored events matches the request", q.OrderID, len(recs))
	}
	return r.checkPresent(ctx, plan, items)
}

// PlanFinding plans the replay of the records a finding's evidence names
// (topic/partition@offset); a finding naming none, e.g. a stuck order's,
// replays its order's last event.
func (r *Replayer) PlanFinding(ctx context.Context, id, to string) (Plan, error) {
	fs, err := r.s.Store.Findings(ctx, chstore.FindingQuery{ID: id, Limit: 1})
	if err != nil {
		return Plan{}, err
	}
	if len(fs) == 0 {
		return Plan{}, refuse("no finding %s", id)
	}
	f := fs[0]
	plan := Plan{Kind: KindFinding, Resource: "finding/" + id, OrderID: f.OrderID}
	recs, err := r.s.Store.OrderRecords(ctx, f.OrderID)
	if err != nil {
		return Plan{}, err
	}
	types := map[Position]string{}
	for _, rec := range recs {
		types[Position{rec.Topic, rec.Partition, rec.Offset}] = rec.Type
	}
	named := evidencePositions(f.Evidence)
	if len(named) == 0 && len(recs) > 0 {
		last := recs[len(recs)-1]
		named = []Position{{last.Topic, last.Partition, last.Offset}}
	}
	if len(named) == 0 {
		return Plan{}, refuse("finding %s (order %s) names no records and the order has no stored events", id, f.OrderID)
	}
	var items []Item
	for _, p := range named {
		t := p.Topic
		if to != "" {
			t = to
		}
		items = append(items, Item{From: p, To: t, Type: types[p]})
	}
	return r.checkPresent(ctx, plan, items)
}

// rangeReadChunk bounds the records a range plan holds read back at once.
const rangeReadChunk = 5000

// PlanRange plans the replay of the records of a topic that weft stored
// with a Kafka timestamp in [From, To), filtered, oldest first, each read
// back from Kafka and produced to its own topic or Target.
func (r *Replayer) PlanRange(ctx context.Context, q RangeRequest) (Plan, error) {
	resource := "topic/" + q.Topic
	span := q.From.UTC().Format(time.RFC3339) + " to " + q.To.UTC().Format(time.RFC3339)
	if !q.From.Before(q.To) {
		return Plan{Kind: KindRange, Resource: resource}, refuse("%s: the range %s is empty: --from must be before --to", resource, span)
	}
	recs, err := r.s.Store.RangeRecords(ctx, chstore.RangeQuery{Topic: q.Topic, From: q.From, To: q.To,
		Types: q.Types, Services: q.Services, OrderIDs: q.OrderIDs, Limit: q.Limit})
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{Kind: KindRange, Resource: resource}
	if len(recs) == 0 {
		return plan, refuse("%s: weft stored no records from %s%s", resource, span, rangeFilters(q))
	}
	to := cmp.Or(q.Target, q.Topic)
	for start := 0; start < len(recs); start += rangeReadChunk {
		part := recs[start:min(start+rangeReadChunk, len(recs))]
		items := make([]Item, len(part))
		for i, rec := range part {
			items[i] = Item{From: Position{q.Topic, rec.Partition, rec.Offset}, To: to, Type: rec.Type}
		}
		if plan, err = r.checkPresent(ctx, plan, items); err != nil {
			return Plan{}, err
		}
	}
	return plan, nil
}

// rangeFilters says which filters a range request has, for its refusal.
func rangeFilters(q RangeRequest) string {
	var parts []string
	if len(q.Types) > 0 {
		parts = append(parts, fmt.Sprintf("of types %v", q.Types))
	}
	if len(q.Services) > 0 {
		parts = append(parts, fmt.Sprintf("from services %v", q.Services))
	}
	if len(q.OrderIDs) > 0 {
		parts = append(parts, fmt.Sprintf("of the %d orders asked", len(q.OrderIDs)))
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, ", ")
}

var wherePattern = regexp.MustCompile(`^(.+)/(\d+)@(\d+)$`)

// evidencePositions collects every "where" (topic/partition@offset) in a
// finding's evidence, each once, in the order they appear.
func evidencePositions(evidence string) []Position {
	var doc any
	if json.Unmarshal([]byte(evidence), &doc) != nil {
		return nil
	}
	var out []Position
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(mapsKeys(v)) {
				if s, ok := v[k].(string); ok && k == "where" {
					if m := wherePattern.FindStringSubmatch(s); m != nil {
						part, _ := strconv.ParseInt(m[2], 10, 32)
						off, _ := strconv.ParseInt(m[3], 10, 64)
						if p := (Position{m[1], int32(part), off}); !slices.Contains(out, p) {
							out = append(out, p)
						}
					}
					continue
				}
				walk(v[k])
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return out
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkPresent reads the items back from Kafka, keeps those it holds
// (numbered in order) and lists the others as missing.
func (r *Replayer) checkPresent(ctx context.Context, plan Plan, items []Item) (Plan, error) {
	ps := make([]Position, len(items))
	for i, it := range items {
		ps[i] = it.From
	}
	got, err := r.reader.read(ctx, ps)
	if err != nil {
		return Plan{}, err
	}
	for i, g := range got {
		if g.Record == nil {
			plan.Missing = append(plan.Missing, Missing{From: g.Pos, Reason: g.Gone})
			continue
		}
		it := items[i]
		it.Seq, it.Time, it.Size = uint64(len(plan.Items)), g.Record.Timestamp, len(g.Record.Key)+len(g.Record.Value)
		plan.Items = append(plan.Items, it)
	}
	return plan, nil
}

// PlanRedrive plans the redrive of a dead-letter topic: its records up to
// its end now, filtered, oldest first, each to its original topic.
func (r *Replayer) PlanRedrive(ctx context.Context, q RedriveRequest) (Plan, error) {
	plan := Plan{Kind: KindRedrive, Resource: "topic/" + q.Topic, Skipped: map[string]int{}}
	starts, err := r.adm.ListStartOffsets(ctx, q.Topic)
	if err != nil {
		return Plan{}, fmt.Errorf("kafka: list offsets of %s: %w", q.Topic, err)
	}
	ends, err := r.adm.ListCommittedOffsets(ctx, q.Topic)
	if err != nil {
		return Plan{}, fmt.Errorf("kafka: list offsets of %s: %w", q.Topic, err)
	}
	if len(ends[q.Topic]) == 0 {
		return Plan{}, refuse("topic %s does not exist", q.Topic)
	}
	from := map[int32]kgo.Offset{}
	left := map[int32]int64{} // partition → its end now
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		start, _ := starts.Lookup(o.Topic, o.Partition)
		if o.Offset > start.Offset {
			from[o.Partition] = kgo.NewOffset().At(start.Offset)
			left[o.Partition] = o.Offset
		}
	})
	now := r.s.Now()
	mapped := r.cfg.Redrive.Targets[q.Topic]
	var items []Item
	noTarget := 0
	var firstNoTarget Position
	if len(from) > 0 {
		cl, err := kgo.NewClient(append(slices.Clone(r.s.Kafka),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{q.Topic: from}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			// Transaction markers come back too: the last offset before
			// the end may be one, and reading stops on reaching the end.
			kgo.KeepControlRecords())...)
		if err != nil {
			return Plan{}, fmt.Errorf("kafka client: %w", err)
		}
		defer cl.Close()
		for len(left) > 0 {
			pctx, cancel := context.WithTimeout(ctx, r.reader.wait)
			fs := cl.PollRecords(pctx, 10_000)
			cancel()
			if err := ctx.Err(); err != nil {
				return Plan{}, err
			}
			var ferr error
			fs.EachError(func(_ string, _ int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					ferr = err
				}
			})
			if ferr != nil {
				return Plan{}, fmt.Errorf("kafka: read %s: %w", q.Topic, ferr)
			}
			recs := fs.Records()
			if len(recs) == 0 {
				return Plan{}, fmt.Errorf("kafka: %s returned nothing for %s before its end", q.Topic, r.reader.wait)
			}
			for _, rec := range recs {
				end, ok := left[rec.Partition]
				if !ok || rec.Offset >= end {
					continue
				}
				if rec.Offset+1 >= end {
					delete(left, rec.Partition)
				}
				if rec.Attrs.IsControl() {
					continue
				}
				age := now.Sub(rec.Timestamp)
				switch {
				case q.OlderThan > 0 && age < q.OlderThan:
					plan.Skipped[fmt.Sprintf("newer than %s", q.OlderThan)]++
					continue
				case q.NewerThan > 0 && age > q.NewerThan:
					plan.Skipped[fmt.Sprintf("older than %s", q.NewerThan)]++
					continue
				case q.HeaderName != "" && header(rec, q.HeaderName) != q.HeaderValue:
					plan.Skipped[fmt.Sprintf("without header %s=%s", q.HeaderName, q.HeaderValue)]++
					continue
				}
				to := cmp.Or(q.To, mapped)
				for _, h := range r.cfg.Redrive.OriginalTopicHeaders {
					if to != "" {
						break
					}
					to = header(rec, h)
				}
				pos := Position{rec.Topic, rec.Partition, rec.Offset}
				if to == "" {
					if noTarget == 0 {
						firstNoTarget = pos
					}
					noTarget++
					continue
				}
				items = append(items, Item{From: pos, To: to, Time: rec.Timestamp, Size: len(rec.Key) + len(rec.Value)})
			}
		}
	}
	if noTarget > 0 {
		return Plan{}, refuse("%d records of %s name no original topic (first: %s; looked in headers %v and replay.redrive.targets): pass --to TOPIC",
			noTarget, q.Topic, firstNoTarget, r.cfg.Redrive.OriginalTopicHeaders)
	}
	slices.SortStableFunc(items, func(a, b Item) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.From.Partition, b.From.Partition), cmp.Compare(a.From.Offset, b.From.Offset))
	})
	if q.Limit > 0 && len(items) > q.Limit {
		plan.Skipped[fmt.Sprintf("beyond --limit %d", q.Limit)] += len(items) - q.Limit
		items = items[:q.Limit]
	}
	for i := range items {
		items[i].Seq = uint64(i)
	}
	plan.Items = items
	return plan, nil
}
