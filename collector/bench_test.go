package collector

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
)

// BenchmarkIngestEndToEnd measures events/s from a preloaded real Kafka topic
// set to rows stored in the real ClickHouse: demo traffic (three encodings,
// ~0.5–1 KB records) is produced first, then a fresh tap consumes, decodes,
// masks and inserts until every record is stored. Each iteration uses a new
// consumer group and database, so it re-reads the same preloaded records.
func BenchmarkIngestEndToEnd(b *testing.B) {
	brokers := testenv.Kafka(b)
	name := testenv.Name(b)
	ctx := context.Background()

	dcfg := demo.DefaultConfig()
	dcfg.Seed = 7
	dcfg.Orders = 20000
	dcfg.Now = time.Now().UTC()
	dcfg.Topics = demo.TopicNames{Suffix: "." + name}
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	gen, err := demo.New(dcfg, prod, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	if err := gen.EnsureTopics(ctx, kadm.NewClient(prod), 6); err != nil {
		b.Fatal(err)
	}
	m, err := gen.RunHistory(ctx)
	if err != nil {
		b.Fatal(err)
	}
	records := int64(m.Records())

	var rates []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		store := testenv.Store(b)
		cfg := Default()
		cfg.Group = fmt.Sprintf("bench_%s_%d", name, i)
		cfg.Topics.Include = []string{".*" + regexp.QuoteMeta("."+name)}
		kc := kafkaconn.Default()
		kc.Brokers = brokers
		c, err := New(cfg, kc, store, Settings{Logger: zerolog.Nop()})
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
		for c.Stats().Stored+c.Stats().Quarantined < records {
			time.Sleep(5 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		cancel()
		_ = c.Shutdown(ctx)
		<-done
		rates = append(rates, float64(records)/elapsed.Seconds())
		b.StartTimer()
	}
	slices.Sort(rates)
	b.ReportMetric(rates[len(rates)/2], "median-events/s")
	b.ReportMetric(float64(records), "events/op")
}
