package scalegen

import (
	"fmt"
	"time"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/demo"
)

// eventType is one event type as the generator knows it: a small code used
// inside the SQL (orders carry their plan as an Array(UInt8) of codes), the
// producing service and base topic (from the demo's table, the one weft's
// workflows and demo share), and the dwell before the order's next event.
type eventType struct {
	code             uint8
	name             string
	service, topic   string
	dwellLo, dwellHi time.Duration
	// sla is the SLA of the step this event type moves an order into (the
	// longest of the non-terminal steps it enters over all workflows); 0
	// when every step it enters is terminal.
	sla time.Duration
}

// Event type codes, in the order of the SQL arrays built from eventTypes.
const (
	cOrderPlaced uint8 = iota + 1
	cInventoryReserved
	cPaymentRequested
	cPaymentRetryScheduled
	cPaymentAuthorized
	cPaymentDeclined
	cPaymentFailed
	cFulfillmentStarted
	cReadyForPickup
	cCustomerNotified
	cPickedUp
	cPaymentCaptured
	cOrderCompleted
	cPickupExpired
	cInventoryReleased
	cPaymentVoided
	cOrderCancelled
)

// dwell is how long an order waits after an event of each type before the
// next one, the demo's history timing: seconds to minutes, always at least
// slaMargin under the SLA of the step the event entered, so an order that
// is merely in flight never looks stuck. PaymentRetryScheduled waits its
// backoff instead (30 s << attempt-1, plus up to 10 s), and PickupExpired
// comes 45–46 min after CustomerNotified (the pickup hold).
var dwell = map[string][2]time.Duration{
	demo.OrderPlaced:        {2 * time.Second, 40 * time.Second},
	demo.InventoryReserved:  {1 * time.Second, 20 * time.Second},
	demo.PaymentRequested:   {5 * time.Second, 60 * time.Second},
	demo.PaymentAuthorized:  {30 * time.Second, 5 * time.Minute},
	demo.PaymentDeclined:    {5 * time.Second, 30 * time.Second},
	demo.PaymentFailed:      {5 * time.Second, 30 * time.Second},
	demo.FulfillmentStarted: {3 * time.Minute, 25 * time.Minute},
	demo.ReadyForPickup:     {5 * time.Second, 60 * time.Second},
	demo.CustomerNotified:   {5 * time.Minute, 40 * time.Minute},
	demo.PickedUp:           {5 * time.Second, 60 * time.Second},
	demo.PaymentCaptured:    {1 * time.Second, 10 * time.Second},
	demo.PickupExpired:      {10 * time.Second, 2 * time.Minute},
	demo.InventoryReleased:  {5 * time.Second, 30 * time.Second},
	demo.PaymentVoided:      {1 * time.Second, 10 * time.Second},
}

// Pickup hold and retry backoff (see dwell).
const (
	holdLo, holdHi     = 45 * time.Minute, 46 * time.Minute
	backoffBase        = 30 * time.Second
	backoffJitter      = 10 * time.Second
	maxRetries         = 3
	defaultDwellLo     = 1 * time.Second
	defaultDwellHi     = 10 * time.Second
	dlqTopic           = "payments.dlq"
	topicPrefix        = "commerce."
	partitionsPerTopic = 12
	partitionsDLQ      = 3
)

// slaMargin keeps generated ages away from SLAs: an in-flight order is at
// least this far under its SLA at the watermark, a stuck one at least this
// far over it, so the stuck count does not depend on a few seconds of clock.
const slaMargin = time.Minute

// eventTypes returns the table, codes 1…17 in the order of the constants,
// with the SLAs of the given workflows.
func eventTypes(workflows []consistency.Workflow) ([]eventType, error) {
	names := []string{demo.OrderPlaced, demo.InventoryReserved, demo.PaymentRequested, demo.PaymentRetryScheduled,
		demo.PaymentAuthorized, demo.PaymentDeclined, demo.PaymentFailed, demo.FulfillmentStarted,
		demo.ReadyForPickup, demo.CustomerNotified, demo.PickedUp, demo.PaymentCaptured, demo.OrderCompleted,
		demo.PickupExpired, demo.InventoryReleased, demo.PaymentVoided, demo.OrderCancelled}
	out := make([]eventType, len(names))
	for i, n := range names {
		dt, ok := demo.LookupEventType(n)
		if !ok {
			return nil, fmt.Errorf("scalegen: event type %s is not in the demo's table", n)
		}
		et := eventType{code: uint8(i + 1), name: n, service: dt.Service, topic: dt.Topic,
			dwellLo: defaultDwellLo, dwellHi: defaultDwellHi}
		if d, ok := dwell[n]; ok {
			et.dwellLo, et.dwellHi = d[0], d[1]
		}
		for _, w := range workflows {
			for _, st := range w.Steps {
				for _, on := range st.On {
					if on == n && !st.Terminal {
						et.sla = max(et.sla, st.SLA)
					}
				}
			}
		}
		out[i] = et
	}
	return out, checkDwell(out)
}

// checkDwell verifies that every wait the generator can produce after an
// event stays slaMargin under the SLA of the step that event entered.
func checkDwell(ts []eventType) error {
	for _, et := range ts {
		if et.sla == 0 {
			continue
		}
		longest := et.dwellHi
		switch et.code {
		case cCustomerNotified:
			longest = max(longest, holdHi)
		case cPaymentRetryScheduled:
			longest = backoffBase<<(maxRetries-1) + backoffJitter
		}
		if longest > et.sla-slaMargin {
			return fmt.Errorf("scalegen: after %s an order may wait %s, not %s under the step's SLA %s",
				et.name, longest, slaMargin, et.sla)
		}
	}
	return nil
}
