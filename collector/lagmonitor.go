package collector

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/kafkaconn"
)

// LagMonitor samples queue health on an interval: the lag, in messages and
// in seconds, of every consumer group reading the tapped topics (the
// applications' groups, not only weft's), each topic's depth and produce
// rate, and the dead-letter topics' depth and oldest record. Each sample is
// exported as Prometheus metrics and, with a store, appended to the
// queue_health table.
//
// It is read-only toward Kafka: admin requests (Metadata, ListOffsets,
// ListGroups, DescribeGroups, OffsetFetch) and a consumer that belongs to no
// group, to read the timestamp of single records. It never commits and never
// produces.
type LagMonitor struct {
	cfg   Config
	kafka kafkaconn.Config
	store *chstore.Store
	log   zerolog.Logger

	metrics                     *lagMetrics
	includeRe, excludeRe, dlqRe *regexp.Regexp
	groupsInRe, groupsExRe      *regexp.Regexp
	client                      *kgo.Client
	admin                       *kadm.Client
	reader                      *recordReader

	mu   sync.Mutex // one sample at a time; guards hist
	hist *history

	shutdownOnce sync.Once
	done         chan struct{} // closed by Shutdown
	running      atomic.Bool
	runDone      chan struct{} // closed when Run returns
}

// NewLagMonitor validates the configuration (collector.topics selects the
// tapped topics, collector.lag the rest) and builds the monitor. store may
// be nil: samples are then only returned and exported. It does no I/O.
func NewLagMonitor(cfg Config, kafka kafkaconn.Config, store *chstore.Store, set Settings) (*LagMonitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &LagMonitor{
		cfg: cfg, kafka: kafka, store: store,
		log:        set.Logger.With().Str("component", "lagmonitor").Logger(),
		metrics:    newLagMetrics(set.Registerer),
		includeRe:  wholeName(cfg.Topics.Include...),
		excludeRe:  wholeName(cfg.Topics.Exclude...),
		dlqRe:      wholeName(cfg.Lag.DLQPattern),
		groupsInRe: wholeName(cfg.Lag.Groups.Include...),
		groupsExRe: wholeName(cfg.Lag.Groups.Exclude...),
		hist:       newHistory(),
		done:       make(chan struct{}),
		runDone:    make(chan struct{}),
	}, nil
}

// Start connects to Kafka and checks the brokers answer. With a store, it
// also reads back where each group's commits stood, so commit ages survive
// a restart of weft. When collector.lag.enabled is false it does nothing.
func (m *LagMonitor) Start(ctx context.Context) error {
	if !m.cfg.Lag.Enabled {
		return nil
	}
	opts, err := m.kafka.Opts(m.log)
	if err != nil {
		return err
	}
	klog := kafkaconn.NewLogger(m.log)
	klog.Mute(true)
	// No ConsumerGroup option: the client cannot join or commit for any group.
	opts = append(append(opts, kgo.WithLogger(klog)), readerOpts()...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	if err := kafkaconn.Ping(ctx, cl, m.kafka.Brokers, m.kafka.DialTimeout+5*time.Second); err != nil {
		cl.Close()
		return err
	}
	klog.Mute(false)
	m.client, m.admin, m.reader = cl, kadm.NewClient(cl), newRecordReader(cl)
	if m.store != nil {
		seeded, err := storedCommits(ctx, m.store)
		if err != nil {
			m.log.Warn().Err(err).Msg("commit ages start from zero: stored samples not read")
		} else {
			m.hist.seeded = seeded
		}
	}
	m.log.Info().Dur("interval", m.cfg.Lag.Interval).Str("dlq_pattern", m.cfg.Lag.DLQPattern).Msg("queue-health monitor started")
	return nil
}

// Sample measures queue health once: it reads the offsets and groups, the
// timestamps of the oldest unconsumed records, updates the metrics and,
// with a store, appends the sample to queue_health. A partial failure (a
// group not described, a timestamp not read in time, ClickHouse down) is
// counted and returned with the report of what was measured.
func (m *LagMonitor) Sample(ctx context.Context) (LagReport, error) {
	if m.client == nil {
		return LagReport{}, errors.New("lag monitor: Sample before Start")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	began := time.Now()
	defer func() { m.metrics.duration.Observe(time.Since(began).Seconds()) }()
	m.metrics.samples.Inc()
	o, err := m.readOffsets(ctx)
	if o == nil {
		m.metrics.failures.WithLabelValues("kafka").Inc()
		return LagReport{}, err
	}
	var errs []error
	if err != nil {
		m.metrics.failures.WithLabelValues("kafka").Inc()
		errs = append(errs, err)
	}
	pr := m.hist.rows(o)
	want := pr.want()
	rctx, cancel := context.WithTimeout(ctx, m.cfg.Lag.ReadTimeout)
	times := m.reader.timestamps(rctx, want, pr.bound)
	cancel()
	if len(times) < len(want) {
		m.metrics.failures.WithLabelValues("timestamps").Inc()
		errs = append(errs, fmt.Errorf("read %d of %d records for their timestamps within %s; their lag_seconds is -1",
			len(times), len(want), m.cfg.Lag.ReadTimeout))
	}
	rows := pr.fill(times)
	rep := reportFromRows(o.at, rows)
	m.metrics.publish(rows, rep)
	if m.store != nil {
		if err := insertQueueHealth(ctx, m.store, o.at, rows); err != nil {
			m.metrics.failures.WithLabelValues("clickhouse").Inc()
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// Run samples every collector.lag.interval until ctx ends or Shutdown is
// called. Failures are logged and counted, never fatal. It returns at once
// when the monitor is disabled.
func (m *LagMonitor) Run(ctx context.Context) error {
	if !m.cfg.Lag.Enabled {
		return nil
	}
	if m.client == nil {
		return errors.New("lag monitor: Run before Start")
	}
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("lag monitor: Run called twice")
	}
	defer close(m.runDone)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-m.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(m.cfg.Lag.Interval)
	defer tick.Stop()
	for {
		if _, err := m.Sample(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn().Err(err).Msg("queue-health sample incomplete")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Shutdown stops sampling and closes the Kafka client. Safe to call more
// than once.
func (m *LagMonitor) Shutdown(ctx context.Context) error {
	var err error
	m.shutdownOnce.Do(func() {
		close(m.done)
		if m.running.Load() {
			select {
			case <-m.runDone:
			case <-ctx.Done():
				err = fmt.Errorf("lag monitor shutdown: %w", ctx.Err())
			}
		}
		if m.client != nil {
			m.client.Close()
		}
	})
	return err
}
