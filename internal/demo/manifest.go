package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Kind is a kind of injected fault.
type Kind string

// Fault kinds.
const (
	// KindStuck: the order stops after a step and never reaches a terminal
	// step; in history mode its last event is at least 2×SLA before Now.
	KindStuck Kind = "stuck"
	// KindLost: one middle event of an otherwise complete order is never
	// produced; later events still name it as their cause. The lost event
	// is never the first or the last of the chain, always the cause of the
	// next event (whose vector therefore carries the lost event's counter
	// for its service: a visible gap), and never an event a workflow
	// invariant requires of the terminal order (PickedUp, PaymentCaptured,
	// InventoryReleased, PaymentVoided), so a gap is the only finding.
	KindLost Kind = "lost"
	// KindDuplicate: one event is produced twice, byte-identical (same key,
	// value, headers and timestamp); the order still completes.
	KindDuplicate Kind = "duplicate"
	// KindOutOfOrder: the order's events are all produced, in a shuffled
	// order (event times unchanged); at least two events on the same topic
	// (hence partition) are inverted.
	KindOutOfOrder Kind = "out_of_order"
	// KindRace: PickedUp and PickupExpired are both produced, neither naming
	// the other as cause, with incomparable version vectors; the event that
	// follows (PaymentCaptured after PickedUp, or InventoryReleased after
	// PickupExpired) merges both racers' vectors, so the order converges and
	// ends with OrderCompleted or OrderCancelled.
	KindRace Kind = "race"
	// KindPaymentFailed: the async payment exhausts its retries, PaymentFailed
	// is produced (and copied to payments.dlq), and the order is cancelled.
	KindPaymentFailed Kind = "payment_failed"
	// KindOrphan: one event (never OrderPlaced) names as its causation id a
	// random event id that no event of the run has. Its vector is the true
	// one, derived from its real predecessor, so no counter is skipped and
	// causality is not violated.
	KindOrphan Kind = "orphan"
	// KindCausalityViolation: one event e, caused by c, carries a vector
	// that does not dominate c's: e's true vector with c's service's entry
	// lowered by one — the vector e would have had if caused by c's
	// predecessor (e's own entry is incremented as usual). c is never its
	// service's first event (the lowered entry stays ≥ 1, a counter that
	// service's events carry), e is of another service and is not the last
	// event, and the event after e derives its vector from e's true vector,
	// so it dominates both: no counter gap, no divergence, and (c, e) is
	// the order's only incomparable pair, never a conflicting one.
	KindCausalityViolation Kind = "causality_violation"
	// KindConflictingDuplicate: one non-terminal event that carries an
	// amount is produced twice with the same event id, idempotency key,
	// headers and event time, but the second copy's payload has a different
	// amount.
	KindConflictingDuplicate Kind = "conflicting_duplicate"
	// KindMissingCompensation: a pickup-expiry order (payment authorized) is
	// cancelled without PaymentVoided: PickupExpired → InventoryReleased →
	// OrderCancelled. Payments simply never emits the void, so no counter
	// is skipped.
	KindMissingCompensation Kind = "missing_compensation"
	// KindDivergence: a completed order after which inventory emits
	// InventoryReleased caused by PickedUp, its vector not including
	// OrderCompleted's (nor PaymentCaptured's): inventory believes the order
	// released, orders believes it completed. The order has two maximal
	// events, OrderCompleted and InventoryReleased; its last event in time
	// is InventoryReleased, after the terminal OrderCompleted.
	KindDivergence Kind = "divergence"
	// KindCancelRace: the customer cancels as the store hands the order
	// over — the canonical BOPIS race. After CustomerNotified, PickedUp
	// (pickup) and OrderCancelled (orders) are both produced, each caused
	// by CustomerNotified and neither seeing the other (incomparable
	// vectors). The cancellation wins: inventory releases the reservation
	// having seen both (its vector merges them) and payments voids the
	// authorization, so the order ends cancelled with one latest event,
	// its compensations done.
	KindCancelRace Kind = "cancel_race"
)

// Kinds returns every fault kind in a fixed order.
func Kinds() []Kind {
	return []Kind{KindStuck, KindLost, KindDuplicate, KindOutOfOrder, KindRace, KindPaymentFailed,
		KindOrphan, KindCausalityViolation, KindConflictingDuplicate, KindMissingCompensation, KindDivergence, KindCancelRace}
}

// ParseKind returns the kind named s ("-" may stand for "_", case is
// ignored).
func ParseKind(s string) (Kind, bool) {
	k := Kind(strings.ReplaceAll(strings.ToLower(s), "-", "_"))
	return k, slices.Contains(Kinds(), k)
}

// ExpectedFinding is the one finding kind weft must raise for an order
// with fault k, or "" for a fault that must raise none (the order is
// healthy as far as consistency goes); every other finding kind must stay
// silent for that order:
//
//	fault                  finding
//	stuck                  stuck
//	lost                   gap (not orphan: the gap explains the missing cause)
//	duplicate              "" (identical redelivery: counted, not flagged)
//	out_of_order           ""
//	race                   concurrent_conflict (PickedUp ∥ PickupExpired)
//	payment_failed         "" (a healthy failure path)
//	orphan                 orphan
//	causality_violation    causality_violation
//	conflicting_duplicate  duplicate
//	missing_compensation   invariant_violation (cancelled_payment_voided)
//	divergence             divergence
//	cancel_race            concurrent_conflict (PickedUp ∥ OrderCancelled)
//
// A healthy order (kind "") raises nothing either.
func ExpectedFinding(k Kind) string {
	switch k {
	case KindStuck:
		return "stuck"
	case KindLost:
		return "gap"
	case KindRace, KindCancelRace:
		return "concurrent_conflict"
	case KindOrphan:
		return "orphan"
	case KindCausalityViolation:
		return "causality_violation"
	case KindConflictingDuplicate:
		return "duplicate"
	case KindMissingCompensation:
		return "invariant_violation"
	case KindDivergence:
		return "divergence"
	}
	return ""
}

// Fault is one injected fault, exactly as produced.
//
// Per kind:
//   - stuck: Step is the step the order is stuck in (the step entered by its
//     last event), EventType/EventID name that last event.
//   - lost: EventType/EventID name the event that was never produced; Step is
//     the step it would have entered.
//   - duplicate: EventType/EventID name the event produced twice.
//   - out_of_order: Detail lists the event types in produced order.
//   - race: Step is customer_notified (where the race happens), EventType is
//     the losing branch's event (PickedUp or PickupExpired), Detail names both.
//   - payment_failed: EventType/EventID name the PaymentFailed event.
//   - orphan: EventType/EventID name the event whose cause is missing;
//     CausationID is the id it names, which no event has.
//   - causality_violation: EventType/EventID name the event with the wrong
//     vector, CausationID its cause (which its vector does not dominate);
//     Detail gives both vectors.
//   - conflicting_duplicate: EventType/EventID name the event produced twice
//     with different payloads; Detail gives the idempotency key and amounts.
//   - missing_compensation: Step is cancelled, EventType/EventID name the
//     OrderCancelled event (where the invariant is checked); the missing
//     event is PaymentVoided, which has no id since it never existed.
//   - divergence: Step is inventory_released, EventType/EventID name the
//     InventoryReleased that is concurrent with OrderCompleted.
//   - cancel_race: Step is customer_notified, EventType/EventID name the
//     OrderCancelled that did not see the PickedUp.
type Fault struct {
	Kind    Kind   `json:"kind"`
	OrderID string `json:"order_id"`
	// Step is the workflow step affected (see the per-kind notes).
	Step string `json:"step,omitempty"`
	// EventType is the event type affected (see the per-kind notes).
	EventType string `json:"event_type,omitempty"`
	// EventID is the id of the affected event, when there is one.
	EventID string `json:"event_id,omitempty"`
	// CausationID is the causation id the affected event carries (orphan,
	// causality_violation).
	CausationID string `json:"causation_id,omitempty"`
	// LastEventType is the type of the order's last produced event.
	LastEventType string `json:"last_event_type"`
	// LastEventAt is the event time of the order's last produced event.
	LastEventAt time.Time `json:"last_event_at"`
	// Detail explains the fault for a person.
	Detail string `json:"detail"`
}

// OrderSummary describes one generated order.
type OrderSummary struct {
	ID string `json:"id"`
	// Path is the workflow variant: payment mode and outcome, e.g.
	// "sync/completed", "async/expired", "async/declined", "async/failed",
	// "sync/race-cancelled".
	Path string `json:"path"`
	// Fault is the injected fault kind, "" for a healthy order.
	Fault         Kind   `json:"fault,omitempty"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
	// Events is the number of distinct events produced (lost ones excluded).
	Events int `json:"events"`
	// Records is the number of records produced, duplicates and DLQ copies included.
	Records       int       `json:"records"`
	FirstEventAt  time.Time `json:"first_event_at"`
	LastEventAt   time.Time `json:"last_event_at"`
	LastEventType string    `json:"last_event_type"`
	// Terminal reports whether the order reached completed or cancelled
	// (for a divergence or cancel_race fault the terminal event is not the
	// last one).
	Terminal bool `json:"terminal"`
	// Sparse reports whether some of the order's events are sparse
	// (EncodingMix.Sparse): plain JSON with the four required fields only.
	Sparse bool `json:"sparse,omitempty"`
	// KeyedByEmail reports whether the order's records are keyed by the
	// customer's e-mail address (PersonalData.KeyedByEmail).
	KeyedByEmail bool `json:"keyed_by_email,omitempty"`
}

// Manifest is the exact account of a run: every order, every injected fault
// and how many records went to each topic.
type Manifest struct {
	Seed int64 `json:"seed"`
	// Mode is "history", "live" or "history+live".
	Mode string `json:"mode"`
	// Now is the end of the history window (zero for a live-only manifest).
	Now time.Time `json:"now,omitzero"`
	// WindowStart is the start of the history window (zero for live).
	WindowStart time.Time      `json:"window_start,omitzero"`
	Orders      []OrderSummary `json:"orders"`
	// Healthy lists the ids of the orders without an injected fault.
	Healthy []string `json:"healthy"`
	Faults  []Fault  `json:"faults"`
	// Interrupted lists live orders cut short by cancellation: neither
	// healthy nor faulty, they may look stuck.
	Interrupted []string `json:"interrupted,omitempty"`
	// RecordsPerTopic counts records by full topic name, undecodable ones
	// included.
	RecordsPerTopic map[string]int `json:"records_per_topic"`
	// RecordsPerFormat counts the records of events by encoding
	// (event.Format values; undecodable records have none).
	RecordsPerFormat map[string]int `json:"records_per_format"`
	// Undecodable counts the records that cannot be decoded
	// (PersonalData.Undecodable): weft quarantines them.
	Undecodable int `json:"undecodable,omitempty"`
	// Consumers lists the services' consumer groups and how each consumes
	// (which one lags, which one stopped), when they ran (Consumers.Groups).
	Consumers []ConsumerGroup `json:"consumers,omitempty"`
}

func newManifest(seed int64, mode string) *Manifest {
	return &Manifest{
		Seed: seed, Mode: mode,
		Orders: []OrderSummary{}, Healthy: []string{}, Faults: []Fault{},
		RecordsPerTopic: map[string]int{}, RecordsPerFormat: map[string]int{},
	}
}

// Records returns the total number of records produced.
func (m *Manifest) Records() int {
	n := 0
	for _, c := range m.RecordsPerTopic {
		n += c
	}
	return n
}

// FaultsOf returns the faults of one kind, in manifest order.
func (m *Manifest) FaultsOf(k Kind) []Fault {
	var out []Fault
	for _, f := range m.Faults {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

// CountByKind returns the number of faults per kind (every kind present,
// zero included).
func (m *Manifest) CountByKind() map[Kind]int {
	c := make(map[Kind]int, len(Kinds()))
	for _, k := range Kinds() {
		c[k] = 0
	}
	for _, f := range m.Faults {
		c[f.Kind]++
	}
	return c
}

// GroupsWith returns the consumer groups that consume with behavior b.
func (m *Manifest) GroupsWith(b Behavior) []ConsumerGroup {
	var out []ConsumerGroup
	for _, g := range m.Consumers {
		if g.Behavior == b {
			out = append(out, g)
		}
	}
	return out
}

// Order returns the summary of an order by id.
func (m *Manifest) Order(id string) (OrderSummary, bool) {
	for _, o := range m.Orders {
		if o.ID == id {
			return o, true
		}
	}
	return OrderSummary{}, false
}

// Summary is a one-line account: orders, healthy, faults per kind, records.
func (m *Manifest) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d orders (%d healthy", len(m.Orders), len(m.Healthy))
	if len(m.Interrupted) > 0 {
		fmt.Fprintf(&b, ", %d interrupted", len(m.Interrupted))
	}
	b.WriteString("), faults:")
	counts := m.CountByKind()
	for _, k := range Kinds() {
		fmt.Fprintf(&b, " %s=%d", k, counts[k])
	}
	fmt.Fprintf(&b, ", %d records", m.Records())
	if m.Undecodable > 0 {
		fmt.Fprintf(&b, " (%d undecodable)", m.Undecodable)
	}
	return b.String()
}

// Merge appends another manifest's orders, faults and counts to m; the mode
// becomes "history+live" when the modes differ. m keeps its consumers, or
// takes o's when it has none.
func (m *Manifest) Merge(o *Manifest) {
	if o == nil {
		return
	}
	if m.Mode != o.Mode {
		m.Mode = "history+live"
	}
	m.Orders = append(m.Orders, o.Orders...)
	m.Healthy = append(m.Healthy, o.Healthy...)
	m.Faults = append(m.Faults, o.Faults...)
	m.Interrupted = append(m.Interrupted, o.Interrupted...)
	m.Undecodable += o.Undecodable
	if len(m.Consumers) == 0 {
		m.Consumers = o.Consumers
	}
	for _, k := range slices.Sorted(maps.Keys(o.RecordsPerTopic)) {
		m.RecordsPerTopic[k] += o.RecordsPerTopic[k]
	}
	for _, k := range slices.Sorted(maps.Keys(o.RecordsPerFormat)) {
		m.RecordsPerFormat[k] += o.RecordsPerFormat[k]
	}
}

// WriteJSON writes the manifest as indented JSON.
func (m *Manifest) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// add records a finished order: its summary and its fault.
func (m *Manifest) add(o *order) {
	m.Orders = append(m.Orders, o.summary())
	if o.kind == "" {
		m.Healthy = append(m.Healthy, o.id)
	} else {
		m.Faults = append(m.Faults, o.fault)
	}
}

// count records one produced record.
func (m *Manifest) count(em *emission) {
	m.RecordsPerTopic[em.rec.Topic]++
	if em.undecodable {
		m.Undecodable++
		return
	}
	m.RecordsPerFormat[string(em.format)]++
}
