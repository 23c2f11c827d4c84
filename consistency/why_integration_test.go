package consistency

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
	"github.com/weft-sh/weft/queuehealth"
)

// TestWhyFollowsTheConsumer: on the real broker and ClickHouse, a stuck
// order whose trigger its owner's consumer group has not read is
// "not-delivered"; when the group commits past the record without the
// service answering, the next pass makes the same finding "no-answer" (no
// new finding, first sighting and status kept); nothing is stored again
// while nothing changes, the figures are stored again after a minute on
// the injected clock; and when the record shows up in a dead-letter topic
// the order is "dead-lettered", with the error its header gives.
func TestWhyFollowsTheConsumer(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	name := testenv.Name(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The payments topic, five records; the fourth (offset 3) is the
	// order's PaymentAuthorized, which fulfillment must answer.
	topic, dlqTopic := "payments."+name, name+".payments.dlq"
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer cl.Close()
	for i := range 5 {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, `{"n":%d}`, i)}).FirstErr())
	}
	adm := kadm.NewClient(cl)
	group := "fulfillment-" + name // the default rule: a group whose name starts with the owner's
	commit := func(offset int64) {
		t.Helper()
		var o kadm.Offsets
		o.AddOffset(topic, 0, offset, -1)
		resp, err := adm.CommitOffsets(ctx, group, o)
		require.NoError(t, err)
		require.NoError(t, resp.Error())
	}
	commit(0) // the service started, read nothing yet

	now := time.Now().UTC().Truncate(time.Millisecond)
	ev := func(order, id, typ, svc, topic string, off int64, at time.Time) event.Event {
		return event.Event{Topic: topic, Offset: off, EventID: id, Type: typ, Service: svc, OrderID: order,
			EventTime: at, RecordTime: at, PayloadHash: id}
	}
	require.NoError(t, store.InsertEvents(ctx, []event.Event{
		ev("o-stuck", "e1", "OrderPlaced", "orders", "orders."+name, 0, now.Add(-20*time.Minute)),
		ev("o-stuck", "e2", "InventoryReserved", "inventory", "inventory."+name, 0, now.Add(-19*time.Minute)),
		ev("o-stuck", "e3", "PaymentAuthorized", "payments", topic, 3, now.Add(-18*time.Minute)),
		ev("o-new", "n1", "OrderPlaced", "orders", "orders."+name, 1, now), // the stream's clock is now
		// Stuck waiting on payments, whose trigger is on a topic no group
		// of payments reads.
		ev("o-unread", "u1", "OrderPlaced", "orders", "orders."+name, 2, now.Add(-20*time.Minute)),
		ev("o-unread", "u2", "InventoryReserved", "inventory", topic, 1, now.Add(-19*time.Minute)),
	}, time.Now().UTC(), ""))

	kc := kafkaconn.Default()
	kc.Brokers = brokers
	qcfg := queuehealth.Default()
	qcfg.Groups.Include = []string{regexp.QuoteMeta(group)}
	mon, err := queuehealth.New(qcfg, queuehealth.Topics{Include: []string{regexp.QuoteMeta(topic)}}, kc, store, queuehealth.Settings{Logger: zerolog.Nop()})
	require.NoError(t, err)
	require.NoError(t, mon.Start(ctx))
	defer func() { require.NoError(t, mon.Shutdown(context.Background())) }()
	sample := func() {
		t.Helper()
		_, err := mon.Sample(ctx)
		require.NoError(t, err)
	}

	e := NewEngine(store, Builtin())
	require.NoError(t, e.SetDiagnosis(Diagnosis{SampleMaxAge: 2 * time.Minute}))
	clock := clockwork.NewFakeClockAt(time.Now())
	e.wall = clock.Now
	reg := prometheus.NewRegistry()
	d := NewDetector(e, time.Minute, Default().Windows, Settings{Registerer: reg})
	stuckFinding := func() (Finding, Why) {
		t.Helper()
		fs, err := e.Findings(ctx, FindingFilter{Kind: KindStuck, OrderID: "o-stuck", Status: "active"})
		require.NoError(t, err)
		require.Len(t, fs, 1)
		var evd stuckEvidence
		require.NoError(t, json.Unmarshal(fs[0].Evidence, &evd))
		require.NotNil(t, evd.Why)
		assert.Equal(t, fs[0].Reason, evd.Why.Reason, "the column and the evidence agree")
		return fs[0], *evd.Why
	}
	gauge := func(reason string) float64 {
		return testutil.ToFloat64(d.alerts.stuck.WithLabelValues("bopis", "payment_authorized", reason))
	}

	// Not read yet: not delivered.
	sample()
	res, err := d.Pass(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, res.Opened)
	first, why := stuckFinding()
	assert.Equal(t, ReasonNotDelivered, why.Reason)
	assert.Equal(t, &Record{Topic: topic, Partition: 0, Offset: 3, EventID: "e3", Type: "PaymentAuthorized", Service: "payments",
		EventTime: now.Add(-18 * time.Minute)}, why.Trigger)
	require.Len(t, why.Groups, 1)
	assert.Equal(t, GroupPosition{Group: group, State: "Empty", Condition: "empty", Members: 0, CommittedOffset: 0, Read: false,
		LagMessages: 5, LagSeconds: why.Groups[0].LagSeconds}, why.Groups[0])
	assert.Equal(t, group+" has not read "+topic+"/0@3 yet: 5 records, "+ago(time.Duration(why.Groups[0].LagSeconds*float64(time.Second)))+
		" behind, group Empty: no member is running", why.Text)
	assert.Contains(t, first.Summary, why.Text)
	assert.Equal(t, 1.0, gauge(ReasonNotDelivered))
	assert.Equal(t, 1.0, testutil.ToFloat64(d.alerts.stuck.WithLabelValues("bopis", "inventory_reserved", ReasonNoConsumer)))
	assert.Equal(t, 2.0, testutil.ToFloat64(d.alerts.open.WithLabelValues(KindStuck)))
	assert.InDelta(t, 19*time.Minute.Seconds(), testutil.ToFloat64(d.alerts.oldest.WithLabelValues("bopis")), 5,
		"o-unread, in inventory_reserved since 19m ago; the clock is the newest event, a few seconds ago")

	// `weft stuck` reads the reason and its evidence.
	c, err := e.Clock(ctx)
	require.NoError(t, err)
	listed, err := e.Stuck(ctx, c, Filter{})
	require.NoError(t, err)
	require.Equal(t, "detector", listed.Source)
	require.Len(t, listed.Orders, 2)
	assert.Equal(t, map[string]int{ReasonNotDelivered: 1, ReasonNoConsumer: 1}, listed.Reasons)
	assert.Equal(t, "o-unread", listed.Orders[0].OrderID, "longest in its step first")
	assert.Equal(t, ReasonNoConsumer, listed.Orders[0].Reason)
	assert.Equal(t, "no consumer group of payments reads "+topic+"; read by "+group+
		" (map payments's groups under consistency.services, or see weft services suggest)", listed.Orders[0].Why.Text)
	assert.Equal(t, ReasonNotDelivered, listed.Orders[1].Reason)
	assert.Equal(t, why.Text, listed.Orders[1].Why.Text)
	none, err := e.Stuck(ctx, c, Filter{Reason: ReasonNoAnswer})
	require.NoError(t, err)
	assert.Empty(t, none.Orders)
	live, err := e.Stuck(ctx, c, Filter{Live: true, Reason: ReasonNotDelivered})
	require.NoError(t, err)
	require.Len(t, live.Orders, 1, "evaluated now, explained the same")
	assert.Equal(t, why.Text, live.Orders[0].Why.Text)

	// Nothing moved: nothing stored again.
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Reexplained)

	// The service reads the record (commits past it) and does not answer.
	commit(4)
	sample()
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Opened, "the same finding")
	assert.Equal(t, 1, res.Reexplained, "o-unread's story did not change")
	f, why := stuckFinding()
	assert.Equal(t, first.ID, f.ID)
	assert.Equal(t, first.FirstSeen, f.FirstSeen)
	assert.Equal(t, StatusOpen, f.Status)
	assert.Equal(t, ReasonNoAnswer, why.Reason)
	assert.Equal(t, group+" read "+topic+"/0@3 but fulfillment emitted no FulfillmentStarted and dead-lettered nothing: look at fulfillment", why.Text)
	assert.Equal(t, []GroupPosition{{Group: group, State: "Empty", Condition: "empty", Members: 0, CommittedOffset: 4, Read: true,
		LagMessages: 1, LagSeconds: why.Groups[0].LagSeconds}}, why.Groups)
	assert.Equal(t, 0.0, gauge(ReasonNotDelivered))
	assert.Equal(t, 1.0, gauge(ReasonNoAnswer))

	// Same story a moment later: not stored again; a minute later its
	// figures are.
	sample()
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Reexplained)
	clock.Advance(whyRefresh + time.Second)
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Reexplained, "figures a minute old are stored again")
	_, refreshed := stuckFinding()
	assert.Equal(t, ReasonNoAnswer, refreshed.Reason)
	assert.Equal(t, clock.Now().UTC(), refreshed.At)

	// The service dead-letters the record: the order changed (stored on
	// the injected clock, which runs ahead of the wall clock by now).
	ingested := clock.Now().UTC()
	clock.Advance(time.Second)
	dlq := ev("o-stuck", "e3", "PaymentAuthorized", "payments", dlqTopic, 0, now.Add(-18*time.Minute))
	dlq.Headers = map[string]string{"dlq-reason": "fulfillment: no pickup store for SKU 42", "dlq-original-topic": topic}
	require.NoError(t, store.InsertEvents(ctx, []event.Event{dlq}, ingested, ""))
	res, err = d.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Checked)
	f, why = stuckFinding()
	assert.Equal(t, first.ID, f.ID)
	assert.Equal(t, ReasonDeadLettered, why.Reason)
	assert.Equal(t, &DeadLetter{Record: Record{Topic: dlqTopic, Partition: 0, Offset: 0, EventID: "e3", Type: "PaymentAuthorized",
		EventTime: now.Add(-18 * time.Minute)}, OfTrigger: true, Error: "fulfillment: no pickup store for SKU 42", ErrorHeader: "dlq-reason"}, why.DeadLetter)
	assert.Equal(t, "PaymentAuthorized was dead-lettered to "+dlqTopic+"/0@0: fulfillment: no pickup store for SKU 42", why.Text)
	assert.Equal(t, topic, why.Trigger.Topic, "the trigger is the original, not its copy")
	assert.Equal(t, 1.0, gauge(ReasonDeadLettered))
}

// TestReexplainPages: with more stuck orders than a page, each pass
// explains the next page again, and comes back to the first; without any
// queue-health sample every order is "unknown", saying so.
func TestReexplainPages(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	var evs []event.Event
	for i, id := range []string{"o1", "o2", "o3"} {
		evs = append(evs, event.Event{Topic: "orders", Offset: int64(i), EventID: id + "-placed", Type: "OrderPlaced", Service: "orders",
			OrderID: id, EventTime: now.Add(-time.Hour), RecordTime: now.Add(-time.Hour), PayloadHash: id})
	}
	evs = append(evs, event.Event{Topic: "orders", Offset: 3, EventID: "new", Type: "OrderPlaced", Service: "orders",
		OrderID: "o-new", EventTime: now, RecordTime: now, PayloadHash: "new"})
	require.NoError(t, store.InsertEvents(ctx, evs, time.Now().UTC(), ""))
	e := NewEngine(store, Builtin())
	clock := clockwork.NewFakeClockAt(time.Now())
	e.wall = clock.Now
	d := NewDetector(e, time.Minute, Default().Windows, Settings{})
	d.whyPage = 2
	res, err := d.Pass(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, res.Opened)
	fs, err := e.Findings(ctx, FindingFilter{Kind: KindStuck, Status: "active"})
	require.NoError(t, err)
	for _, f := range fs {
		assert.Equal(t, ReasonUnknown, f.Reason)
		assert.Contains(t, f.Summary, "unknown: no queue-health sample yet")
	}
	var got []int
	for range 3 {
		clock.Advance(whyRefresh + time.Second) // every explanation is old by now
		res, err := d.Pass(ctx)
		require.NoError(t, err)
		got = append(got, res.Reexplained)
	}
	assert.Equal(t, []int{2, 1, 2}, got, "o1 and o2, then o3, then o1 and o2 again")

	// weft order: from the finding while the detector runs; evaluated and
	// explained now once it stopped.
	chain, err := e.Chain(ctx, "o1")
	require.NoError(t, err)
	c, err := e.Clock(ctx)
	require.NoError(t, err)
	for _, stopped := range []bool{false, true} {
		if stopped {
			clock.Advance(maxSilence(time.Minute) + time.Second)
		}
		got, err := e.StuckOf(ctx, c, "o1", chain)
		require.NoError(t, err)
		require.Len(t, got, 1, "stopped: %v", stopped)
		assert.Equal(t, "placed", got[0].Step)
		assert.Equal(t, ReasonUnknown, got[0].Reason)
		require.NotNil(t, got[0].Why)
		assert.Equal(t, clock.Now().UTC(), got[0].Why.At, "explained at the last pass, or now")
	}
	none, err := e.StuckOf(ctx, c, "o-new", nil)
	require.NoError(t, err)
	assert.Empty(t, none)
}
