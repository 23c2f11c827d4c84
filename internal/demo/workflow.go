// Package demo generates realistic commerce traffic for weft: buy-online-
// pickup-in-store (BOPIS) orders whose events flow over Kafka topics, mixed
// across three encodings, with an exact manifest of the faults it injected
// so that end-to-end tests can check weft's findings exactly.
//
// The workflow tables (EventTypes, Steps and their SLAs, StuckSteps) are
// the ones weft's built-in workflows use. Plan builds a run's records and
// manifest without a broker; a Generator produces them, then live traffic.
// Consumers run the shop's services as consumer groups of that traffic,
// each reading its UpstreamTopics, one falling behind and one stopping, so
// that queue health shows application lag.
//
// # Version vectors
//
// Every event carries a version vector: its parents' vectors merged
// (pointwise max; the parent is the cause, plus, for the event that
// resolves a race, the other racer), with the producing service's entry
// bumped to one past that service's last event for the order. So each
// service's own counters run 1, 2, 3… with no hole, and a healthy order
// ends with one event that dominates all others.
//
// # Faults and findings
//
// Each faulty order has exactly one fault (a Kind) and must raise exactly
// one finding kind, ExpectedFinding(kind), and nothing else; healthy orders
// raise nothing. Apart from its fault, an order completes normally: it
// reaches a terminal event before Now and no step outlasts its SLA (except
// stuck, and lost whose hole may).
//
//	fault                  finding              what the records show
//	stuck                  stuck                no event after a step for ≥ 2×SLA, no terminal event
//	lost                   gap                  a middle event never produced; the next event names it
//	                                            and its vector carries the lost counter
//	duplicate              —                    one record produced twice, byte-identical
//	out_of_order           —                    records produced shuffled, event times unchanged
//	race                   concurrent_conflict  PickedUp ∥ PickupExpired; the follower merges both
//	payment_failed         —                    retries exhausted, PaymentFailed (+ DLQ copy), cancelled
//	orphan                 orphan               a causation id that no event has; vector intact
//	causality_violation    causality_violation  an event's vector lacks its cause's last bump
//	conflicting_duplicate  duplicate            same event id and idempotency key, other amount
//	missing_compensation   invariant_violation  cancelled after PaymentAuthorized, no PaymentVoided
//	divergence             divergence           InventoryReleased after, and concurrent with,
//	                                            OrderCompleted: two maximal events
//
// The Kind constants document each fault's exact mutation.
package demo

import (
	"slices"
	"time"
)

// Service names: the CloudEvents source of each producing service, also the
// keys of the version-vector header.
const (
	ServiceOrders        = "orders"
	ServiceInventory     = "inventory"
	ServiceFulfillment   = "fulfillment"
	ServicePickup        = "pickup"
	ServicePayments      = "payments"
	ServiceNotifications = "notifications"
)

// Base topic names; TopicNames adds the configured prefix and suffix.
const (
	TopicOrders        = "orders"
	TopicInventory     = "inventory"
	TopicFulfillment   = "fulfillment"
	TopicPickup        = "pickup"
	TopicPayments      = "payments"
	TopicNotifications = "notifications"
	// TopicPaymentsDLQ receives a copy of every PaymentFailed record.
	TopicPaymentsDLQ = "payments.dlq"
)

// Event types of the BOPIS, expiry and async-payment workflows.
const (
	OrderPlaced           = "OrderPlaced"
	InventoryReserved     = "InventoryReserved"
	PaymentRequested      = "PaymentRequested"
	PaymentRetryScheduled = "PaymentRetryScheduled"
	PaymentAuthorized     = "PaymentAuthorized"
	PaymentDeclined       = "PaymentDeclined"
	PaymentFailed         = "PaymentFailed"
	FulfillmentStarted    = "FulfillmentStarted"
	ReadyForPickup        = "ReadyForPickup"
	CustomerNotified      = "CustomerNotified"
	PickedUp              = "PickedUp"
	PaymentCaptured       = "PaymentCaptured"
	OrderCompleted        = "OrderCompleted"
	PickupExpired         = "PickupExpired"
	InventoryReleased     = "InventoryReleased"
	PaymentVoided         = "PaymentVoided"
	OrderCancelled        = "OrderCancelled"
)

// Step names: the state an order is in after an event, named after the
// event that entered it (OrderPlaced enters "placed").
const (
	StepPlaced                = "placed"
	StepInventoryReserved     = "inventory_reserved"
	StepPaymentRequested      = "payment_requested"
	StepPaymentRetryScheduled = "payment_retry_scheduled"
	StepPaymentAuthorized     = "payment_authorized"
	StepPaymentDeclined       = "payment_declined"
	StepPaymentFailed         = "payment_failed"
	StepFulfillmentStarted    = "fulfillment_started"
	StepReadyForPickup        = "ready_for_pickup"
	StepCustomerNotified      = "customer_notified"
	StepPickedUp              = "picked_up"
	StepPaymentCaptured       = "payment_captured"
	StepPickupExpired         = "pickup_expired"
	StepInventoryReleased     = "inventory_released"
	StepPaymentVoided         = "payment_voided"
	StepCompleted             = "completed"
	StepCancelled             = "cancelled"
)

// EventType describes one event type: who produces it, where, and which
// step it moves the order into.
type EventType struct {
	// Name is the event type, e.g. "OrderPlaced".
	Name string `json:"name"`
	// Service is the producing service (the CloudEvents source).
	Service string `json:"service"`
	// Topic is the base topic name it is produced to (before prefix/suffix).
	Topic string `json:"topic"`
	// Step is the step the order is in after this event.
	Step string `json:"step"`
}

var eventTypes = []EventType{
	{OrderPlaced, ServiceOrders, TopicOrders, StepPlaced},
	{InventoryReserved, ServiceInventory, TopicInventory, StepInventoryReserved},
	{PaymentRequested, ServicePayments, TopicPayments, StepPaymentRequested},
	{PaymentRetryScheduled, ServicePayments, TopicPayments, StepPaymentRetryScheduled},
	{PaymentAuthorized, ServicePayments, TopicPayments, StepPaymentAuthorized},
	{PaymentDeclined, ServicePayments, TopicPayments, StepPaymentDeclined},
	{PaymentFailed, ServicePayments, TopicPayments, StepPaymentFailed},
	{FulfillmentStarted, ServiceFulfillment, TopicFulfillment, StepFulfillmentStarted},
	{ReadyForPickup, ServiceFulfillment, TopicFulfillment, StepReadyForPickup},
	{CustomerNotified, ServiceNotifications, TopicNotifications, StepCustomerNotified},
	{PickedUp, ServicePickup, TopicPickup, StepPickedUp},
	{PaymentCaptured, ServicePayments, TopicPayments, StepPaymentCaptured},
	{OrderCompleted, ServiceOrders, TopicOrders, StepCompleted},
	{PickupExpired, ServicePickup, TopicPickup, StepPickupExpired},
	{InventoryReleased, ServiceInventory, TopicInventory, StepInventoryReleased},
	{PaymentVoided, ServicePayments, TopicPayments, StepPaymentVoided},
	{OrderCancelled, ServiceOrders, TopicOrders, StepCancelled},
}

// Step is one state of the order workflow with its SLA: how long an order
// may stay in the step before weft reports it stuck.
type Step struct {
	// Name is the step name, e.g. "ready_for_pickup".
	Name string `json:"name"`
	// EnteredBy is the event type that moves an order into this step.
	EnteredBy string `json:"entered_by"`
	// SLA is the longest a healthy order stays in the step; zero for
	// terminal steps.
	SLA time.Duration `json:"sla"`
	// Terminal is true for the steps an order ends in (completed, cancelled).
	Terminal bool `json:"terminal"`
}

// steps is the step/SLA table; see Steps.
var steps = []Step{
	{StepPlaced, OrderPlaced, 5 * time.Minute, false},
	{StepInventoryReserved, InventoryReserved, 5 * time.Minute, false},
	{StepPaymentRequested, PaymentRequested, 5 * time.Minute, false},
	{StepPaymentRetryScheduled, PaymentRetryScheduled, 15 * time.Minute, false},
	{StepPaymentAuthorized, PaymentAuthorized, 10 * time.Minute, false},
	{StepPaymentDeclined, PaymentDeclined, 5 * time.Minute, false},
	{StepPaymentFailed, PaymentFailed, 5 * time.Minute, false},
	{StepFulfillmentStarted, FulfillmentStarted, 30 * time.Minute, false},
	{StepReadyForPickup, ReadyForPickup, 10 * time.Minute, false},
	{StepCustomerNotified, CustomerNotified, 60 * time.Minute, false},
	{StepPickedUp, PickedUp, 10 * time.Minute, false},
	{StepPaymentCaptured, PaymentCaptured, 5 * time.Minute, false},
	{StepPickupExpired, PickupExpired, 15 * time.Minute, false},
	{StepInventoryReleased, InventoryReleased, 5 * time.Minute, false},
	{StepPaymentVoided, PaymentVoided, 5 * time.Minute, false},
	{StepCompleted, OrderCompleted, 0, true},
	{StepCancelled, OrderCancelled, 0, true},
}

// stuckSteps are the steps a stuck fault leaves orders in; a run with at
// least len(stuckSteps) stuck orders covers every one of them.
var stuckSteps = []string{
	StepPlaced,
	StepInventoryReserved,
	StepPaymentAuthorized,
	StepFulfillmentStarted,
	StepReadyForPickup,
	StepCustomerNotified,
	StepPickedUp,
	StepPaymentCaptured,
	StepPickupExpired,
	StepPaymentRequested,
	StepPaymentRetryScheduled,
}

// EventTypes returns the event-type table (a copy).
func EventTypes() []EventType { return slices.Clone(eventTypes) }

// LookupEventType returns the table entry for an event type name.
func LookupEventType(name string) (EventType, bool) {
	for _, et := range eventTypes {
		if et.Name == name {
			return et, true
		}
	}
	return EventType{}, false
}

// Steps returns the step/SLA table weft's built-in BOPIS workflow uses
// (a copy), in workflow order:
//
//	step                     entered by             SLA
//	placed                   OrderPlaced            5m
//	inventory_reserved       InventoryReserved      5m
//	payment_requested        PaymentRequested       5m
//	payment_retry_scheduled  PaymentRetryScheduled  15m
//	payment_authorized       PaymentAuthorized      10m
//	payment_declined         PaymentDeclined        5m
//	payment_failed           PaymentFailed          5m
//	fulfillment_started      FulfillmentStarted     30m
//	ready_for_pickup         ReadyForPickup         10m
//	customer_notified        CustomerNotified       60m
//	picked_up                PickedUp               10m
//	payment_captured         PaymentCaptured        5m
//	pickup_expired           PickupExpired          15m
//	inventory_released       InventoryReleased      5m
//	payment_voided           PaymentVoided          5m
//	completed                OrderCompleted         terminal
//	cancelled                OrderCancelled         terminal
func Steps() []Step { return slices.Clone(steps) }

// LookupStep returns the table entry for a step name.
func LookupStep(name string) (Step, bool) {
	for _, s := range steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// SLAs returns step name → SLA for every non-terminal step.
func SLAs() map[string]time.Duration {
	m := make(map[string]time.Duration, len(steps))
	for _, s := range steps {
		if !s.Terminal {
			m[s.Name] = s.SLA
		}
	}
	return m
}

// StepOf returns the step an event of the given type moves an order into,
// or "" for an unknown type.
func StepOf(eventType string) string {
	et, _ := LookupEventType(eventType)
	return et.Step
}

// IsTerminal reports whether an event of the given type ends an order.
func IsTerminal(eventType string) bool {
	s, ok := LookupStep(StepOf(eventType))
	return ok && s.Terminal
}

// StuckSteps returns the steps a stuck fault can leave an order in: every
// non-terminal BOPIS step, the expiry path's pickup_expired and the async
// payment's payment_requested and payment_retry_scheduled.
func StuckSteps() []string { return slices.Clone(stuckSteps) }

// sla returns the SLA of a step (0 if unknown or terminal).
func sla(step string) time.Duration {
	s, _ := LookupStep(step)
	return s.SLA
}

// serviceOf and topicOf return the producing service and base topic of an
// event type.
func serviceOf(typ string) string { et, _ := LookupEventType(typ); return et.Service }
func topicOf(typ string) string   { et, _ := LookupEventType(typ); return et.Topic }
