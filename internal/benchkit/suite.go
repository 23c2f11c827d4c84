package benchkit

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
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
	// Paths are the paths measured (AllPaths): "consume", "insert",
	// "engine" (Kafka engine, raw rows), "engine-events" (Kafka engine into
	// weft's schema), "replay" (weft replay against a bare producer), "tap"
	// (weft with the tap alone), "audit" and "tracing" (the tap alone with
	// the audit trail, or the Tracer storing spans in ClickHouse, on) and
	// "weft" (every default). Default all of
	// them.
	Paths []string
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
	// against the first weft of each kind once it caught up with the
	// backlog. A zero FreshFor skips it.
	FreshRate int
	FreshFor  time.Duration
	// Dir is scratch space (the weft binary, its config and log).
	Dir string
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// AllPaths names every measured path, in the order they run.
func AllPaths() []string {
	return []string{"consume", "insert", "engine", "engine-events", "replay", "tap", "audit", "tracing", "weft"}
}

func (o Options) runs(path string, n int) int {
	if !slices.Contains(o.Paths, path) {
		return 0
	}
	return max(n, 1)
}

// DefaultOptions is `make bench`.
func DefaultOptions() Options {
	return Options{
		Workload: DefaultWorkload(), Paths: AllPaths(), ConsumeRuns: 3, Runs: 1,
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

	admin, err := DialServer(ctx, o.ClickHouse)
	if err != nil {
		return nil, err
	}
	defer admin.Close()

	for i := range o.runs("consume", o.ConsumeRuns) {
		m := startCPU(ctx, admin)
		r, err := BareConsume(ctx, o.Brokers, pre.Topic, w.Records)
		if err != nil {
			return nil, err
		}
		m.stop(ctx, &r)
		logf("bare consume %d: %s", i+1, r)
		rep.Consume = append(rep.Consume, r)
	}

	// The bare insert writes the workload's own rows, every one of them
	// (decoded before its clock starts): a pool cycled over fewer orders
	// hands ClickHouse repeated payloads and order ids, which compress,
	// sort and aggregate cheaper than weft's real rows (docs/benchmarks.md,
	// session 4, has the figures).
	if n := o.runs("insert", o.Runs); n > 0 {
		pool, mean, err := DecodePool(w, w.Records)
		if err != nil {
			return nil, err
		}
		rep.MeanValue = mean
		for i := range n {
			m := startCPU(ctx, admin)
			r, err := bareInsertRun(ctx, o, pool, fmt.Sprintf("bench_insert_%s_%d", suffix, i))
			if err != nil {
				return nil, err
			}
			m.stop(ctx, &r)
			logf("bare insert %d: %s", i+1, r)
			rep.Insert = append(rep.Insert, r)
		}
	}
	switch {
	case !pre.Reused:
		rep.MeanValue = int(pre.ValueBytes / int64(w.Records))
	case rep.MeanValue == 0: // reused, no bare insert: the mean of a sample
		if _, rep.MeanValue, err = DecodePool(w, 20_000); err != nil {
			return nil, err
		}
	}

	for _, raw := range []bool{true, false} {
		path := map[bool]string{true: "engine", false: "engine-events"}[raw]
		for i := range o.runs(path, o.Runs) {
			db := fmt.Sprintf("bench_kafka_%s_%s_%d", strings.ReplaceAll(path, "-", "_"), suffix, i)
			schema := func(ctx context.Context) error { return migrate(ctx, o.ClickHouse, db) }
			m := startCPU(ctx, admin)
			r, err := KafkaEngine(ctx, admin, db, o.Brokers, pre.Topic, w.Records, o.KafkaEngine, raw, schema)
			if err != nil {
				return nil, err
			}
			m.stop(ctx, &r)
			logf("kafka %s %d: %s", path, i+1, r)
			if raw {
				rep.Engine = append(rep.Engine, r)
			} else {
				rep.EngineEvents = append(rep.EngineEvents, r)
			}
		}
	}

	if n := o.runs("replay", o.Runs); n > 0 {
		r, err := ReplayBench(ctx, o, pre.Topic, w.Records, n, "bench_replay_"+suffix)
		if err != nil {
			return nil, fmt.Errorf("replay phase: %w", err)
		}
		rep.Replay = &r
	}
	weftPaths := []string{"tap", "audit", "tracing", "weft"}
	runs := 0
	for _, p := range weftPaths {
		runs = max(runs, o.runs(p, o.Runs))
	}
	if runs == 0 {
		return rep, nil
	}
	bin, err := BuildWeft(ctx, o.Dir)
	if err != nil {
		return nil, err
	}
	// The weft paths' runs are interleaved (tap, audit, tracing, weft,
	// then again), so that a machine whose speed drifts during the suite
	// (other work on it) weighs on each path alike: the audit trail's and
	// the Tracer's on ÷ off compare runs made side by side.
	for i := range runs {
		for _, path := range weftPaths {
			if i >= o.runs(path, o.Runs) {
				continue
			}
			tapOnly := path != "weft"
			name := fmt.Sprintf("%s_%d_%s", suffix, i, path)
			// Each run gets its own freshness topic, empty when weft starts.
			fresh := "weft-bench-fresh-" + strings.ReplaceAll(name, "_", "-")
			measureFresh := i == 0 && o.FreshFor > 0
			if measureFresh {
				if err := createTopic(ctx, o.Brokers, fresh, w.Partitions); err != nil {
					return nil, err
				}
			}
			wr, err := weftRun(ctx, o, admin, WeftConfig{
				Bin: bin, Dir: o.Dir, Brokers: o.Brokers, ClickHouse: o.ClickHouse,
				Database: "bench_weft_" + name, Group: "bench-weft-" + name,
				Topics: []string{pre.Topic, fresh}, TapOnly: tapOnly, Audit: path == "audit",
				Tracing: path == "tracing",
			}, pre.Topic, fresh, measureFresh)
			if measureFresh {
				deleteTopic(o.Brokers, fresh)
			}
			if err != nil {
				return nil, err
			}
			logf("weft %s %d: %s, peak RSS %s, CPU %s, %d inserts took %s", variant(path), i+1, wr.Run, mb(wr.PeakRSS),
				wr.ClientCPU.Round(time.Millisecond), wr.Inserts, wr.InsertWall.Round(time.Millisecond))
			switch path {
			case "tap":
				rep.Tap = append(rep.Tap, wr)
			case "audit":
				rep.Audit = append(rep.Audit, wr)
			case "tracing":
				rep.Tracing = append(rep.Tracing, wr)
			default:
				rep.Full = append(rep.Full, wr)
			}
		}
	}
	return rep, nil
}

func variant(path string) string {
	switch path {
	case "tap":
		return "tap only"
	case "audit":
		return "tap with the audit trail"
	case "tracing":
		return "tap with tracing"
	}
	return "defaults"
}

// bareInsertRun writes the pool into a fresh database of weft's schema
// over a connection of its own, dropped afterwards.
func bareInsertRun(ctx context.Context, o Options, pool []event.Event, db string) (Run, error) {
	srv, err := DialServer(ctx, o.ClickHouse)
	if err != nil {
		return Run{}, err
	}
	defer srv.Close()
	defer srv.dropDatabase(ctx, db)
	if err := migrate(ctx, o.ClickHouse, db); err != nil {
		return Run{}, err
	}
	return BareInsert(ctx, srv, db, pool, o.Workload.Records, o.BatchSize, o.Workload.Partitions)
}

// migrate creates weft's schema in database db.
func migrate(ctx context.Context, addr []string, db string) error {
	c := chstore.Default()
	c.Addr, c.Database = addr, db
	s, err := chstore.Open(ctx, c)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Migrate(ctx)
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
