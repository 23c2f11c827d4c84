package benchkit

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/replay"
)

// ReplayResult is the replay phase (docs/replay.md, docs/benchmarks.md):
// weft's replay producing records it reads back from Kafka by position —
// a job's transactions, its cursor stored after each, no rate cap —
// against a bare franz-go producer writing the same records, held in
// memory, to a topic of the same shape. Runs alternate, bare first.
type ReplayResult struct {
	Records int
	// Bare and Replay are the runs of each; Plan how long storing each
	// job's plan took (before its clock starts: a dry run does it).
	Bare, Replay []Run
	Plan         []time.Duration
}

// Ratio is the median replay rate over the median bare producer rate.
func (r ReplayResult) Ratio() float64 {
	b := median(r.Bare).Rate()
	if b == 0 {
		return 0
	}
	return median(r.Replay).Rate() / b
}

// replayRecords bounds the replay phase's records: it holds them in memory
// for the bare producer.
const replayRecords = 100_000

// ReplayBench runs the replay phase over the first records of topic (at
// most n, and replayRecords), runs times each, in a fresh database of
// weft's schema named db, dropped afterwards.
func ReplayBench(ctx context.Context, o Options, topic string, n, runs int, db string) (ReplayResult, error) {
	n = min(n, replayRecords)
	res := ReplayResult{Records: n}
	srv, err := DialServer(ctx, o.ClickHouse)
	if err != nil {
		return res, err
	}
	defer srv.Close()
	defer srv.dropDatabase(ctx, db)
	if err := migrate(ctx, o.ClickHouse, db); err != nil {
		return res, err
	}
	c := chstore.Default()
	c.Addr, c.Database = o.ClickHouse, db
	store, err := chstore.Open(ctx, c)
	if err != nil {
		return res, err
	}
	defer store.Close()

	recs, parts, err := readFirst(ctx, o.Brokers, topic, n)
	if err != nil {
		return res, err
	}
	kc := kafkaconn.Default()
	kc.Brokers = o.Brokers
	opts, err := kc.Opts(zerolog.Nop())
	if err != nil {
		return res, err
	}
	for i := range max(runs, 1) {
		bareTopic := fmt.Sprintf("%s-bare-%s-%d", topic, randomSuffix(), i)
		replayTopic := fmt.Sprintf("%s-replay-%s-%d", topic, randomSuffix(), i)
		for _, t := range []string{bareTopic, replayTopic} {
			if err := createTopic(ctx, o.Brokers, t, parts); err != nil {
				return res, err
			}
			defer deleteTopic(o.Brokers, t)
		}
		bare, err := bareProduce(ctx, o.Brokers, recs, bareTopic)
		if err != nil {
			return res, err
		}
		o.Logf("replay: bare franz-go producer %d: %s", i+1, bare)
		res.Bare = append(res.Bare, bare)

		cfg := replay.Default()
		cfg.Enabled, cfg.Allow, cfg.Rate = true, []string{regexp.QuoteMeta(replayTopic)}, 0
		r, err := replay.New(cfg, replay.Settings{Store: store, Kafka: opts, Brokers: o.Brokers, Operator: "bench", Origin: "bench"})
		if err != nil {
			return res, err
		}
		if err := r.Start(ctx); err != nil {
			return res, err
		}
		plan := replay.Plan{Kind: replay.KindRedrive, Resource: "topic/" + topic, Items: make([]replay.Item, len(recs))}
		for j, rec := range recs {
			plan.Items[j] = replay.Item{Seq: uint64(j), From: replay.Position{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}, To: replayTopic}
		}
		start := time.Now()
		job, err := r.Create(ctx, plan, 0)
		if err != nil {
			_ = r.Shutdown(ctx)
			return res, err
		}
		res.Plan = append(res.Plan, time.Since(start))
		start = time.Now()
		job, err = r.Run(ctx, job.ID, 0)
		run := Run{Events: int(job.Produced), Elapsed: time.Since(start)}
		_ = r.Shutdown(ctx)
		if err != nil {
			return res, fmt.Errorf("replay job %s: %w", job.ID, err)
		}
		if job.Produced != uint64(n) {
			return res, fmt.Errorf("replay job %s produced %d of %d records (%d gone)", job.ID, job.Produced, n, job.Missing)
		}
		o.Logf("replay: weft replay %d: %s (plan stored in %s)", i+1, run, res.Plan[i].Round(time.Millisecond))
		res.Replay = append(res.Replay, run)
	}
	return res, nil
}

// readFirst reads the first n committed records of topic, oldest first
// per partition, and its partition count.
func readFirst(ctx context.Context, brokers []string, topic string, n int) ([]*kgo.Record, int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, 0, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return nil, 0, fmt.Errorf("kafka: describe %s: %w", topic, err)
	}
	parts := int32(len(td[topic].Partitions))
	out := make([]*kgo.Record, 0, n)
	for len(out) < n {
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		fs := cl.PollRecords(pctx, n-len(out))
		cancel()
		if err := fs.Err0(); err != nil {
			return nil, 0, fmt.Errorf("kafka: read %s: %w", topic, err)
		}
		out = append(out, fs.Records()...)
	}
	return out[:n], parts, nil
}

// bareProduce writes recs' keys, values and headers to topic with a plain
// franz-go producer (its defaults: idempotent, acks all; 5 ms linger as
// replay's), until every record is acknowledged.
func bareProduce(ctx context.Context, brokers []string, recs []*kgo.Record, topic string) (Run, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return Run{}, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return Run{}, fmt.Errorf("kafka: %w", err)
	}
	var firstErr error
	errc := make(chan error, 1)
	start := time.Now()
	for _, r := range recs {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: r.Headers}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return Run{}, err
	}
	elapsed := time.Since(start)
	select {
	case firstErr = <-errc:
	default:
	}
	if firstErr != nil {
		return Run{}, errors.Join(errors.New("bare produce"), firstErr)
	}
	return Run{Events: len(recs), Elapsed: elapsed}, nil
}
