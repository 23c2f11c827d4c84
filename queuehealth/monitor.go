package queuehealth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/component"
	"github.com/weft-sh/weft/internal/config"
	"github.com/weft-sh/weft/internal/kafkaconn"
)

// Settings is what the wiring code passes in.
type Settings struct {
	// Logger gets lifecycle and failure lines only, never one per sample.
	Logger zerolog.Logger
	// Registerer receives the weft_queue_* metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Monitor samples queue health on an interval: the lag, in messages and in
// seconds, of every consumer group reading the tapped topics (the
// applications' groups, not only weft's), each topic's depth and produce
// rate, and the dead-letter topics' depth and oldest record. Each sample is
// exported as Prometheus metrics and, with a store, appended to the
// queue_health table.
//
// It is read-only toward Kafka: admin requests (Metadata, ListOffsets,
// ListGroups, DescribeGroups, OffsetFetch) and a consumer that belongs to no
// group, to read the timestamp of single records. It never commits and never
// produces.
type Monitor struct {
	cfg   Config
	kafka kafkaconn.Config
	store *chstore.Store
	log   zerolog.Logger

	metrics                     *metrics
	includeRe, excludeRe, dlqRe *regexp.Regexp
	groupsInRe, groupsExRe      *regexp.Regexp

	runs   int        // calls of Run, so far
	mu     sync.Mutex // one sample at a time; guards the clients and hist
	client *kgo.Client
	admin  *kadm.Client
	reader *recordReader
	hist   *history
}

var _ component.Component = (*Monitor)(nil)

// New validates the configuration and builds the monitor; topics are the
// tapped topics (collector.topics), measured beside the dead-letter topics.
// Problems are named by their keys in the collector block ("lag.interval",
// "topics.include[0]"). store may be nil: samples are then only returned
// and exported. It does no I/O.
func New(cfg Config, topics Topics, kafka kafkaconn.Config, store *chstore.Store, set Settings) (*Monitor, error) {
	var p config.Problems
	p.Merge("lag", cfg.Validate())
	p.Merge("topics", topics.validate())
	if err := p.Err(); err != nil {
		return nil, err
	}
	return &Monitor{
		cfg: cfg, kafka: kafka, store: store,
		log:        set.Logger.With().Str("component", "queuehealth").Logger(),
		metrics:    newMetrics(set.Registerer),
		includeRe:  wholeName(topics.Include...),
		excludeRe:  wholeName(topics.Exclude...),
		dlqRe:      wholeName(cfg.DLQPattern),
		groupsInRe: wholeName(cfg.Groups.Include...),
		groupsExRe: wholeName(cfg.Groups.Exclude...),
		hist:       newHistory(),
	}, nil
}

// Start connects to Kafka and checks the brokers answer. With a store, it
// also reads back where each group's commits stood, so commit ages survive
// a restart of weft. When collector.lag.enabled is false it does nothing.
func (m *Monitor) Start(ctx context.Context) error {
	if !m.cfg.Enabled {
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
	m.mu.Lock()
	m.client, m.admin, m.reader = cl, kadm.NewClient(cl), newRecordReader(cl)
	m.mu.Unlock()
	m.reseed(ctx)
	m.log.Info().Dur("interval", m.cfg.Interval).Str("dlq_pattern", m.cfg.DLQPattern).Msg("queue-health monitor started")
	return nil
}

// reseed starts the history afresh from the commit positions stored
// with the last samples (by this replica or another), so commit ages
// survive a restart or a change of leader.
func (m *Monitor) reseed(ctx context.Context) {
	var seeded map[groupTP]commitSeen
	if m.store != nil {
		var err error
		if seeded, err = storedCommits(ctx, m.store); err != nil {
			m.log.Warn().Err(err).Msg("commit ages start from zero: stored samples not read")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hist = newHistory()
	if seeded != nil {
		m.hist.seeded = seeded
	}
}

// Resign clears the queue-health gauges once this replica stopped
// sampling (another leads): only the sampling replica reports them.
func (m *Monitor) Resign() { m.metrics.publish(nil, Report{}) }

// Sample measures queue health once: it reads the offsets and groups, the
// timestamps of the oldest unconsumed records, updates the metrics and,
// with a store, appends the sample to queue_health. A partial failure (a
// group not described, a timestamp not read in time, ClickHouse down) is
// counted and returned with the report of what was measured.
func (m *Monitor) Sample(ctx context.Context) (Report, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.client == nil {
		return Report{}, errors.New("queue health: Sample before Start or after Shutdown")
	}
	began := time.Now()
	defer func() { m.metrics.duration.Observe(time.Since(began).Seconds()) }()
	m.metrics.samples.Inc()
	o, err := m.readOffsets(ctx)
	if o == nil {
		m.metrics.failures.WithLabelValues("kafka").Inc()
		return Report{}, err
	}
	var errs []error
	if err != nil {
		m.metrics.failures.WithLabelValues("kafka").Inc()
		errs = append(errs, err)
	}
	pr := m.hist.rows(o)
	want := pr.want()
	rctx, cancel := context.WithTimeout(ctx, m.cfg.ReadTimeout)
	times := m.reader.timestamps(rctx, want, pr.bound)
	cancel()
	if len(times) < len(want) {
		m.metrics.failures.WithLabelValues("timestamps").Inc()
		errs = append(errs, fmt.Errorf("read %d of %d records for their timestamps within %s; their lag_seconds is -1",
			len(times), len(want), m.cfg.ReadTimeout))
	}
	rows := pr.fill(times)
	rep := reportFromRows(o.at, rows)
	m.metrics.publish(rows, rep)
	if m.store != nil {
		if err := store(ctx, m.store, o.at, rows); err != nil {
			m.metrics.failures.WithLabelValues("clickhouse").Inc()
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// Run samples every collector.lag.interval until ctx ends, then returns
// nil. Failures are logged and counted, never fatal. It returns at once
// when the monitor is disabled.
//
// Run may be called again after it returned (a replica that leads again,
// docs/replicas.md): it then forgets what it measured before and reads
// the commit positions the other replica stored, as a restart does.
func (m *Monitor) Run(ctx context.Context) error {
	if !m.cfg.Enabled {
		return nil
	}
	if !m.started() {
		return errors.New("queue health: Run before Start")
	}
	if m.runs++; m.runs > 1 {
		m.reseed(ctx)
	}
	tick := time.NewTicker(m.cfg.Interval)
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

// Shutdown closes the Kafka client, once a sample in progress has ended.
// It is safe to call more than once, and without Run.
func (m *Monitor) Shutdown(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.client != nil {
		m.client.Close()
		m.client, m.admin, m.reader = nil, nil, nil
	}
	return nil
}

func (m *Monitor) started() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.client != nil
}
