package collector_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/benchkit"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
)

// BenchmarkIngest is `make bench`: the workload of internal/benchkit (1M
// demo records of about 1 KB over 12 partitions, preloaded into the real
// broker) through a bare franz-go consume loop, a bare clickhouse-go batch
// insert, ClickHouse's Kafka table engine (raw rows, and into weft's own
// schema with the fields extracted in SQL) and `weft run` as a child process
// (the tap alone, the tap with the audit trail on, the tap with tracing on
// storing spans in ClickHouse, then every default; each
// followed by freshness at 10k events/s once the backlog is stored; the
// audit run by `weft audit verify` over what it stored, beside a bare
// SELECT of the columns verify reads), weft replay without a rate cap
// beside a bare franz-go producer writing the same records (at most
// 100,000 of the workload's), and a summary table with the ratios against
// the targets (docs/benchmarks.md). It runs once whatever b.N is
// (use -benchtime 1x). Knobs, from the environment:
//
//	WEFT_BENCH_RECORDS     records in the workload (default 1000000)
//	WEFT_BENCH_PARTITIONS  partitions of its topic (default 12)
//	WEFT_BENCH_RUNS        runs of the insert, engine and weft paths, median reported (default 1)
//	WEFT_BENCH_FRESH       freshness phase duration (default 30s; 0 skips it)
//	WEFT_BENCH_PATHS       comma-separated subset of consume,insert,engine,engine-events,replay,tap,audit,tracing,weft (default all)
//
// The weft child inherits the environment, so WEFT_<PATH> overrides (e.g.
// WEFT_COLLECTOR_FETCH_MAX_BYTES) and GOMEMLIMIT/GOGC reach it.
//
// The preloaded topic is named after the workload and reused when a broker
// already holds exactly that workload (a long-lived broker); a fresh broker
// gets it produced from nothing.
func BenchmarkIngest(b *testing.B) {
	o := benchkit.DefaultOptions()
	o.Brokers, o.ClickHouse = testenv.Kafka(b), testenv.ClickHouseAddr(b)
	o.Workload = benchWorkload(b)
	o.Runs = envInt(b, "WEFT_BENCH_RUNS", o.Runs)
	if v := os.Getenv("WEFT_BENCH_FRESH"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("WEFT_BENCH_FRESH: %v", err)
		}
		o.FreshFor = d
	}
	if v := os.Getenv("WEFT_BENCH_PATHS"); v != "" {
		o.Paths = strings.Split(v, ",")
		for _, p := range o.Paths {
			if !slices.Contains(benchkit.AllPaths(), p) {
				b.Fatalf("WEFT_BENCH_PATHS: %q is not one of %v", p, benchkit.AllPaths())
			}
		}
	}
	o.Dir = b.TempDir()
	o.Logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	}
	rep, err := benchkit.Suite(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	rep.Print(os.Stdout)

	tap := benchkit.PeakRSS(rep.Tap)
	vsBare, vsEngine, vsEngineEvents := rep.Ratios(rep.Tap)
	metric := func(v float64, unit string) {
		if v > 0 && !math.IsNaN(v) {
			b.ReportMetric(v, unit)
		}
	}
	metric(vsBare, "tap/bare")
	metric(vsEngine, "tap/kafka-engine")
	metric(vsEngineEvents, "tap/kafka-engine-events")
	metric(float64(tap)/1e6, "tap-peak-RSS-MB")
	metric(float64(benchkit.PeakRSS(rep.Full))/1e6, "weft-peak-RSS-MB")
	if f := benchkit.Fresh(rep.Tap); f != nil {
		b.ReportMetric(f.P99.Seconds(), "tap-fresh-p99-s")
	}
	if f := benchkit.Fresh(rep.Full); f != nil {
		b.ReportMetric(f.P99.Seconds(), "weft-fresh-p99-s")
	}
	if len(rep.Tracing) > 0 && len(rep.Tap) > 0 {
		metric(benchkit.Median(rep.Tracing).Rate()/benchkit.Median(rep.Tap).Rate(), "tracing-on/off")
		metric(float64(benchkit.PeakRSS(rep.Tracing))/1e6, "tracing-peak-RSS-MB")
	}
	if r := rep.Replay; r != nil {
		metric(r.Ratio(), "replay/bare-producer")
	}
	if v := rep.Verify(); v != nil {
		metric(v.Ratio(), "verify/bare-select")
		metric(v.Rate(), "verify-rows/s")
		metric(float64(v.PeakRSS)/1e6, "verify-peak-RSS-MB")
	}
}

// BenchmarkIngestInProcess runs the collector in this process over the same
// preloaded workload, for profiling the tap itself:
//
//	scripts/with-servers.sh go test -run '^$' -bench IngestInProcess -benchtime 1x \
//	    -cpuprofile cpu.out -memprofile mem.out ./collector/
//
// Each iteration is a fresh consumer group and database; it reports the
// median events/s until every record is stored.
func BenchmarkIngestInProcess(b *testing.B) {
	brokers := testenv.Kafka(b)
	w := benchWorkload(b)
	ctx := context.Background()
	pre, err := benchkit.Preload(ctx, brokers, w)
	if err != nil {
		b.Fatal(err)
	}
	records := int64(w.Records)
	name := testenv.Name(b)

	var rates []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		store := testenv.Store(b)
		cfg := collector.Default()
		cfg.Group = fmt.Sprintf("bench_%s_%d", name, i)
		cfg.Topics.Include = []string{regexp.QuoteMeta(pre.Topic)}
		kc := kafkaconn.Default()
		kc.Brokers = brokers
		c, err := collector.New(cfg, kc, store, collector.Settings{Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		b.StartTimer()
		start := time.Now()
		if err := c.Start(runCtx); err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = c.Run(runCtx) }()
		for st := c.Stats(); st.Stored+st.Quarantined < records; st = c.Stats() {
			time.Sleep(5 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		cancel()
		<-done
		_ = c.Shutdown(ctx)
		rates = append(rates, float64(records)/elapsed.Seconds())
		b.StartTimer()
	}
	slices.Sort(rates)
	b.ReportMetric(rates[len(rates)/2], "median-events/s")
	b.ReportMetric(float64(records), "events/op")
}

func benchWorkload(b *testing.B) benchkit.Workload {
	w := benchkit.DefaultWorkload()
	w.Records = envInt(b, "WEFT_BENCH_RECORDS", w.Records)
	w.Partitions = int32(envInt(b, "WEFT_BENCH_PARTITIONS", int(w.Partitions)))
	return w
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkDecodeWorkload decodes and masks the records of `make bench`
// (demo records padded to about 1 KB), no I/O: weft's CPU per record on
// that workload, beside BenchmarkDecode's unpadded demo records.
func BenchmarkDecodeWorkload(b *testing.B) {
	w := benchkit.DefaultWorkload()
	w.Records = 20_000
	w.Now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	var bytes int64
	if err := w.Generate("bench", func(rs []*kgo.Record) error {
		for _, r := range rs {
			bytes += int64(len(r.Value))
		}
		recs = append(recs, rs...)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	d, err := collector.NewDecoder(collector.Default())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(bytes / int64(len(recs)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.Decode(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
}
