package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/testenv"
	"github.com/weft-sh/weft/queuehealth"
)

// TestWhyOnTheDemo is the proof of "why is it stuck?" on the demo: the
// shop's services consume the demo's traffic in their own consumer groups
// (fulfillment far behind, notifications stopped, the others keeping up),
// the real tap stores it, queue health samples the groups, and every stuck
// order of the manifest gets the reason its owner's group calls for:
//
//   - the owner's group reads the trigger's topic and stopped, or lags and
//     has not reached the trigger (Kafka's committed offset says): not-delivered;
//   - it reads the topic and got past the trigger: no-answer;
//   - the owner emitted the trigger itself: no-answer;
//   - nobody of the owner reads the topic: no-consumer.
//
// Then one order's trigger is dead-lettered (copied to the demo's DLQ topic
// with an error header, as a service would): dead-lettered; and the stopped
// group catches up without answering: its orders become no-answer, the
// same findings.
func TestWhyOnTheDemo(t *testing.T) {
	brokers := testenv.Kafka(t)
	chCfg := testenv.ClickHouse(t)
	name := testenv.Name(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	dcfg := demo.DefaultConfig()
	dcfg.Seed = 20261203
	dcfg.Orders = 150
	dcfg.Now = time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	dcfg.Topics = demo.TopicNames{Suffix: "." + name}
	dcfg.Live.Rate = 0
	dcfg.Consumers.GroupPrefix = name + "."
	dcfg.Consumers.LaggingRate = 0.001 // one record, then the next in 1,000 s
	dcfg.Consumers.StopAfter = time.Millisecond
	require.NoError(t, dcfg.Validate())

	cfg := DefaultConfig()
	cfg.Kafka.Brokers = brokers
	cfg.ClickHouse = chCfg
	cfg.Collector.Group = "weft_" + name
	cfg.Collector.Topics.Include = []string{".*" + regexp.QuoteMeta("."+name)}
	cfg.Collector.Topics.RefreshInterval = time.Second
	cfg.Collector.Batch.FlushInterval = 100 * time.Millisecond
	cfg.Collector.Lag.DLQPattern = `.*(\.|-|_)(dlq|dead-letter|deadletter)\.` + regexp.QuoteMeta(name)
	// The groups carry the test's prefix: each service's is mapped.
	cfg.Consistency.Services = map[string]consistency.Service{}
	for _, g := range dcfg.ConsumerGroups() {
		cfg.Consistency.Services[g.Service] = consistency.Service{Groups: []string{regexp.QuoteMeta(g.Group)}}
	}
	require.NoError(t, cfg.Validate())

	// 1. The services start on empty topics; the stopped one leaves at once.
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer prod.Close()
	adm := kadm.NewClient(prod)
	gen, err := demo.New(dcfg, prod, zerolog.Nop())
	require.NoError(t, err)
	require.NoError(t, gen.EnsureTopics(ctx, adm, 3))
	cons, err := demo.NewConsumers(dcfg, []kgo.Opt{kgo.SeedBrokers(brokers...)}, zerolog.Nop())
	require.NoError(t, err)
	require.NoError(t, cons.Start(ctx))
	consCtx, stopCons := context.WithCancel(ctx)
	consDone := make(chan struct{})
	go func() { defer close(consDone); _ = cons.Run(consCtx) }()
	defer func() { stopCons(); <-consDone; _ = cons.Shutdown(context.Background()) }()
	groups := map[string]demo.ConsumerGroup{} // by service
	for _, g := range cons.Groups() {
		groups[g.Service] = g
	}
	stopped, lagging := groups[dcfg.Consumers.Stopping], groups[dcfg.Consumers.Lagging]
	require.Eventually(t, func() bool {
		d, err := adm.DescribeGroups(ctx, stopped.Group)
		return err == nil && d[stopped.Group].State == "Empty"
	}, 30*time.Second, 50*time.Millisecond, "%s left its group", stopped.Group)

	// 2. The history flows through them and into the tap.
	manifest, err := gen.RunHistory(ctx)
	require.NoError(t, err)
	stuckFaults := manifest.FaultsOf(demo.KindStuck)
	require.NotEmpty(t, stuckFaults)
	store, err := chstore.Open(ctx, chCfg)
	require.NoError(t, err)
	defer store.Close()
	require.NoError(t, store.Migrate(ctx))
	reg := prometheus.NewRegistry()
	tap, err := collector.New(cfg.Collector.Config, cfg.Kafka, store, collector.Settings{Logger: zerolog.Nop(), Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, tap.Start(ctx))
	tapCtx, stopTap := context.WithCancel(ctx)
	tapDone := make(chan struct{})
	go func() { defer close(tapDone); _ = tap.Run(tapCtx) }()
	defer func() { stopTap(); <-tapDone; _ = tap.Shutdown(context.Background()) }()
	conn := testenv.Conn(t)
	storedRecords := func() uint64 {
		var n uint64
		_ = conn.QueryRow(ctx, "SELECT count() FROM "+store.Table("events")+" FINAL").Scan(&n)
		return n
	}
	require.Eventually(t, func() bool { return storedRecords() == uint64(manifest.Records()) },
		90*time.Second, 200*time.Millisecond, "all %d records stored", manifest.Records())

	// 3. Queue health, once the services that keep up read everything and
	// the lagging one read its one record.
	mon, err := queuehealth.New(cfg.Collector.Lag, cfg.Collector.tapped(), cfg.Kafka, store, queuehealth.Settings{Logger: zerolog.Nop()})
	require.NoError(t, err)
	require.NoError(t, mon.Start(ctx))
	defer func() { _ = mon.Shutdown(context.Background()) }()
	committed := func(group string) kadm.OffsetResponses {
		r, err := adm.FetchOffsets(ctx, group)
		require.NoError(t, err)
		return r
	}
	require.Eventually(t, func() bool {
		rep, err := mon.Sample(ctx)
		if err != nil {
			return false
		}
		for _, g := range rep.Groups {
			if s := serviceOf(groups, g.Group); s != "" && groups[s].Behavior == demo.BehaviorKeepsUp && g.LagMessages > 0 {
				return false
			}
		}
		var read int64
		committed(lagging.Group).Each(func(o kadm.OffsetResponse) { read += o.At })
		return read == 1
	}, 60*time.Second, 250*time.Millisecond, "the services that keep up caught up; %s read one record", lagging.Group)

	// 4. The detector explains every stuck order.
	engine, err := newEngine(cfg, store)
	require.NoError(t, err)
	det := consistency.NewDetector(engine, cfg.Consistency.Interval, consistency.Windows{Grace: time.Second, Convergence: time.Second},
		consistency.Settings{Logger: zerolog.Nop(), Registerer: reg})
	pass := func() {
		t.Helper()
		for {
			res, err := det.Pass(ctx)
			require.NoError(t, err)
			if !res.More {
				return
			}
		}
	}
	pass()
	rep, err := stuckReport(ctx, engine, consistency.Filter{})
	require.NoError(t, err)
	require.Equal(t, "detector", rep.Source)
	require.Len(t, rep.Orders, len(stuckFaults), "every stuck order and no other")

	ws := consistency.Builtin()
	fault := map[string]demo.Fault{}
	for _, f := range stuckFaults {
		fault[f.OrderID] = f
	}
	lagCommits := committed(lagging.Group)
	expect := func(s consistency.StuckOrder) (reason, group, state string) {
		f := fault[s.OrderID]
		w := ws[slices.IndexFunc(ws, func(w consistency.Workflow) bool { return w.Name == s.Workflow })]
		step, _ := w.Step(s.Step)
		et, _ := demo.LookupEventType(f.EventType)
		topic := dcfg.Topics.Name(et.Topic)
		g, ok := groups[step.Owner]
		switch {
		case ok && slices.Contains(g.Topics, topic) && g.Behavior == demo.BehaviorStopped:
			return consistency.ReasonNotDelivered, g.Group, "Empty"
		case ok && slices.Contains(g.Topics, topic) && g.Behavior == demo.BehaviorLagging:
			o, _ := lagCommits.Lookup(topic, s.Why.Trigger.Partition)
			if o.At > s.Why.Trigger.Offset {
				return consistency.ReasonNoAnswer, g.Group, "Stable"
			}
			return consistency.ReasonNotDelivered, g.Group, "Stable"
		case ok && slices.Contains(g.Topics, topic):
			return consistency.ReasonNoAnswer, g.Group, "Stable"
		case et.Service == step.Owner:
			return consistency.ReasonNoAnswer, "", ""
		}
		return consistency.ReasonNoConsumer, "", ""
	}
	byReason := map[string]int{}
	var notified []consistency.StuckOrder // stuck waiting on the stopped service
	var answered consistency.StuckOrder   // one delivered, no answer, from a group that keeps up
	for _, s := range rep.Orders {
		f, ok := fault[s.OrderID]
		require.True(t, ok, "%s was injected as stuck", s.OrderID)
		require.NotNil(t, s.Why, s.OrderID)
		require.NotNil(t, s.Why.Trigger, s.OrderID)
		assert.Equal(t, f.EventID, s.Why.Trigger.EventID, "%s: the trigger is the event that entered %s", s.OrderID, f.Step)
		reason, group, state := expect(s)
		byReason[reason]++
		assert.Equal(t, reason, s.Reason, "%s in %s/%s waiting on %s: %s", s.OrderID, s.Workflow, s.Step, s.Owner, s.Why.Text)
		if group != "" {
			require.NotEmpty(t, s.Why.Groups, s.OrderID)
			assert.Equal(t, group, s.Why.Groups[0].Group, s.OrderID)
			assert.Equal(t, state, s.Why.Groups[0].State, s.OrderID)
		}
		switch {
		case reason == consistency.ReasonNotDelivered && state == "Empty":
			notified = append(notified, s)
			assert.Contains(t, s.Why.Text, stopped.Group+" has not read "+s.Why.Trigger.String()+" yet: ")
			assert.Contains(t, s.Why.Text, "group Empty: no member is running")
		case reason == consistency.ReasonNotDelivered:
			assert.Contains(t, s.Why.Text, "group Stable with 1 member")
		case reason == consistency.ReasonNoAnswer && group != "" && answered.OrderID == "":
			answered = s
		}
	}
	t.Logf("stuck orders by reason: %v", byReason)
	assert.Equal(t, byReason, rep.Reasons)
	require.NotEmpty(t, notified, "orders wait on the stopped service")
	require.NotZero(t, byReason[consistency.ReasonNotDelivered]-len(notified), "orders wait on the lagging service")
	require.NotEmpty(t, answered.OrderID, "orders wait on services that keep up")
	assertStuckGauge(t, reg, byReason)

	// 5. The same through the command line, the API and weft order.
	out, err := execWeft(t, "stuck", "--clickhouse", chCfg.Addr[0], "--database", chCfg.Database)
	require.NoError(t, err, out)
	assert.Contains(t, out, "REASON")
	assert.Contains(t, out, "Why: ")
	assert.Contains(t, out, notified[0].Why.Text)
	out, err = execWeft(t, "stuck", "-o", "json", "--reason", consistency.ReasonNotDelivered, "--clickhouse", chCfg.Addr[0], "--database", chCfg.Database)
	require.NoError(t, err, out)
	var cli StuckReport
	require.NoError(t, json.Unmarshal([]byte(out), &cli))
	assert.Len(t, cli.Orders, byReason[consistency.ReasonNotDelivered])
	_, err = execWeft(t, "stuck", "--reason", "slow", "--clickhouse", chCfg.Addr[0], "--database", chCfg.Database)
	assert.ErrorContains(t, err, `"slow" is not one of not-delivered, no-answer, dead-lettered, no-consumer, unknown`)

	authn, tokens := testAuth(t, "why", nil, nil, nil)
	srv := httptest.NewServer(newAPI(engine, store, nil, nil, authn, prometheus.NewRegistry(), zerolog.Nop(), false, nil, nil, nil))
	defer srv.Close()
	viewer := tokens[auth.Viewer]
	var api StuckReport
	getJSON(t, srv.URL+"/api/v1/stuck?reason="+consistency.ReasonNotDelivered, viewer, &api)
	assert.Len(t, api.Orders, byReason[consistency.ReasonNotDelivered])
	var ord OrderReport
	getJSON(t, srv.URL+"/api/v1/orders/"+notified[0].OrderID, viewer, &ord)
	require.Len(t, ord.Stuck, 1)
	assert.Equal(t, consistency.ReasonNotDelivered, ord.Stuck[0].Reason)
	assert.Equal(t, notified[0].Why.Text, ord.Stuck[0].Why.Text)
	out, err = execWeft(t, "order", notified[0].OrderID, "--clickhouse", chCfg.Addr[0], "--database", chCfg.Database)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Why: not-delivered — "+notified[0].Why.Text)
	assert.Contains(t, out, "group:       "+stopped.Group+" has not read it")

	// weft services suggest, without the mapping (the groups' prefix
	// defeats the default rule): the groups named after each service,
	// among those reading the topics of the events it must answer — the
	// mapping this test wrote by hand.
	bare, err := newEngine(Config{Collector: cfg.Collector}, store)
	require.NoError(t, err)
	sug, err := bare.SuggestServices(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	suggested := map[string]consistency.Service{}
	for _, sg := range sug.Services {
		assert.Empty(t, sg.Mapped, sg.Service)
		suggested[sg.Service] = consistency.Service{Groups: []string{}}
		for _, g := range sg.Suggested {
			suggested[sg.Service] = consistency.Service{Groups: append(suggested[sg.Service].Groups, regexp.QuoteMeta(g))}
		}
	}
	assert.Equal(t, cfg.Consistency.Services, suggested)
	fulfillment := sug.Services[slices.IndexFunc(sug.Services, func(sg consistency.ServiceGroups) bool { return sg.Service == demo.ServiceFulfillment })]
	assert.Equal(t, []string{demo.PaymentAuthorized}, fulfillment.Triggers, "FulfillmentStarted is its own event")
	assert.Equal(t, []string{dcfg.Topics.Name(demo.TopicPayments)}, fulfillment.Topics)
	var text strings.Builder
	printServices(&text, sug)
	assert.Contains(t, text.String(), "    fulfillment:\n      # answers PaymentAuthorized on "+dcfg.Topics.Name(demo.TopicPayments)+", read by ")
	assert.Contains(t, text.String(), "      groups: ['"+regexp.QuoteMeta(lagging.Group)+"']\n")

	// 6. A service dead-letters the trigger of an order it had read.
	trig := answered.Why.Trigger
	rec := readRecord(ctx, t, brokers, trig.Topic, trig.Partition, trig.Offset)
	rec.Topic = dcfg.Topics.Name(demo.TopicPaymentsDLQ)
	rec.Partition, rec.Offset = 0, 0
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "dlq-reason", Value: []byte(answered.Owner + ": handler failed 5 times")})
	require.NoError(t, prod.ProduceSync(ctx, rec).FirstErr())
	require.Eventually(t, func() bool { return storedRecords() == uint64(manifest.Records()+1) },
		60*time.Second, 200*time.Millisecond, "the dead letter stored")
	pass()
	ord = OrderReport{}
	getJSON(t, srv.URL+"/api/v1/orders/"+answered.OrderID, viewer, &ord)
	require.Len(t, ord.Stuck, 1)
	assert.Equal(t, consistency.ReasonDeadLettered, ord.Stuck[0].Reason)
	assert.Equal(t, trig.Type+" was dead-lettered to "+rec.Topic+"/0@"+strconv.FormatInt(ord.Stuck[0].Why.DeadLetter.Offset, 10)+": "+
		answered.Owner+": handler failed 5 times", ord.Stuck[0].Why.Text)

	// 7. The stopped service's group catches up without answering: its
	// orders are delivered now, the same findings, first seen as before.
	before, err := engine.Findings(ctx, consistency.FindingFilter{Kind: consistency.KindStuck, Status: "active"})
	require.NoError(t, err)
	firstSeen := map[string]time.Time{}
	for _, f := range before {
		firstSeen[f.ID] = f.FirstSeen
	}
	ends, err := adm.ListEndOffsets(ctx, stopped.Topics...)
	require.NoError(t, err)
	resp, err := adm.CommitOffsets(ctx, stopped.Group, ends.Offsets())
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	_, err = mon.Sample(ctx)
	require.NoError(t, err)
	pass()
	after, err := engine.Findings(ctx, consistency.FindingFilter{Kind: consistency.KindStuck, Status: "active"})
	require.NoError(t, err)
	require.Len(t, after, len(before), "no finding opened or resolved")
	for _, f := range after {
		assert.Equal(t, firstSeen[f.ID], f.FirstSeen, "%s is the same finding", f.OrderID)
		if slices.ContainsFunc(notified, func(s consistency.StuckOrder) bool { return s.OrderID == f.OrderID }) {
			assert.Equal(t, consistency.ReasonNoAnswer, f.Reason, f.OrderID)
			assert.Contains(t, f.Summary, stopped.Group+" read ")
		}
	}
}

// serviceOf is the service whose group is group ("" for none).
func serviceOf(groups map[string]demo.ConsumerGroup, group string) string {
	for s, g := range groups {
		if g.Group == group {
			return s
		}
	}
	return ""
}

// assertStuckGauge checks weft_stuck_orders, summed by reason, against want.
func assertStuckGauge(t *testing.T, reg *prometheus.Registry, want map[string]int) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != "weft_stuck_orders" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && m.GetGauge().GetValue() > 0 {
					got[l.GetValue()] += int(m.GetGauge().GetValue())
				}
			}
		}
	}
	assert.Equal(t, want, got, "weft_stuck_orders by reason")
}

func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(withToken(req, token))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v), url)
}

// readRecord reads one record from the broker.
func readRecord(ctx context.Context, t *testing.T, brokers []string, topic string, partition int32, offset int64) *kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}))
	require.NoError(t, err)
	defer cl.Close()
	for {
		fs := cl.PollRecords(ctx, 1)
		require.NoError(t, ctx.Err())
		if recs := fs.Records(); len(recs) > 0 {
			r := recs[0]
			return &kgo.Record{Key: r.Key, Value: r.Value, Headers: slices.Clone(r.Headers), Timestamp: r.Timestamp}
		}
	}
}
