package collector

import (
	"bytes"
	"context"
	"os/exec"
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

// tap runs a collector over the topics matching pattern until the test ends.
type tap struct {
	c   *Collector
	reg *prometheus.Registry
}

func startTap(t *testing.T, brokers []string, store *chstore.Store, pattern string) *tap {
	t.Helper()
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	return runTap(t, kc, store, "g_"+testenv.Name(t), pattern)
}

// runTap runs a collector with connection kc in group over the topics
// matching pattern until the test ends.
func runTap(t *testing.T, kc kafkaconn.Config, store *chstore.Store, group, pattern string) *tap {
	t.Helper()
	cfg := Default()
	cfg.Group = group
	cfg.Topics.Include = []string{pattern}
	cfg.Batch.FlushInterval = 100 * time.Millisecond
	cfg.Topics.RefreshInterval = time.Second
	return runTapWith(t, cfg, kc, store)
}

// runTapWith runs a collector with cfg and connection kc until the test ends.
func runTapWith(t *testing.T, cfg Config, kc kafkaconn.Config, store *chstore.Store) *tap {
	t.Helper()
	// Registered before the tap's cleanup, so it runs after it: once the
	// tap is closed, none of its goroutines may be left.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	reg := prometheus.NewRegistry()
	c, err := New(cfg, kc, store, Settings{Logger: zerolog.Nop(), Registerer: reg})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, c.Start(ctx))
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = c.Shutdown(context.Background())
	})
	return &tap{c: c, reg: reg}
}

func (tp *tap) waitConsumed(t *testing.T, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		st := tp.c.Stats()
		return st.Stored+st.Quarantined >= n
	}, 60*time.Second, 50*time.Millisecond, "tap stored %+v, want %d records", tp.c.Stats(), n)
}

// TestKcatInterop: CloudEvents records produced by kcat, a client nobody here
// wrote, are ingested with every field right.
func TestKcatInterop(t *testing.T) {
	brokers := testenv.Kafka(t)
	kcat, err := exec.LookPath("kcat")
	require.NoError(t, err, "kcat (Debian package kcat) is required; `make test` installs it")
	store := testenv.Store(t)
	topic := "orders.kcat_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 2, nil)

	structured := `{"specversion":"1.0","id":"ev-struct-1","type":"OrderPlaced","source":"https://shop.example/orders","time":"2026-11-20T10:15:30.250Z","subject":"ord-77","datacontenttype":"application/json","data":{"order_id":"ord-77","amount":"19.99","card_number":"4111111111111111"}}`
	run := func(value string, args ...string) {
		cmd := exec.Command(kcat, append([]string{"-P", "-b", strings.Join(brokers, ","), "-t", topic, "-p", "1"}, args...)...)
		cmd.Stdin = strings.NewReader(value)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "kcat: %s", out)
	}
	run(structured, "-k", "ord-77",
		"-H", "traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"-H", "causation-id=ev-cause-0", "-H", "correlation-id=checkout-9",
		"-H", `version-vector={"orders":4,"payments":2}`, "-H", "idempotency-key=idem-77")
	run(`{"order_id":"ord-77","status":"reserved"}`, "-k", "ord-77",
		"-H", "ce_specversion=1.0", "-H", "ce_id=ev-bin-2", "-H", "ce_type=InventoryReserved",
		"-H", "ce_source=inventory", "-H", "ce_time=2026-11-20T10:16:00Z", "-H", "ce_subject=ord-77",
		"-H", "content-type=application/json", "-H", "causation-id=ev-struct-1", "-H", `version-vector={"orders":4,"payments":2,"inventory":1}`)

	tp := startTap(t, brokers, store, regexp.QuoteMeta(topic))
	tp.waitConsumed(t, 2)
	assert.Equal(t, Stats{Consumed: 2, Stored: 2}, tp.c.Stats())

	type row struct {
		Partition                                                      int32
		Offset                                                         int64
		Key, EventID, Type, Service, OrderID                           string
		EventTime                                                      time.Time
		Causation, Correlation, TraceID, SpanID, Idem, Format, Payload string
		VV                                                             map[string]uint64
	}
	rows, err := testenv.Conn(t).Query(context.Background(), `SELECT partition, offset, record_key, event_id, event_type, service, order_id,
		event_time, causation_id, correlation_id, trace_id, span_id, idempotency_key, format, payload, version_vector
		FROM `+store.Table("events")+` FINAL ORDER BY offset`)
	require.NoError(t, err)
	var got []row
	for rows.Next() {
		var r row
		require.NoError(t, rows.Scan(&r.Partition, &r.Offset, &r.Key, &r.EventID, &r.Type, &r.Service, &r.OrderID, &r.EventTime,
			&r.Causation, &r.Correlation, &r.TraceID, &r.SpanID, &r.Idem, &r.Format, &r.Payload, &r.VV))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 2)
	s, b := got[0], got[1]
	assert.Equal(t, int32(1), s.Partition)
	assert.Equal(t, int64(0), s.Offset)
	assert.Equal(t, "ord-77", s.Key)
	assert.Equal(t, "ev-struct-1", s.EventID)
	assert.Equal(t, "OrderPlaced", s.Type)
	assert.Equal(t, "orders", s.Service)
	assert.Equal(t, "ord-77", s.OrderID)
	assert.True(t, time.Date(2026, 11, 20, 10, 15, 30, 250e6, time.UTC).Equal(s.EventTime), s.EventTime)
	assert.Equal(t, "ev-cause-0", s.Causation)
	assert.Equal(t, "checkout-9", s.Correlation)
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", s.TraceID)
	assert.Equal(t, "b7ad6b7169203331", s.SpanID)
	assert.Equal(t, "idem-77", s.Idem)
	assert.Equal(t, "cloudevents-structured", s.Format)
	assert.Equal(t, map[string]uint64{"orders": 4, "payments": 2}, s.VV)
	assert.JSONEq(t, `{"order_id":"ord-77","amount":"19.99","card_number":"************1111"}`, s.Payload)

	assert.Equal(t, int64(1), b.Offset)
	assert.Equal(t, "ev-bin-2", b.EventID)
	assert.Equal(t, "InventoryReserved", b.Type)
	assert.Equal(t, "inventory", b.Service)
	assert.Equal(t, "ev-struct-1", b.Causation)
	assert.Equal(t, "cloudevents-binary", b.Format)
	assert.Equal(t, map[string]uint64{"orders": 4, "payments": 2, "inventory": 1}, b.VV)
	assert.True(t, time.Date(2026, 11, 20, 10, 16, 0, 0, time.UTC).Equal(b.EventTime))

	// And kcat reads back exactly what the tap saw: the tap wrote nothing to the cluster.
	out, err := exec.Command(kcat, "-C", "-b", strings.Join(brokers, ","), "-t", topic, "-e", "-q", "-f", "%p:%o\n").Output()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"1:0", "1:1"}, strings.Fields(string(out)))
}

// TestBadInputIsQuarantined: malformed records never crash the tap or go
// missing; each is stored in quarantine with its reason and counted, and the
// good records around them are stored.
func TestBadInputIsQuarantined(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "payments.bad_" + testenv.Name(t)
	big := "10485760"
	testenv.CreateTopic(t, brokers, topic, 2, map[string]*string{"max.message.bytes": &big})

	good := func(id string) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte("o-" + id), Value: []byte(`{"event_type":"PaymentRequested","order_id":"o-` + id + `","event_id":"` + id + `"}`)}
	}
	bad := []struct {
		value  []byte
		reason string
	}{
		{[]byte(`{"event_type":"PaymentRequested","order_id":`), "not valid JSON"},
		{[]byte(`{"event_type":"PaymentRequested"}`), "no order id"},
		{[]byte(`{"event_type":42,"order_id":"o-x"}`), "JSON number"},
		{[]byte(`{"event_type":"X","order_id":"o-y","card_number":"4111111111111111","pad":"` + strings.Repeat("x", 5<<20) + `"}`), "over the 1048576-byte limit"},
		{[]byte("{\"event_type\":\"X\",\"order_id\":\"o-\xc3\x28\"}"), "not valid UTF-8"},
	}
	var recs []*kgo.Record
	recs = append(recs, good("1"))
	for _, b := range bad {
		recs = append(recs, &kgo.Record{Topic: topic, Value: b.value})
	}
	recs = append(recs, good("2"))

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(8<<20), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())

	tp := startTap(t, brokers, store, regexp.QuoteMeta(topic))
	tp.waitConsumed(t, int64(len(recs)))
	assert.Equal(t, Stats{Consumed: int64(len(recs)), Stored: 2, Quarantined: int64(len(bad))}, tp.c.Stats())
	assert.Equal(t, float64(len(bad)), testutil.ToFloat64(tp.c.metrics.quarantined.WithLabelValues(topic)))
	require.NoError(t, tp.c.Ready(), "the tap keeps running")

	rows, err := testenv.Conn(t).Query(ctx, "SELECT offset, reason, value_size, value FROM "+store.Table("quarantine")+" FINAL ORDER BY offset")
	require.NoError(t, err)
	i := 0
	for rows.Next() {
		var (
			off    int64
			reason string
			size   uint64
			value  string
		)
		require.NoError(t, rows.Scan(&off, &reason, &size, &value))
		require.Less(t, i, len(bad))
		assert.Equal(t, int64(i+1), off)
		assert.Contains(t, reason, bad[i].reason)
		assert.Equal(t, uint64(len(bad[i].value)), size, "the whole value is kept")
		assert.NotContains(t, value, "4111111111111111", "quarantined values are masked too")
		if i == 4 {
			assert.True(t, bytes.HasPrefix([]byte(value), []byte("base64:")), "invalid UTF-8 is kept recoverable")
		}
		i++
	}
	assert.Equal(t, len(bad), i)
	var n uint64
	require.NoError(t, testenv.Conn(t).QueryRow(ctx, "SELECT count() FROM "+store.Table("events")+" FINAL").Scan(&n))
	assert.Equal(t, uint64(2), n)
}
