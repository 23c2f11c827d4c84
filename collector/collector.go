package collector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/kafkaconn"
)

// Settings is what the wiring code passes in.
type Settings struct {
	// Logger gets lifecycle and failure lines only, never one per record.
	Logger zerolog.Logger
	// Registerer receives the collector's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Stats are running totals since Start.
type Stats struct {
	Consumed    int64
	Stored      int64
	Quarantined int64
}

// Collector is the tap. It only ever consumes: it holds no producer.
type Collector struct {
	cfg     Config
	kafka   kafkaconn.Config
	store   *chstore.Store
	log     zerolog.Logger
	metrics *metrics
	decoder *Decoder

	client *kgo.Client

	consumed, stored, quarantined atomic.Int64
	lastErr                       atomic.Pointer[string] // the last failed insert, until one succeeds
	fetchErr                      atomic.Pointer[string] // an error that stops consuming (authorization), until a clean poll

	shutdownOnce sync.Once
	done         chan struct{} // closed by Shutdown
	running      atomic.Bool
	runDone      chan struct{} // closed when Run returns
}

// New validates the configuration and builds the collector. It does no I/O.
func New(cfg Config, kafka kafkaconn.Config, store *chstore.Store, set Settings) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, err := NewDecoder(cfg)
	if err != nil {
		return nil, err
	}
	return &Collector{
		cfg: cfg, kafka: kafka, store: store, decoder: d,
		log:     set.Logger.With().Str("component", "collector").Logger(),
		metrics: newMetrics(set.Registerer),
		done:    make(chan struct{}),
		runDone: make(chan struct{}),
	}, nil
}

// Start connects to Kafka and checks the brokers answer.
func (c *Collector) Start(ctx context.Context) error {
	opts, err := c.kafka.Opts(c.log)
	if err != nil {
		return err
	}
	reset := kgo.NewOffset().AtStart()
	if c.cfg.StartFrom == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	// Quiet until the cluster answered: a wrong address is one error line.
	klog := kafkaconn.NewLogger(c.log)
	klog.Mute(true)
	opts = append(opts,
		kgo.WithLogger(klog),
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.SessionTimeout(c.cfg.SessionTimeout),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(anchored(c.cfg.Topics.Include)...),
		kgo.ConsumeExcludeTopics(anchored(c.cfg.Topics.Exclude)...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(c.cfg.Fetch.MaxBytes),
		kgo.FetchMaxPartitionBytes(c.cfg.Fetch.MaxPartitionBytes),
		kgo.MaxConcurrentFetches(c.cfg.Fetch.MaxConcurrent),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		// Partitions are not revoked between a poll and the commit that
		// follows its insert, so a rebalance never splits a batch.
		kgo.BlockRebalanceOnPoll(),
		kgo.MetadataMaxAge(c.cfg.Topics.RefreshInterval),
		kgo.MetadataMinAge(min(c.cfg.Topics.RefreshInterval, 5*time.Second)),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	if err := kafkaconn.Ping(ctx, cl, c.kafka.Brokers, c.kafka.DialTimeout+5*time.Second); err != nil {
		cl.Close()
		return err
	}
	klog.Mute(false)
	c.client = cl
	c.log.Info().Str("group", c.cfg.Group).Strs("include", c.cfg.Topics.Include).Msg("tap started")
	return nil
}

func anchored(pats []string) []string {
	out := make([]string, len(pats))
	for i, p := range pats {
		out[i] = "^(?:" + p + ")$"
	}
	return out
}

// Run consumes until ctx is cancelled or Shutdown is called. Decode failures
// are quarantined; insert failures are retried with backoff and never skip
// records: offsets are committed only after the batch is stored.
func (c *Collector) Run(ctx context.Context) error {
	if c.client == nil {
		return errors.New("collector: Run before Start")
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("collector: Run called twice")
	}
	defer close(c.runDone)
	// A group leave waits for an allowed rebalance: never exit holding one.
	defer c.client.AllowRebalance()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	b := newBatch()
	deadline := time.Now().Add(c.cfg.Batch.FlushInterval)
	for ctx.Err() == nil {
		pollCtx, pollCancel := context.WithDeadline(ctx, deadline)
		fetches := c.client.PollRecords(pollCtx, c.cfg.Batch.MaxRecords-b.len())
		pollCancel()
		if fetches.IsClientClosed() {
			return nil
		}
		blocked, failed := "", false
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			failed = true
			c.log.Warn().Err(err).Str("topic", topic).Int32("partition", p).Msg("fetch error")
			if blocking(err) {
				blocked = err.Error()
				if topic != "" {
					blocked = topic + ": " + blocked
				}
			}
		})
		if blocked != "" {
			c.fetchErr.Store(&blocked)
		} else if fetches.NumRecords() > 0 || !failed {
			c.fetchErr.Store(nil)
		}
		fetches.EachRecord(func(r *kgo.Record) { c.add(b, r) })
		if b.len() >= c.cfg.Batch.MaxRecords || !time.Now().Before(deadline) {
			if b.len() > 0 {
				if err := c.flush(ctx, b); err != nil {
					return nil // only on cancellation: nothing was committed past the last stored batch
				}
			}
			c.client.AllowRebalance()
			deadline = time.Now().Add(c.cfg.Batch.FlushInterval)
		}
	}
	return nil
}

func (c *Collector) add(b *batch, r *kgo.Record) {
	c.consumed.Add(1)
	c.metrics.consumed.WithLabelValues(r.Topic).Inc()
	e, err := c.decoder.Decode(r)
	if err != nil {
		b.quarantine = append(b.quarantine, c.decoder.Quarantine(r, err.Error()))
		return
	}
	b.events = append(b.events, e)
}

// flush stores the batch, retrying until it succeeds or ctx ends, then commits.
func (c *Collector) flush(ctx context.Context, b *batch) error {
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := c.insert(ctx, b)
		if err == nil {
			c.metrics.insertTime.Observe(time.Since(start).Seconds())
			break
		}
		c.metrics.insertErrs.Inc()
		msg := err.Error()
		c.lastErr.Store(&msg)
		c.log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", backoff).Msg("clickhouse insert failed; will retry the same batch")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	c.lastErr.Store(nil)
	c.metrics.batchSize.Observe(float64(b.len()))
	for _, e := range b.events {
		c.metrics.stored.WithLabelValues(e.Topic).Inc()
	}
	for _, q := range b.quarantine {
		c.metrics.quarantined.WithLabelValues(q.Topic).Inc()
	}
	c.stored.Add(int64(len(b.events)))
	c.quarantined.Add(int64(len(b.quarantine)))
	b.reset()
	if err := c.client.CommitUncommittedOffsets(ctx); err != nil {
		// Not fatal: the records are stored; a redelivery collapses on
		// (topic, partition, offset).
		c.log.Warn().Err(err).Msg("offset commit failed; records may be redelivered and deduplicated")
	}
	return nil
}

// insert stores the batch. Every attempt for one batch carries the same
// deduplication token, so an attempt that reached ClickHouse although it
// reported an error is not stored twice by the next.
func (c *Collector) insert(ctx context.Context, b *batch) error {
	now := time.Now().UTC()
	token := b.token()
	if err := c.store.InsertQuarantine(ctx, b.quarantine, now, token+":q"); err != nil {
		return err
	}
	return c.store.InsertEvents(ctx, b.events, now, token+":e")
}

// Ready reports why the collector is not ready, or nil.
func (c *Collector) Ready() error {
	if c.client == nil {
		return errors.New("collector not started")
	}
	if e := c.lastErr.Load(); e != nil {
		return fmt.Errorf("clickhouse inserts failing: %s", *e)
	}
	if e := c.fetchErr.Load(); e != nil {
		return fmt.Errorf("kafka refuses to serve the tap: %s", *e)
	}
	return nil
}

// blocking reports errors that keep the tap from consuming until an
// operator acts: missing ACLs or failed authentication. Retriable errors
// (leader moves, timeouts) are not.
func blocking(err error) bool {
	return errors.Is(err, kerr.GroupAuthorizationFailed) || errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) || errors.Is(err, kerr.SaslAuthenticationFailed)
}

// Stats returns running totals.
func (c *Collector) Stats() Stats {
	return Stats{Consumed: c.consumed.Load(), Stored: c.stored.Load(), Quarantined: c.quarantined.Load()}
}

// Shutdown stops consuming and closes the client. Records polled but not yet
// stored are not committed, so they are read again on the next start. Safe
// to call more than once.
func (c *Collector) Shutdown(ctx context.Context) error {
	var err error
	c.shutdownOnce.Do(func() {
		close(c.done)
		if c.running.Load() {
			select {
			case <-c.runDone:
			case <-ctx.Done():
				err = fmt.Errorf("collector shutdown: %w", ctx.Err())
			}
		}
		if c.client != nil {
			c.client.AllowRebalance()
			c.client.Close()
		}
	})
	return err
}

// batch is what is stored and committed together.
type batch struct {
	events     []event.Event
	quarantine []event.Quarantined
	tok        string
}

func newBatch() *batch { return &batch{} }

func (b *batch) len() int { return len(b.events) + len(b.quarantine) }

func (b *batch) reset() {
	b.events = b.events[:0]
	b.quarantine = b.quarantine[:0]
	b.tok = ""
}

// token names the batch by the offset range it holds of each partition:
// topic:partition:first-last, sorted, hashed. It is computed once, so every
// retry of the batch carries the same token.
func (b *batch) token() string {
	if b.tok != "" {
		return b.tok
	}
	type tp struct {
		topic string
		part  int32
	}
	ranges := map[tp][2]int64{}
	note := func(topic string, part int32, off int64) {
		k := tp{topic, part}
		r, ok := ranges[k]
		if !ok {
			ranges[k] = [2]int64{off, off}
			return
		}
		ranges[k] = [2]int64{min(r[0], off), max(r[1], off)}
	}
	for i := range b.events {
		note(b.events[i].Topic, b.events[i].Partition, b.events[i].Offset)
	}
	for i := range b.quarantine {
		note(b.quarantine[i].Topic, b.quarantine[i].Partition, b.quarantine[i].Offset)
	}
	parts := make([]string, 0, len(ranges))
	for k, r := range ranges {
		parts = append(parts, fmt.Sprintf("%s:%d:%d-%d", k.topic, k.part, r[0], r[1]))
	}
	sort.Strings(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, ",")))
	b.tok = "weft:" + hex.EncodeToString(sum[:16])
	return b.tok
}
