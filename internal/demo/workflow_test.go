package demo

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSLATable pins the SLAs weft's built-in workflow uses.
func TestSLATable(t *testing.T) {
	want := map[string]time.Duration{
		StepPlaced:                5 * time.Minute,
		StepInventoryReserved:     5 * time.Minute,
		StepPaymentAuthorized:     10 * time.Minute,
		StepFulfillmentStarted:    30 * time.Minute,
		StepReadyForPickup:        10 * time.Minute,
		StepCustomerNotified:      60 * time.Minute,
		StepPickedUp:              10 * time.Minute,
		StepPaymentCaptured:       5 * time.Minute,
		StepPickupExpired:         15 * time.Minute,
		StepPaymentRequested:      5 * time.Minute,
		StepPaymentRetryScheduled: 15 * time.Minute,
		StepPaymentDeclined:       5 * time.Minute,
		StepPaymentFailed:         5 * time.Minute,
		StepInventoryReleased:     5 * time.Minute,
		StepPaymentVoided:         5 * time.Minute,
	}
	assert.Equal(t, want, SLAs())
	for _, st := range StuckSteps() {
		t.Run(st, func(t *testing.T) {
			s, ok := LookupStep(st)
			require.True(t, ok)
			assert.False(t, s.Terminal)
			assert.Positive(t, s.SLA)
		})
	}
}

func TestEventTypeTable(t *testing.T) {
	services := map[string]bool{ServiceOrders: true, ServiceInventory: true, ServiceFulfillment: true,
		ServicePickup: true, ServicePayments: true, ServiceNotifications: true}
	for _, et := range EventTypes() {
		t.Run(et.Name, func(t *testing.T) {
			assert.True(t, services[et.Service], "service %q", et.Service)
			assert.Equal(t, et.Service, et.Topic, "each service has its own topic")
			s, ok := LookupStep(et.Step)
			require.True(t, ok, "step %q", et.Step)
			assert.Equal(t, et.Name, s.EnteredBy)
		})
	}
	assert.Len(t, Steps(), len(EventTypes()))
	assert.True(t, IsTerminal(OrderCompleted))
	assert.True(t, IsTerminal(OrderCancelled))
	assert.False(t, IsTerminal(PickupExpired))
}

// TestDwellsWithinSLA: the generator's history timing keeps every healthy
// step well under its SLA, so healthy orders never look stuck.
func TestDwellsWithinSLA(t *testing.T) {
	tm := historyTiming()
	for st, sp := range tm.steps {
		assert.Less(t, sp.hi, sla(st), st)
	}
	assert.Less(t, tm.window.hi+tm.skew, sla(StepCustomerNotified))
	tm.worst = true
	assert.Less(t, tm.backoff(maxRetries, nil), sla(StepPaymentRetryScheduled))
}
