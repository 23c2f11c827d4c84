package consistency

import (
	"context"
	"sort"
	"time"

	"github.com/weft-sh/weft/internal/chstore"
)

// ChainEvent is one event of an order's causal chain.
type ChainEvent struct {
	Topic         string            `json:"topic"`
	Partition     int32             `json:"partition"`
	Offset        int64             `json:"offset"`
	EventID       string            `json:"event_id"`
	Type          string            `json:"type"`
	Service       string            `json:"service"`
	EventTime     time.Time         `json:"event_time"`
	IngestedAt    time.Time         `json:"ingested_at"`
	CausationID   string            `json:"causation_id,omitempty"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	TraceID       string            `json:"trace_id,omitempty"`
	VersionVector map[string]uint64 `json:"version_vector,omitempty"`
	// IdempotencyKey and PayloadHash tell redeliveries from conflicting duplicates.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	PayloadHash    string `json:"payload_hash,omitempty"`
	// ReplayOf is the topic/partition@offset of the record this one is a
	// replay of, by weft replay or redrive (its replay headers); "" for
	// other records. ReplayJob is the job.
	ReplayOf     string `json:"replay_of,omitempty"`
	ReplayJob    string `json:"replay_job,omitempty"`
	SpanID       string `json:"span_id,omitempty"`
	ParentSpanID string `json:"parent_span_id,omitempty"`
	// Parent is the event this one hangs under in the chain, and Via how
	// that edge was found: explicit (causation id), trace (trace parent
	// span) or inferred (workflow step order).
	Parent string `json:"parent,omitempty"`
	Via    string `json:"via,omitempty"`
	// Depth is the number of hops from a root of the chain.
	Depth int `json:"depth"`
}

// Chain returns an order's events in causal order: every event after the
// event it names as its cause, ties and roots ordered by event time. Events
// whose cause is unknown start a root of their own. Redeliveries of the same
// record (same topic, partition, offset) appear once.
func (e *Engine) Chain(ctx context.Context, orderID string) ([]ChainEvent, error) {
	m, err := e.chains(ctx, []string{orderID})
	if err != nil {
		return nil, err
	}
	return m[orderID], nil
}

// Chains is Chain for several orders, read in one query (the tracing
// component places a pass's new events with it).
func (e *Engine) Chains(ctx context.Context, orderIDs []string) (map[string][]ChainEvent, error) {
	return e.chains(ctx, orderIDs)
}

// chains reads the chains of several orders in one query.
func (e *Engine) chains(ctx context.Context, orderIDs []string) (map[string][]ChainEvent, error) {
	out := map[string][]ChainEvent{}
	err := e.store.OrderEvents(ctx, orderIDs, func(r chstore.EventRow) {
		out[r.OrderID] = append(out[r.OrderID], ChainEvent{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			EventID: r.EventID, Type: r.Type, Service: r.Service, EventTime: r.EventTime, IngestedAt: r.IngestedAt,
			CausationID: r.CausationID, CorrelationID: r.CorrelationID, TraceID: r.TraceID, SpanID: r.SpanID, ParentSpanID: r.ParentSpanID,
			VersionVector: r.VersionVector, IdempotencyKey: r.IdempotencyKey, PayloadHash: r.PayloadHash,
			ReplayOf: r.ReplayOf, ReplayJob: r.ReplayJob})
	})
	if err != nil {
		return nil, err
	}
	// Replay marks count only for jobs weft planned (replayjobs.go).
	if err := e.trustReplays(ctx, out); err != nil {
		return nil, err
	}
	for id, evs := range out {
		for i := range evs {
			evs[i] = evs[i].replayIdentity()
		}
		out[id] = stitch(e.ranks, causalOrder(evs))
	}
	return out, nil
}

// causalOrder sorts events topologically by causation id (Kahn's algorithm,
// smallest event time first). Cycles cannot stall it: what is left when no
// event is ready is released in time order.
func causalOrder(evs []ChainEvent) []ChainEvent {
	less := func(a, b ChainEvent) bool {
		if !a.EventTime.Equal(b.EventTime) {
			return a.EventTime.Before(b.EventTime)
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	}
	sort.SliceStable(evs, func(i, j int) bool { return less(evs[i], evs[j]) })
	present := map[string]bool{}
	for _, ev := range evs {
		present[ev.EventID] = true
	}
	placed := map[string]int{} // event id → depth
	out := make([]ChainEvent, 0, len(evs))
	done := make([]bool, len(evs))
	for len(out) < len(evs) {
		progressed := false
		for i, ev := range evs {
			if done[i] {
				continue
			}
			cause := ev.CausationID
			if cause != "" && cause != ev.EventID && present[cause] {
				d, ok := placed[cause]
				if !ok {
					continue
				}
				ev.Depth = d + 1
			}
			done[i] = true
			if _, seen := placed[ev.EventID]; !seen {
				placed[ev.EventID] = ev.Depth
			}
			out = append(out, ev)
			progressed = true
			break // restart so the earliest ready event always goes next
		}
		if !progressed { // a causation cycle: release the earliest waiting event
			for i := range evs {
				if !done[i] {
					done[i] = true
					placed[evs[i].EventID] = 0
					out = append(out, evs[i])
					break
				}
			}
		}
	}
	return out
}

// checkBatch bounds the orders of one query by order id (findings, chains).
const checkBatch = 2000

// chainEvents is the events one read of chains aims at. A chain event in
// memory costs ~2.8 KB (clickhouse-go's scanned strings and version-vector
// maps), so a read holds ~28 MB whether its orders have ten events each or
// a thousand (an order redelivered over and over).
const chainEvents = 10_000

// chainSizer sizes reads of chains by their events: each read takes as
// many orders as the last read's events per order say fit in chainEvents,
// between one and checkBatch. The first read takes firstChainOrders.
type chainSizer struct{ next int }

const firstChainOrders = 250

func newChainSizer() chainSizer { return chainSizer{next: firstChainOrders} }

// take splits the next read's orders off ids.
func (s *chainSizer) take(ids []string) (read, rest []string) {
	n := min(len(ids), max(s.next, 1))
	return ids[:n], ids[n:]
}

// saw sizes the next read after one of orders orders with events events.
func (s *chainSizer) saw(orders, events int) {
	if orders == 0 {
		return
	}
	s.next = min(max(chainEvents*orders/max(events, 1), 1), checkBatch)
}

func countEvents(chains map[string][]ChainEvent) int {
	n := 0
	for _, evs := range chains {
		n += len(evs)
	}
	return n
}
