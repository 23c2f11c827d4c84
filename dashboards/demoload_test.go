package dashboards

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
	"github.com/weft-sh/weft/queuehealth"
	"github.com/weft-sh/weft/tracing"
)

// loaded is one demo history, tapped into a fresh ClickHouse database: the
// real broker, the real collector with the audit trail on, one detector
// pass, queue-health samples and a few operator actions, as `weft run`
// and an operator would leave it.
type loaded struct {
	opts     Options
	manifest *demo.Manifest
	// db is a database/sql connection like the plugin's (clickhouse.OpenDB).
	db *sql.DB
	// reg holds the metrics the collector, detector and lag monitor exported.
	reg      *describedRegistry
	from, to time.Time
	// store, brokers and topics are where the demo ran, for a redrive.
	store   *chstore.Store
	brokers []string
	topics  demo.TopicNames
	// traceIDs derive the orders' trace ids with the Tracer's key.
	traceIDs tracing.IDs
}

func loadDemo(t *testing.T) *loaded {
	t.Helper()
	brokers := testenv.Kafka(t)
	store, scfg := testStore(t)
	name := testenv.Name(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dcfg := demo.DefaultConfig()
	dcfg.Seed = 5
	dcfg.Orders = 120
	dcfg.Now = time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	dcfg.Topics = demo.TopicNames{Suffix: "." + name}
	manifest := testenv.DemoHistory(t, brokers, dcfg)

	// The demo's topics carry the test's suffix: payments.dlq.<name>.
	dlq := `.*(\.|-|_)(dlq|dead-letter|deadletter)\.` + regexp.QuoteMeta(name)
	reg := &describedRegistry{Registry: prometheus.NewRegistry()}
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	ccfg := collector.Default()
	ccfg.Group = "weft_" + name
	ccfg.Topics.Include = []string{".*" + regexp.QuoteMeta("."+name)}
	ccfg.Topics.RefreshInterval = time.Second
	ccfg.Batch.FlushInterval = 100 * time.Millisecond
	set := collector.Settings{Logger: zerolog.Nop(), Registerer: reg, Audit: demoAudit(t)}
	// The Tracer, as weft run with tracing.clickhouse on: started before
	// the tap (a first start reads from then on), its passes run once the
	// demo is stored, its clock moved past consistency.settle.
	traceKey := []byte("dashboards-test-trace-id-key-0123")
	keyPath := filepath.Join(t.TempDir(), "id.key")
	require.NoError(t, os.WriteFile(keyPath, traceKey, 0o600))
	tcfg := tracing.Default()
	tcfg.Enabled, tcfg.ClickHouse, tcfg.IDKeyFile = true, true, keyPath
	traceClock := clockwork.NewFakeClockAt(time.Now().UTC())
	tracer, err := tracing.New(tcfg, store, consistency.NewEngine(store, consistency.Builtin()), tracing.Settings{Logger: zerolog.Nop(),
		Registerer: prometheus.NewRegistry(), Group: ccfg.Group, Settle: time.Second, Clock: traceClock})
	require.NoError(t, err)
	require.NoError(t, tracer.Start(ctx))
	tap, err := collector.New(ccfg, kc, store, set)
	require.NoError(t, err)
	require.NoError(t, tap.Start(ctx))
	done := make(chan struct{})
	runCtx, stop := context.WithCancel(ctx)
	go func() { defer close(done); _ = tap.Run(runCtx) }()
	db := clickhouse.OpenDB(&clickhouse.Options{
		Addr: testenv.ClickHouseAddr(t),
		Auth: clickhouse.Auth{Database: scfg.Database, Username: "default"},
	})
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.PingContext(ctx))
	want := uint64(manifest.Records())
	require.Eventually(t, func() bool {
		var n uint64
		_ = db.QueryRowContext(ctx, "SELECT count() FROM events FINAL").Scan(&n)
		return n == want
	}, 60*time.Second, 100*time.Millisecond, "all %d demo records stored", want)

	// Queue health: two samples, so produce rates exist; the tap's group
	// has committed what it stored.
	qcfg := queuehealth.Default()
	qcfg.DLQPattern = dlq
	tapped := queuehealth.Topics{Include: ccfg.Topics.Include, Exclude: ccfg.Topics.Exclude}
	mon, err := queuehealth.New(qcfg, tapped, kc, store, queuehealth.Settings{Logger: set.Logger, Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, mon.Start(ctx))
	for range 2 {
		_, err := mon.Sample(ctx)
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, mon.Shutdown(ctx))
	stop()
	<-done
	require.NoError(t, tap.Shutdown(ctx))

	// One detector pass raises the stuck findings, and says why, as weft
	// run does: the tap's own group is nobody's service (the demo's
	// services do not consume here, so no group of theirs reads a topic).
	engine := consistency.NewEngine(store, consistency.Builtin())
	require.NoError(t, engine.SetDiagnosis(consistency.Diagnosis{DLQPattern: dlq, IgnoreGroups: []string{ccfg.Group}}))
	det := consistency.NewDetector(engine, time.Second,
		consistency.Default().Windows, consistency.Settings{Logger: zerolog.Nop(), Registerer: reg})
	res, err := det.Pass(ctx)
	require.NoError(t, err)
	require.NotZero(t, res.Opened, "stuck findings raised")

	traceClock.Advance(time.Since(traceClock.Now()) + 2*time.Second)
	for {
		n, err := tracer.Pass(ctx)
		require.NoError(t, err)
		if n == 0 {
			break
		}
	}

	opts := DefaultOptions()
	opts.Database = scfg.Database
	opts.DLQPattern = dlq
	l := &loaded{
		opts: opts, manifest: manifest, db: db, reg: reg,
		from: manifest.WindowStart.Add(-time.Hour), to: time.Now().UTC().Add(time.Minute),
		store: store, brokers: brokers, topics: dcfg.Topics, traceIDs: tracing.NewIDs(traceKey),
	}
	// Operator actions, verify runs among them, in the actions log.
	l.recordActions(t, store, set.Audit)
	return l
}

// describedRegistry remembers the name of every metric registered, whether
// or not it has a sample yet (a counter vector without labels observed is
// not gathered).
type describedRegistry struct {
	*prometheus.Registry
	descs []*prometheus.Desc
}

func (r *describedRegistry) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.descs = append(r.descs, d)
	}
	return r.Registry.Register(c)
}

func (r *describedRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *describedRegistry) names() []string {
	var out []string
	for _, d := range r.descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}
