package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/kafkaconn"
)

// Settings is what the wiring code passes in.
type Settings struct {
	// Logger gets lifecycle and failure lines only, never one per record.
	Logger zerolog.Logger
	// Registerer receives the collector's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Audit turns the audit trail on (audit.go); nil leaves it off.
	Audit *Audit
	// Clock times rebalances for Ready; nil is the real clock.
	Clock clockwork.Clock
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
	audit   *auditTrail // nil: the audit trail is off
	// consumedBy counts consumed records per topic; Run's goroutine owns it.
	consumedBy topicCounter
	backlog    backlog
	clock      clockwork.Clock
	member     *membership

	client       *kgo.Client
	klog         *kafkaconn.Logger
	cancelClient context.CancelFunc // ends the client's requests in flight (a join) and its goroutines

	// fenced is closed when the broker fenced the tap's instance id
	// (groupleave.go): Run returns a FencedError.
	fenced    chan struct{}
	fenceOnce sync.Once

	consumed, stored, quarantined atomic.Int64
	rebalanceWanted               atomic.Bool            // a rebalance waits for the pipeline to drain
	lastErr                       atomic.Pointer[string] // the last failed insert, until one succeeds
	fetchErr                      atomic.Pointer[string] // an error that stops consuming (authorization), until records arrive or blockedHold passes without it
	recreated                     sync.Map               // topic → struct{}: deleted and recreated since the tap began reading it (UNKNOWN_TOPIC_ID)
	fetchErrAt                    atomic.Int64           // Unix ns of the last poll that returned fetchErr
	storingSince                  atomic.Int64           // Unix ns when the insert in flight began (0: none); StoringSince

	running      atomic.Bool
	shutdownOnce sync.Once
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
	clock := set.Clock
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	c := &Collector{
		cfg: cfg, kafka: kafka, store: store, decoder: d, clock: clock,
		log:     set.Logger.With().Str("component", "collector").Logger(),
		metrics: newMetrics(set.Registerer),
		fenced:  make(chan struct{}),
	}
	c.member = newMembership(clock, c.log, cfg.Group, c.metrics)
	c.consumedBy.vec = c.metrics.consumed
	if set.Audit != nil {
		c.audit = newAuditTrail(*set.Audit, store, c.log, c.metrics)
		c.audit.startOffset = c.auditStart
	}
	if set.Registerer != nil {
		set.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "weft", Subsystem: "collector", Name: "backlog_records",
			Help: "Records the tap has yet to read in the partitions of its recent polls (end of the log minus the last record polled).",
		}, func() float64 { return float64(c.Backlog()) }))
	}
	return c, nil
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
	// The client's own context, not ctx: a graceful stop still stores and
	// commits through it, then Shutdown cancels it.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	opts = append(opts,
		kgo.WithContext(cctx),
		kgo.WithLogger(klog),
		kgo.WithHooks(groupErrors{c}),
		kgo.ConsumerGroup(c.cfg.Group),
		// franz-go's default (v1.22.3, go.mod: the only balancer in its
		// default config), named so that it stays: rebalances are incremental,
		// so a member that joins or leaves moves only the partitions it
		// takes or gives up, and the others go on consuming theirs
		// (docs/delivery.md).
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
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
		// follows its insert, so a rebalance never splits a batch. The
		// pipeline drains and allows the rebalance when one waits
		// (pipeline.go).
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) {
			c.member.blocked()
			c.rebalanceWanted.Store(true)
		}),
		// Under BlockRebalanceOnPoll these run only once the pipeline
		// drained (pipeline.go), so what they forget is not in a batch.
		// A cooperative revoke names only the partitions that move.
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, added map[string][]int32) { c.member.assigned(added) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, gone map[string][]int32) {
			c.member.revoked(gone)
			c.forget(gone)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, gone map[string][]int32) {
			c.member.lost(gone)
			c.forget(gone)
		}),
		kgo.MetadataMaxAge(c.cfg.Topics.RefreshInterval),
		kgo.MetadataMinAge(min(c.cfg.Topics.RefreshInterval, 5*time.Second)),
	)
	if c.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.cfg.InstanceID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		cancel()
		return fmt.Errorf("kafka client: %w", err)
	}
	if err := kafkaconn.Ping(ctx, cl, c.kafka.Brokers, c.kafka.DialTimeout+5*time.Second); err != nil {
		cl.Close()
		cancel()
		return err
	}
	klog.Mute(false)
	c.client, c.klog, c.cancelClient = cl, klog, cancel
	c.member.joining()
	membership := "dynamic (no collector.instance_id: a restarted replica waits out the session timeout of the one it replaces)"
	if c.cfg.InstanceID != "" {
		membership = "static"
	}
	c.log.Info().Str("group", c.cfg.Group).Str("instance_id", c.cfg.InstanceID).Str("membership", membership).
		Strs("include", c.cfg.Topics.Include).Msg("tap started")
	return nil
}

// forget drops what the tap kept of partitions it no longer owns: their
// backlog, and their audit logs (the next owner loads the stored states).
func (c *Collector) forget(gone map[string][]int32) {
	c.backlog.forget(gone)
	if c.audit != nil {
		c.audit.forget(gone)
	}
}

func anchored(pats []string) []string {
	out := make([]string, len(pats))
	for i, p := range pats {
		out[i] = "^(?:" + p + ")$"
	}
	return out
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
	if c.isFenced() {
		return c.fencedError()
	}
	if topics := c.recreatedTopics(); len(topics) > 0 {
		return fmt.Errorf("%s deleted and recreated while the tap read it: it reads only the first instance, so the new one's records are not stored (docs/runbook.md, WeftTopicRecreated)",
			strings.Join(topics, ", "))
	}
	return c.member.notConsuming(len(c.client.GetConsumeTopics()) > 0, c.cfg.MaxRebalance)
}

// recreatedTopics are the topics the broker said were deleted and
// recreated, sorted.
func (c *Collector) recreatedTopics() []string {
	var out []string
	c.recreated.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	slices.Sort(out)
	return out
}

// blocking reports errors that keep the tap from consuming until an
// operator acts: missing ACLs or failed authentication. Retriable errors
// (leader moves, timeouts) are not.
func blocking(err error) bool {
	return errors.Is(err, kerr.GroupAuthorizationFailed) || errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) || errors.Is(err, kerr.SaslAuthenticationFailed)
}

// Backlog is how many records the tap has yet to read: for each partition
// of its recent polls, those between the last one polled and the end of the
// log, as the broker reported it then. It lags by one poll and says nothing
// of partitions the tap has not read from yet.
func (c *Collector) Backlog() int64 { return c.backlog.records() }

// Behind reports whether the tap is catching up: more than two batches of
// records wait in the log beyond what it polled.
func (c *Collector) Behind() bool { return c.Backlog() > 2*int64(c.cfg.Batch.MaxRecords) }

// StoringSince is when the insert in flight began, or zero when none is:
// every row it stores is stamped (ingested_at) at or after that instant.
// The detector ends its ingest window there, so rows that become visible
// late (a slow insert, a retried one) are never behind its window.
func (c *Collector) StoringSince() time.Time {
	if ns := c.storingSince.Load(); ns != 0 {
		return time.Unix(0, ns).UTC()
	}
	return time.Time{}
}

// Stats returns running totals.
func (c *Collector) Stats() Stats {
	return Stats{Consumed: c.consumed.Load(), Stored: c.stored.Load(), Quarantined: c.quarantined.Load()}
}

// Shutdown leaves the group (groupleave.go: within a few seconds, whatever
// the group's state) and closes the client. Call it after Run returned
// (Run stores and commits what it buffered); records polled and not stored
// are read again on the next start. Safe to call more than once, or
// without Run.
func (c *Collector) Shutdown(ctx context.Context) error {
	c.shutdownOnce.Do(func() {
		if c.client == nil {
			return
		}
		c.client.AllowRebalance()
		if !c.isFenced() {
			c.leave(ctx)
		}
		c.cancelClient() // a join still in flight ends now: Close does not wait for it
		c.client.Close()
	})
	return nil
}
