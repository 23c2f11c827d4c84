package queuehealth

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestLagMonitorStuckGroup: an application group consumes and commits part
// of a topic, then stops committing while records keep arriving. The monitor
// must report its lag exactly in messages, in seconds from the timestamp of
// the first record it has not consumed, growing while it is stuck; the
// dead-letter topic's depth and oldest age; the produce rate; the rows in
// queue_health; the Prometheus metrics; and, after a restart of the
// monitor, a commit age that continues instead of starting over.
func TestLagMonitorStuckGroup(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	// Registered first, so it runs last, after every client is closed.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	name := testenv.Name(t)
	topic, dlq, group := "orders.lag_"+name, "payments.lag_"+name+".dlq", "app_"+name
	testenv.CreateTopic(t, brokers, topic, 2, nil)
	testenv.CreateTopic(t, brokers, dlq, 1, nil)
	now := time.Now().Truncate(time.Millisecond)
	base := now.Add(-10 * time.Minute)
	var recs []*kgo.Record
	for i := range 20 { // partition 0: one record a second from 10 minutes ago
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Timestamp: base.Add(time.Duration(i) * time.Second), Value: []byte(`{}`)})
	}
	for i := range 5 { // partition 1: five records 8 minutes old, never committed
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 1, Timestamp: base.Add(2*time.Minute + time.Duration(i)*time.Second), Value: []byte(`{}`)})
	}
	for _, age := range []time.Duration{time.Hour, 50 * time.Minute, 40 * time.Minute} {
		recs = append(recs, &kgo.Record{Topic: dlq, Timestamp: now.Add(-age), Value: []byte(`{}`)})
	}
	produceLag(ctx, t, brokers, recs...)

	// The application: consumes the topic, commits the first 8 records of
	// partition 0, then hangs without committing again (it stays a member).
	app, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	appClosed := false
	defer func() {
		if !appClosed {
			app.Close()
		}
	}()
	var p0 []*kgo.Record
	for len(p0) < 8 {
		fs := app.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		fs.EachRecord(func(r *kgo.Record) {
			if r.Partition == 0 {
				p0 = append(p0, r)
			}
		})
	}
	require.NoError(t, app.CommitRecords(ctx, p0[7]))
	// A second application in a KIP-848 group (the broker assigns): it
	// consumes and commits everything there is so far, then hangs too.
	app848, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group+"_848"), kgo.ConsumeTopics(topic),
		kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer app848.Close()
	for n := 0; n < 25; {
		n += len(app848.PollFetches(ctx).Records())
		require.NoError(t, ctx.Err())
	}
	require.NoError(t, app848.CommitUncommittedOffsets(ctx))

	cfg := Default()
	topics := Topics{Include: []string{regexp.QuoteMeta(topic)}} // the DLQ is found by the default dlq_pattern
	cfg.Groups.Include = []string{regexp.QuoteMeta(group) + "(_848)?"}
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	reg := prometheus.NewRegistry()
	m, err := New(cfg, topics, kc, store, Settings{Logger: zerolog.Nop(), Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, m.Start(ctx))
	defer func() { require.NoError(t, m.Shutdown(context.Background())) }()

	rep1, err := m.Sample(ctx)
	require.NoError(t, err)
	g := findGroup(t, rep1, group, topic)
	assert.Equal(t, "Stable", g.State)
	assert.Equal(t, int32(1), g.Members, "one application instance")
	assert.Equal(t, int64(12+5), g.LagMessages)
	require.Len(t, g.Partitions, 2)
	assert.Equal(t, PartitionLag{Partition: 0, StartOffset: 0, EndOffset: 20, CommittedOffset: 8, LagMessages: 12,
		LagSeconds: g.Partitions[0].LagSeconds}, g.Partitions[0])
	assert.Equal(t, int64(-1), g.Partitions[1].CommittedOffset, "never committed: lag from the start offset")
	assert.Equal(t, int64(5), g.Partitions[1].LagMessages)
	// The oldest unconsumed records: offset 8 of partition 0, offset 0 of partition 1.
	assert.InDelta(t, time.Since(recs[8].Timestamp).Seconds(), g.Partitions[0].LagSeconds, 3)
	assert.InDelta(t, rep1.At.Sub(recs[8].Timestamp).Seconds(), g.Partitions[0].LagSeconds, 1e-6)
	assert.InDelta(t, time.Since(recs[20].Timestamp).Seconds(), g.Partitions[1].LagSeconds, 3)
	assert.Equal(t, g.Partitions[0].LagSeconds, g.LagSeconds, "the group's lag is its worst partition's")
	d := findTopic(t, rep1, dlq)
	assert.True(t, d.DLQ)
	assert.Equal(t, int64(3), d.DepthMessages)
	assert.InDelta(t, rep1.At.Sub(now.Add(-time.Hour)).Seconds(), d.OldestAgeSeconds, 0.01, "age at the sample")
	caughtUp := findGroup(t, rep1, group+"_848", topic)
	assert.Equal(t, GroupLag{Group: group + "_848", State: "Stable", Members: 1, Topic: topic, Partitions: caughtUp.Partitions}, caughtUp)
	tp := findTopic(t, rep1, topic)
	assert.False(t, tp.DLQ)
	assert.Equal(t, int64(25), tp.DepthMessages)
	assert.Equal(t, -1.0, tp.ProduceRate, "no rate before a second sample")

	// Records keep arriving; the group does not commit.
	time.Sleep(1500 * time.Millisecond)
	newAt := time.Now()
	produceLag(ctx, t, brokers, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(`{}`)},
		&kgo.Record{Topic: topic, Partition: 0, Value: []byte(`{}`)}, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(`{}`)},
		&kgo.Record{Topic: topic, Partition: 0, Value: []byte(`{}`)})
	rep2, err := m.Sample(ctx)
	require.NoError(t, err)
	elapsed := rep2.At.Sub(rep1.At).Seconds()
	g2 := findGroup(t, rep2, group, topic)
	assert.Equal(t, int64(16+5), g2.LagMessages)
	assert.Equal(t, int64(8), g2.Partitions[0].CommittedOffset)
	assert.Equal(t, int64(16), g2.Partitions[0].LagMessages)
	assert.InDelta(t, g.Partitions[0].LagSeconds+elapsed, g2.Partitions[0].LagSeconds, 1e-6, "stuck: lag_seconds grows with the clock")
	assert.InDelta(t, elapsed, g2.CommitAgeSeconds, 1e-6, "the committed offset did not move since the first sample")
	assert.InDelta(t, 4/elapsed, findTopic(t, rep2, topic).ProduceRate, 1e-6)
	assert.Equal(t, 0.0, findTopic(t, rep2, dlq).ProduceRate)
	behind := findGroup(t, rep2, group+"_848", topic)
	assert.Equal(t, int64(4), behind.LagMessages, "the KIP-848 group has not read the new records")
	assert.InDelta(t, time.Since(newAt).Seconds(), behind.LagSeconds, 3)

	// Prometheus.
	labels := func(group string, partition int) string {
		return fmt.Sprintf(`{group=%q,partition="%d",topic=%q}`, group, partition, topic)
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP weft_queue_lag_messages Records a consumer group has not consumed: end offset minus committed offset (minus start offset where it never committed).
# TYPE weft_queue_lag_messages gauge
weft_queue_lag_messages`+labels(group, 0)+` 16
weft_queue_lag_messages`+labels(group, 1)+` 5
weft_queue_lag_messages`+labels(group+"_848", 0)+` 4
weft_queue_lag_messages`+labels(group+"_848", 1)+` 0
`), "weft_queue_lag_messages"))
	metric := func(name string, labels ...string) float64 { return gaugeValue(t, reg, name, labels...) }
	assert.Equal(t, g2.Partitions[0].LagSeconds, metric("weft_queue_lag_seconds", "group", group, "topic", topic, "partition", "0"))
	assert.Equal(t, 24.0, metric("weft_queue_depth_messages", "topic", topic, "partition", "0"))
	assert.InDelta(t, 4/elapsed, metric("weft_queue_produce_rate", "topic", topic), 1e-6)
	assert.Equal(t, 3.0, metric("weft_queue_dlq_depth", "topic", dlq))
	assert.InDelta(t, rep2.At.Sub(now.Add(-time.Hour)).Seconds(), metric("weft_queue_dlq_oldest_age_seconds", "topic", dlq), 0.01)
	assert.InDelta(t, elapsed, metric("weft_queue_group_commit_age_seconds", "group", group), 1e-6)
	assert.Equal(t, 2.0, testutil.ToFloat64(m.metrics.samples))

	// ClickHouse: both samples, and the newest read back as it was measured.
	checkStoredLag(ctx, t, store, group, topic, dlq)
	require.Len(t, rep2.Groups, 2)
	assert.Equal(t, group, rep2.Groups[0].Group, "worst first: the group stuck for ten minutes")
	stored, err := LatestStored(ctx, store)
	require.NoError(t, err)
	assert.WithinDuration(t, rep2.At, stored.At, time.Millisecond)
	assert.Equal(t, rep2.Groups, stored.Groups)
	assert.Equal(t, findTopic(t, rep2, dlq), findTopic(t, stored, dlq))

	// The application dies: the group is Empty, its lag stands, and a
	// restarted monitor carries the commit age on from ClickHouse.
	app.Close()
	appClosed = true
	require.NoError(t, m.Shutdown(ctx))
	m2, err := New(cfg, topics, kc, store, Settings{Logger: zerolog.Nop()})
	require.NoError(t, err)
	require.NoError(t, m2.Start(ctx))
	defer func() { _ = m2.Shutdown(context.Background()) }()
	rep3, err := m2.Sample(ctx)
	require.NoError(t, err)
	g3 := findGroup(t, rep3, group, topic)
	assert.Equal(t, "Empty", g3.State)
	assert.Equal(t, int32(0), g3.Members)
	assert.Equal(t, int64(16+5), g3.LagMessages)
	assert.InDelta(t, rep3.At.Sub(rep1.At).Seconds(), g3.CommitAgeSeconds, 0.01, "commit age survives the restart")
	assert.Greater(t, g3.LagSeconds, g2.LagSeconds)
}

// TestLagMonitorRun: Run samples on its interval until its context ends;
// Shutdown is idempotent and leaves no goroutine behind.
func TestLagMonitorRun(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	name := testenv.Name(t)
	topic := "orders.run_" + name
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	produceLag(ctx, t, brokers, &kgo.Record{Topic: topic, Value: []byte(`{}`)})

	cfg := Default()
	cfg.Interval = time.Second
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	m, err := New(cfg, Topics{Include: []string{regexp.QuoteMeta(topic)}}, kc, store, Settings{Logger: zerolog.Nop()})
	require.NoError(t, err)
	require.NoError(t, m.Start(ctx))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	require.Eventually(t, func() bool {
		var n uint64
		err := testenv.Conn(t).QueryRow(ctx, "SELECT uniqExact(ts) FROM "+store.Table("queue_health")+" WHERE topic = ?", topic).Scan(&n)
		return err == nil && n >= 2
	}, 30*time.Second, 100*time.Millisecond, "two samples stored")
	stop()
	require.NoError(t, <-done)
	require.NoError(t, m.Shutdown(ctx))
	require.NoError(t, m.Shutdown(ctx), "a second Shutdown is harmless")
}

func checkStoredLag(ctx context.Context, t *testing.T, store *chstore.Store, group, topic, dlq string) {
	t.Helper()
	type row struct {
		Partition                   int32
		Committed, Lag              int64
		LagSeconds, CommitAge, Rate float64
		State                       string
	}
	rows, err := testenv.Conn(t).Query(ctx, `SELECT partition, committed_offset, lag_messages, lag_seconds, commit_age_seconds, produce_rate, group_state
		FROM `+store.Table("queue_health")+` WHERE group_id = ? AND topic = ? ORDER BY ts, partition`, group, topic)
	require.NoError(t, err)
	var got []row
	for rows.Next() {
		var r row
		require.NoError(t, rows.Scan(&r.Partition, &r.Committed, &r.Lag, &r.LagSeconds, &r.CommitAge, &r.Rate, &r.State))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 4, "two samples of two partitions")
	assert.Equal(t, []int64{12, 5, 16, 5}, []int64{got[0].Lag, got[1].Lag, got[2].Lag, got[3].Lag})
	assert.Equal(t, []int64{8, -1, 8, -1}, []int64{got[0].Committed, got[1].Committed, got[2].Committed, got[3].Committed})
	assert.Greater(t, got[2].LagSeconds, got[0].LagSeconds, "lag_seconds grows while the group is stuck")
	assert.Greater(t, got[2].CommitAge, got[0].CommitAge)
	assert.Equal(t, -1.0, got[0].Rate)
	assert.Greater(t, got[2].Rate, 0.0)
	assert.Equal(t, "Stable", got[0].State)

	var depth int64
	var age float64
	var isDLQ bool
	require.NoError(t, testenv.Conn(t).QueryRow(ctx, `SELECT lag_messages, lag_seconds, is_dlq FROM `+store.Table("queue_health")+
		` WHERE group_id = '' AND topic = ? ORDER BY ts DESC LIMIT 1`, dlq).Scan(&depth, &age, &isDLQ))
	assert.Equal(t, int64(3), depth)
	assert.GreaterOrEqual(t, age, time.Hour.Seconds(), "the oldest DLQ record is an hour old at produce time")
	assert.Less(t, age, time.Hour.Seconds()+60, "and the test took less than a minute")
	assert.True(t, isDLQ)
}

func findGroup(t *testing.T, rep Report, group, topic string) GroupLag {
	t.Helper()
	for _, g := range rep.Groups {
		if g.Group == group && g.Topic == topic {
			return g
		}
	}
	require.Failf(t, "group not reported", "%s on %s in %+v", group, topic, rep.Groups)
	return GroupLag{}
}

func findTopic(t *testing.T, rep Report, topic string) TopicHealth {
	t.Helper()
	for _, h := range rep.Topics {
		if h.Topic == topic {
			return h
		}
	}
	require.Failf(t, "topic not reported", "%s", topic)
	return TopicHealth{}
}

// gaugeValue is the value of the one gauge of family name with the given
// label pairs.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			want := map[string]string{}
			for i := 0; i+1 < len(labels); i += 2 {
				want[labels[i]] = labels[i+1]
			}
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			return m.GetGauge().GetValue()
		}
	}
	require.Failf(t, "metric not found", "%s%v", name, labels)
	return 0
}

// produceLag writes records to the partitions they name, with their timestamps.
func produceLag(ctx context.Context, t *testing.T, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())
}

// TestLagMonitorTransactions: transaction markers and aborted records are
// not messages anyone waits for. A read_committed group that consumed every
// committed record has offset lag (the markers) but no lag in seconds, and
// the sample does not wait for a message that never comes.
func TestLagMonitorTransactions(t *testing.T) {
	brokers := testenv.Kafka(t)
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := testenv.Name(t)
	topic, group := "payments.txlag_"+name, "app_"+name
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	txn, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("tx_"+name), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer txn.Close()
	inTxn := func(commit kgo.TransactionEndTry, recs ...*kgo.Record) {
		require.NoError(t, txn.BeginTransaction())
		require.NoError(t, txn.ProduceSync(ctx, recs...).FirstErr())
		require.NoError(t, txn.EndTransaction(ctx, commit))
	}
	rec := func(ts time.Time) *kgo.Record { return &kgo.Record{Timestamp: ts, Value: []byte(`{}`)} }
	now := time.Now().Truncate(time.Millisecond)
	inTxn(kgo.TryCommit, rec(now), rec(now), rec(now))      // offsets 0-2, commit marker 3
	inTxn(kgo.TryAbort, rec(now.Add(-time.Hour)), rec(now)) // offsets 4-5 aborted, abort marker 6

	app, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer app.Close()
	var got []*kgo.Record
	for len(got) < 3 {
		got = append(got, app.PollFetches(ctx).Records()...)
		require.NoError(t, ctx.Err())
	}
	require.NoError(t, app.CommitUncommittedOffsets(ctx))

	cfg := Default()
	cfg.Groups.Include = []string{regexp.QuoteMeta(group)}
	cfg.ReadTimeout = 5 * time.Second
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	m, err := New(cfg, Topics{Include: []string{regexp.QuoteMeta(topic)}}, kc, nil, Settings{Logger: zerolog.Nop()})
	require.NoError(t, err)
	require.NoError(t, m.Start(ctx))
	defer func() { _ = m.Shutdown(context.Background()) }()

	began := time.Now()
	rep, err := m.Sample(ctx)
	require.NoError(t, err)
	assert.Less(t, time.Since(began), cfg.ReadTimeout, "no wait for a message that is not there")
	p := findGroup(t, rep, group, topic).Partitions[0]
	assert.Equal(t, int64(3), p.CommittedOffset)
	assert.Equal(t, int64(7-3), p.LagMessages, "offset lag counts the markers and aborted records")
	assert.Equal(t, 0.0, p.LagSeconds, "but nothing is waiting to be consumed")

	// A committed message arrives after them: its age is the lag.
	inTxn(kgo.TryCommit, rec(now.Add(-time.Minute))) // offset 7, marker 8
	// The broker writes the commit marker just after EndTransaction returns:
	// sample until the end offset has moved past it.
	require.Eventually(t, func() bool {
		rep, err = m.Sample(ctx)
		require.NoError(t, err)
		p = findGroup(t, rep, group, topic).Partitions[0]
		return p.LagMessages == 9-3
	}, 10*time.Second, 100*time.Millisecond, "lag after the commit marker, last seen %d", p.LagMessages)
	assert.InDelta(t, time.Since(now.Add(-time.Minute)).Seconds(), p.LagSeconds, 3)
}
