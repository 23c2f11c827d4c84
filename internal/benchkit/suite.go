package benchkit

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
)

// Options configure Suite. Start from DefaultOptions.
type Options struct {
	Brokers    []string
	ClickHouse []string
	Workload   Workload
	// ConsumeRuns is how many bare-consume runs are made (cheap); the
	// median is reported. Default 3.
	ConsumeRuns int
	// Runs is how many runs of each other path are made; the median is
	// reported. Default 1.
	Runs int
	// BatchSize of the bare insert: weft's collector.batch.max_records.
	BatchSize   int
	KafkaEngine KafkaEngineConfig
	// FreshRate (events/s) and FreshFor set the freshness phase, run
	// against the first weft once it caught up with the backlog. A zero
	// FreshFor skips it.
	FreshRate int
	FreshFor  time.Duration
	// Dir is scratch space (the weft binary, its config and log).
	Dir string
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// DefaultOptions is `make bench`.
func DefaultOptions() Options {
	return Options{
		Workload: DefaultWorkload(), ConsumeRuns: 3, Runs: 1,
		BatchSize: collector.Default().Batch.MaxRecords, KafkaEngine: DefaultKafkaEngine(),
		FreshRate: 10_000, FreshFor: 30 * time.Second,
		Logf: func(string, ...any) {},
	}
}

// Suite preloads the workload, then measures, one after the other so they
// do not compete for the machine: the bare consume, the bare insert, the
// Kafka table engine and weft (end to end, peak RSS, then freshness).
func Suite(ctx context.Context, o Options) (*Report, error) {
	w := o.Workload
	if w.Now.IsZero() {
		w.Now = time.Now().UTC()
	}
	rep := &Report{Options: o, Workload: w}
	suffix := randomSuffix()
	logf := o.Logf

	logf("preload: %d records over %d partitions into %s", w.Records, w.Partitions, w.Topic())
	pre, err := Preload(ctx, o.Brokers, w)
	if err != nil {
		return nil, err
	}
	rep.Preload = pre
	if pre.Reused {
		logf("preload: reused the topic already in this broker (same workload); nothing produced")
	} else {
		logf("preload: produced in %s", pre.Took.Round(time.Millisecond))
	}

	store, err := openStore(ctx, o.ClickHouse, "default")
	if err != nil {
		return nil, err
	}
	defer store.Close()
	admin := store.Conn()

	for i := range max(o.ConsumeRuns, 1) {
		m := startCPU(ctx, admin)
		r, err := BareConsume(ctx, o.Brokers, pre.Topic, w.Records)
		if err != nil {
			return nil, err
		}
		m.stop(ctx, &r)
		logf("bare consume %d: %s", i+1, r)
		rep.Consume = append(rep.Consume, r)
	}

	pool, mean, err := DecodePool(w, 20_000)
	if err != nil {
		return nil, err
	}
	rep.MeanValue = mean
	if !pre.Reused {
		rep.MeanValue = int(pre.ValueBytes / int64(w.Records))
	}
	for i := range max(o.Runs, 1) {
		m := startCPU(ctx, admin)
		r, err := bareInsertRun(ctx, o, pool, fmt.Sprintf("bench_insert_%s_%d", suffix, i))
		if err != nil {
			return nil, err
		}
		m.stop(ctx, &r)
		logf("bare insert %d: %s", i+1, r)
		rep.Insert = append(rep.Insert, r)
	}

	for i := range max(o.Runs, 1) {
		m := startCPU(ctx, admin)
		r, err := KafkaEngine(ctx, admin, fmt.Sprintf("bench_kafka_engine_%s_%d", suffix, i), o.Brokers, pre.Topic, w.Records, o.KafkaEngine)
		if err != nil {
			return nil, err
		}
		m.stop(ctx, &r)
		logf("kafka engine %d: %s", i+1, r)
		rep.Engine = append(rep.Engine, r)
	}

	bin, err := BuildWeft(ctx, o.Dir)
	if err != nil {
		return nil, err
	}
	fresh := "weft-bench-fresh-" + suffix
	if o.FreshFor > 0 {
		if err := createTopic(ctx, o.Brokers, fresh, w.Partitions); err != nil {
			return nil, err
		}
		defer deleteTopic(o.Brokers, fresh)
	}
	for i := range max(o.Runs, 1) {
		wr, err := weftRun(ctx, o, store, WeftConfig{
			Bin: bin, Dir: o.Dir, Brokers: o.Brokers, ClickHouse: o.ClickHouse,
			Database: fmt.Sprintf("bench_weft_%s_%d", suffix, i), Group: fmt.Sprintf("bench-weft-%s-%d", suffix, i),
			Topics: []string{pre.Topic, fresh},
		}, pre.Topic, fresh, i == 0 && o.FreshFor > 0)
		if err != nil {
			return nil, err
		}
		logf("weft %d: %s, peak RSS %s, CPU %s, %d inserts took %s", i+1, wr.Run, mb(wr.PeakRSS),
			wr.ClientCPU.Round(time.Millisecond), wr.Inserts, wr.InsertWall.Round(time.Millisecond))
		rep.Weft = append(rep.Weft, wr)
	}
	return rep, nil
}

// WeftResult is one `weft run` over the backlog.
type WeftResult struct {
	Run
	// PeakRSS is VmHWM once the backlog is stored; PeakRSSEnd after the
	// freshness phase too.
	PeakRSS, PeakRSSEnd int64
	// InsertWall is the time weft spent in ClickHouse inserts (its
	// insert_duration_seconds), over Inserts batches, until the backlog
	// was stored: the rest of the run it fetched and decoded.
	InsertWall time.Duration
	Inserts    int
	Fresh      *Freshness
}

func weftRun(ctx context.Context, o Options, admin *chstore.Store, c WeftConfig, topic, fresh string, measureFresh bool) (WeftResult, error) {
	defer dropDatabase(admin, c.Database)
	var res WeftResult
	m := startCPU(ctx, admin.Conn())
	start := time.Now()
	proc, err := StartWeft(c)
	if err != nil {
		return res, err
	}
	defer proc.Stop() //nolint:errcheck // stopped explicitly below; this is for the error paths
	q := "SELECT (SELECT count() FROM " + c.Database + ".events WHERE topic = '" + topic + "') + " +
		"(SELECT count() FROM " + c.Database + ".quarantine WHERE topic = '" + topic + "')"
	res.Run, err = waitRows(ctx, admin.Conn(), q, o.Workload.Records, start, proc.Alive)
	if err != nil {
		return res, fmt.Errorf("weft: %w", err)
	}
	if res.PeakRSS, err = proc.PeakRSS(); err != nil {
		return res, err
	}
	if res.ClientCPU, err = proc.CPU(); err != nil {
		return res, err
	}
	m.stop(ctx, &res.Run)
	if res.InsertWall, res.Inserts, err = proc.InsertTime(); err != nil {
		return res, err
	}
	if measureFresh {
		o.Logf("freshness: %d events/s for %s into %s", o.FreshRate, o.FreshFor, fresh)
		f, err := MeasureFreshness(ctx, admin.Conn(), FreshnessConfig{
			Brokers: o.Brokers, Topic: fresh, Table: c.Database + ".events",
			Rate: o.FreshRate, Duration: o.FreshFor, Workload: o.Workload,
		})
		if err != nil {
			return res, fmt.Errorf("freshness: %w\n%s", err, proc.LogTail())
		}
		res.Fresh = &f
		if res.PeakRSSEnd, err = proc.PeakRSS(); err != nil {
			return res, err
		}
	}
	if err := proc.Stop(); err != nil {
		return res, fmt.Errorf("weft stop: %w\n%s", err, proc.LogTail())
	}
	return res, nil
}

func bareInsertRun(ctx context.Context, o Options, pool []event.Event, db string) (Run, error) {
	s, err := openStore(ctx, o.ClickHouse, db)
	if err != nil {
		return Run{}, err
	}
	defer s.Close()
	defer dropDatabase(s, db)
	if err := s.Migrate(ctx); err != nil {
		return Run{}, err
	}
	return BareInsert(ctx, s.Conn(), s.Table("events"), pool, o.Workload.Records, o.BatchSize, o.Workload.Partitions)
}

func openStore(ctx context.Context, addr []string, db string) (*chstore.Store, error) {
	c := chstore.Default()
	c.Addr, c.Database = addr, db
	return chstore.Open(ctx, c)
}

func dropDatabase(s *chstore.Store, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = s.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+db+" SYNC")
}

func createTopic(ctx context.Context, brokers []string, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		return fmt.Errorf("create %s: %w", topic, err)
	}
	return nil
}

func deleteTopic(brokers []string, topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return
	}
	defer cl.Close()
	_, _ = kadm.NewClient(cl).DeleteTopic(ctx, topic)
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// median returns the run of median rate.
func median(runs []Run) Run {
	if len(runs) == 0 {
		return Run{}
	}
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b Run) int { return cmp.Compare(a.Elapsed, b.Elapsed) })
	return s[len(s)/2]
}
