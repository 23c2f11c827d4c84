package consistency

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/chstore"
)

// TestExplain: each reason, from the order, its trigger, a dead letter and
// one queue-health sample, with the text the on-call engineer reads.
func TestExplain(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 2, 25, 0, time.UTC)
	sampled := at.Add(-10 * time.Second)
	order := StuckOrder{OrderID: "o-1", Workflow: "bopis", Step: "payment_authorized", Owner: "fulfillment",
		Expects: []string{"FulfillmentStarted"}}
	trig := &Record{Topic: "payments", Partition: 2, Offset: 9, EventID: "e-9", Type: "PaymentAuthorized", Service: "payments",
		EventTime: at.Add(-20 * time.Minute)}
	row := func(group, state string, members int32, committed, lag int64, lagSeconds float64) chstore.QueueHealthRow {
		return chstore.QueueHealthRow{Group: group, Topic: "payments", Partition: 2, CommittedOffset: committed,
			LagMessages: lag, LagSeconds: lagSeconds, GroupState: state, Members: members}
	}
	topic := chstore.QueueHealthRow{Topic: "payments", Partition: 2, Members: -1}
	gm, err := newGroupMap(map[string]Service{"pickup": {Groups: []string{"collect-.*"}}}, []string{"weft"})
	require.NoError(t, err)
	snap := func(rows ...chstore.QueueHealthRow) *queueSnapshot {
		return newQueueSnapshot(sampled, append([]chstore.QueueHealthRow{topic}, rows...), gm, 2*time.Minute)
	}
	for _, tc := range []struct {
		name   string
		order  StuckOrder
		trig   *Record
		dl     *DeadLetter
		snap   *queueSnapshot
		reason string
		text   string
		check  func(t *testing.T, w Why)
	}{
		{name: "not delivered", snap: snap(row("fulfillment-svc", "Stable", 2, 5, 3402, 720), row("weft", "Stable", 1, 100, 0, 0)),
			reason: ReasonNotDelivered,
			text:   "fulfillment-svc has not read payments/2@9 yet: 3,402 records, 12m behind, group Stable with 2 members",
			check: func(t *testing.T, w Why) {
				require.Len(t, w.Groups, 1, "weft's own group is nobody's")
				assert.Equal(t, GroupPosition{Group: "fulfillment-svc", State: "Stable", Condition: "stable", Members: 2,
					CommittedOffset: 5, LagMessages: 3402, LagSeconds: 720}, w.Groups[0])
				assert.Equal(t, sampled, w.SampledAt)
			}},
		{name: "committed at the trigger: it is the next record to read", snap: snap(row("fulfillment-svc", "Stable", 1, 9, 1, 30)),
			reason: ReasonNotDelivered, text: "fulfillment-svc has not read payments/2@9 yet: 1 record, 30s behind, group Stable with 1 member"},
		{name: "never committed, lag unknown, stopped", snap: snap(row("fulfillment", "Empty", 0, -1, 12, -1)),
			reason: ReasonNotDelivered,
			text:   "fulfillment has not read payments/2@9 yet (it never committed on payments/2): 12 records, group Empty: no member is running"},
		{name: "rebalancing", snap: snap(row("fulfillment-svc", "PreparingRebalance", 3, 2, 40, 90)),
			reason: ReasonNotDelivered, text: "fulfillment-svc has not read payments/2@9 yet: 40 records, 1m behind, group rebalancing (PreparingRebalance) with 3 members"},
		{name: "one of two groups behind", snap: snap(row("fulfillment-a", "Stable", 1, 50, 0, 0), row("fulfillment-b", "Stable", 1, 4, 46, 100)),
			reason: ReasonNotDelivered, text: "fulfillment-b has not read payments/2@9 yet: 46 records, 1m behind, group Stable with 1 member",
			check: func(t *testing.T, w Why) {
				require.Len(t, w.Groups, 2)
				assert.Equal(t, []bool{false, true}, []bool{w.Groups[0].Read, w.Groups[1].Read}, "unread first")
			}},
		{name: "delivered, no answer", snap: snap(row("fulfillment-svc", "Stable", 2, 10, 0, 0)),
			reason: ReasonNoAnswer,
			text:   "fulfillment-svc read payments/2@9 but fulfillment emitted no FulfillmentStarted and dead-lettered nothing: look at fulfillment"},
		{name: "the owner emitted the trigger itself", snap: snap(row("orders-svc", "Stable", 1, 3, 7, 10)),
			order:  StuckOrder{OrderID: "o-1", Workflow: "bopis", Step: "fulfillment_started", Owner: "payments", Expects: []string{"ReadyForPickup"}},
			reason: ReasonNoAnswer,
			text:   "payments emitted PaymentAuthorized (payments/2@9) itself and has not followed with ReadyForPickup: look at payments",
			check:  func(t *testing.T, w Why) { assert.True(t, w.SelfEmitted) }},
		{name: "no consumer of the owner", snap: snap(row("orders-svc", "Stable", 1, 3, 7, 10), row("weft", "Stable", 1, 10, 0, 0)),
			reason: ReasonNoConsumer,
			text:   "no consumer group of fulfillment reads payments; read by orders-svc (map fulfillment's groups under consistency.services, or see weft services suggest)",
			check:  func(t *testing.T, w Why) { assert.Equal(t, []string{"orders-svc"}, w.Readers) }},
		{name: "no consumer at all, one gone", snap: func() *queueSnapshot {
			s := snap()
			s.gone = map[string][]chstore.QueueHealthGroupSeen{"payments": {{Group: "fulfillment-svc", Topic: "payments", LastSeen: at.Add(-time.Hour)}}}
			return s
		}(),
			reason: ReasonNoConsumer,
			text:   "no consumer group of fulfillment reads payments; fulfillment-svc read it until 2026-12-03 08:02:25Z and is gone; no group reads it at all"},
		{name: "a configured service: only its patterns count",
			order:  StuckOrder{OrderID: "o-1", Workflow: "bopis", Step: "customer_notified", Owner: "pickup", Expects: []string{"PickedUp"}},
			snap:   snap(row("pickup-svc", "Stable", 1, 3, 7, 10), row("collect-eu", "Stable", 1, 10, 0, 0)),
			reason: ReasonNoAnswer, text: "collect-eu read payments/2@9 but pickup emitted no PickedUp and dead-lettered nothing: look at pickup"},
		{name: "a configured service without a matching group",
			order:  StuckOrder{OrderID: "o-1", Workflow: "bopis", Step: "customer_notified", Owner: "pickup", Expects: []string{"PickedUp"}},
			snap:   snap(row("pickup-svc", "Stable", 1, 3, 7, 10)),
			reason: ReasonNoConsumer, text: "no consumer group of pickup reads payments; read by pickup-svc, none matching consistency.services.pickup.groups"},
		{name: "dead-lettered trigger", snap: snap(row("fulfillment-svc", "Stable", 2, 10, 0, 0)),
			dl: &DeadLetter{Record: Record{Topic: "payments.dlq", Partition: 0, Offset: 3, EventID: "e-9", Type: "PaymentAuthorized"},
				OfTrigger: true, Error: "retries_exhausted", ErrorHeader: "dlq-reason"},
			reason: ReasonDeadLettered, text: "PaymentAuthorized was dead-lettered to payments.dlq/0@3: retries_exhausted"},
		{name: "another event dead-lettered, no error header", snap: nil,
			dl:     &DeadLetter{Record: Record{Topic: "orders-dlq", Partition: 1, Offset: 0, EventID: "e-1", Type: "OrderPlaced"}},
			reason: ReasonDeadLettered, text: "the order's OrderPlaced was dead-lettered to orders-dlq/1@0 (no error header)"},
		{name: "no owner", order: StuckOrder{Workflow: "returns", Step: "requested"}, snap: snap(),
			reason: ReasonUnknown, text: "unknown: step requested of workflow returns names no owner"},
		{name: "trigger not stored", trig: &Record{}, snap: snap(), reason: ReasonUnknown,
			text: "unknown: the event that entered payment_authorized is not stored"},
		{name: "no sample", snap: newQueueSnapshot(time.Time{}, nil, gm, time.Minute), reason: ReasonUnknown,
			text: "unknown: no queue-health sample yet (a weft run with collector.lag.enabled takes them)"},
		{name: "queue health not read", snap: &queueSnapshot{err: errors.New("not read: connection refused")}, reason: ReasonUnknown,
			text: "unknown: queue health not read: connection refused"},
		{name: "stale sample", snap: newQueueSnapshot(at.Add(-time.Hour), []chstore.QueueHealthRow{topic}, gm, 2*time.Minute),
			reason: ReasonUnknown,
			text:   "unknown: the newest queue-health sample is 1h00m old (collector.lag.enabled off, or weft run stopped?)"},
		{name: "topic not measured", snap: newQueueSnapshot(sampled, []chstore.QueueHealthRow{{Topic: "orders"}}, gm, time.Minute),
			reason: ReasonUnknown, text: "unknown: queue health does not measure topic payments (collector.topics)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := order
			if tc.order.Step != "" {
				o = tc.order
			}
			tr := trig
			if tc.trig != nil {
				tr = nil // "not stored"
			}
			w := explain(o, tr, tc.dl, tc.snap, at)
			assert.Equal(t, tc.reason, w.Reason)
			assert.Equal(t, tc.text, w.Text)
			assert.Equal(t, at, w.At)
			if tc.check != nil {
				tc.check(t, w)
			}
		})
	}
}

func TestGroupMap(t *testing.T) {
	gm, err := newGroupMap(map[string]Service{"pickup": {Groups: []string{"collect-.*", "store-app"}}, "orders": {}}, []string{"weft"})
	require.NoError(t, err)
	for _, tc := range []struct {
		service, group string
		owns           bool
	}{
		{"fulfillment", "fulfillment", true},
		{"fulfillment", "fulfillment-svc", true},
		{"fulfillment", "eu.fulfillment-svc", false},
		{"pickup", "collect-eu", true},
		{"pickup", "store-app", true},
		{"pickup", "store-app-2", false /* whole names */},
		{"pickup", "pickup-svc", false},
		{"orders", "orders-svc", false},
		{"weft", "weft", false},
		{"", "x", false},
	} {
		assert.Equal(t, tc.owns, gm.owns(tc.service, tc.group), "%s owns %s", tc.service, tc.group)
	}
	_, err = newGroupMap(map[string]Service{"pickup": {Groups: []string{"("}}}, nil)
	assert.ErrorContains(t, err, "consistency.services.pickup.groups[0]")
}

func TestServicesValidate(t *testing.T) {
	c := Default()
	c.Services = map[string]Service{"fulfilment": {Groups: []string{"f-.*"}}, "pickup": {Groups: []string{"("}}}
	err := c.Validate()
	require.Error(t, err)
	assert.ErrorContains(t, err, `services.fulfilment: no workflow step names "fulfilment" as its owner`)
	assert.ErrorContains(t, err, "services.pickup.groups[0]")
	c.Services = map[string]Service{"fulfillment": {Groups: []string{"fulfillment-.*"}}}
	assert.NoError(t, c.Validate())
}

func TestErrorOf(t *testing.T) {
	for _, tc := range []struct {
		headers     map[string]string
		name, value string
	}{
		{map[string]string{"dlq-reason": "retries_exhausted", "dlq-original-topic": "payments"}, "dlq-reason", "retries_exhausted"},
		{map[string]string{"kafka_dlt-exception-message": "NPE", "kafka_dlt-original-topic": "payments"}, "kafka_dlt-exception-message", "NPE"},
		{map[string]string{"__connect.errors.exception.message": "bad schema"}, "__connect.errors.exception.message", "bad schema"},
		{map[string]string{"X-Failure-Reason": "timeout"}, "X-Failure-Reason", "timeout"},
		{map[string]string{"Error": ""}, "", ""},
		{nil, "", ""},
	} {
		name, value := errorOf(tc.headers)
		assert.Equal(t, tc.name, name, "%v", tc.headers)
		assert.Equal(t, tc.value, value, "%v", tc.headers)
	}
}

func TestThousandsAndAgo(t *testing.T) {
	assert.Equal(t, []string{"0", "999", "1,000", "3,402", "1,234,567", "-12,345"},
		[]string{thousands(0), thousands(999), thousands(1000), thousands(3402), thousands(1234567), thousands(-12345)})
	assert.Equal(t, []string{"45s", "12m", "1h05m", "2d03h"},
		[]string{ago(45 * time.Second), ago(12*time.Minute + 40*time.Second), ago(65 * time.Minute), ago(51 * time.Hour)})
}
