package dashboards

import (
	"context"
	"database/sql"
	"regexp"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
	"github.com/weft-sh/weft/queuehealth"
)

// loaded is one demo history, tapped into a fresh ClickHouse database: the
// real broker, the real collector, one detector pass and queue-health
// samples, as `weft run` would leave it.
type loaded struct {
	opts     Options
	manifest *demo.Manifest
	// db is a database/sql connection like the plugin's (clickhouse.OpenDB).
	db *sql.DB
	// reg holds the metrics the collector, detector and lag monitor exported.
	reg      *describedRegistry
	from, to time.Time
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
	set := collector.Settings{Logger: zerolog.Nop(), Registerer: reg}
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

	// One detector pass raises the stuck findings.
	det := consistency.NewDetector(consistency.NewEngine(store, consistency.Builtin()), time.Second,
		consistency.Default().Windows, consistency.Settings{Logger: zerolog.Nop(), Registerer: reg})
	res, err := det.Pass(ctx)
	require.NoError(t, err)
	require.NotZero(t, res.Opened, "stuck findings raised")

	opts := DefaultOptions()
	opts.Database = scfg.Database
	opts.DLQPattern = dlq
	return &loaded{
		opts: opts, manifest: manifest, db: db, reg: reg,
		from: manifest.WindowStart.Add(-time.Hour), to: time.Now().UTC().Add(time.Minute),
	}
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
