package demo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Consumers runs the shop's services as consumers of the demo topics: one
// consumer group per service (Config.ConsumerGroups), each a group member
// that reads its upstream topics and commits what it read, so that queue
// health shows the applications' lag. It never produces. One service can
// fall behind (it reads at a throttled rate), one can stop (it leaves its
// group for good after a while); the others keep up.
//
// It has the shape of weft's components: NewConsumers does no I/O, Start
// connects and joins the groups, Run consumes until its context ends, and
// Shutdown leaves the groups.
type Consumers struct {
	groups []ConsumerGroup
	opts   []kgo.Opt
	log    zerolog.Logger

	mu      sync.Mutex
	clients map[string]*kgo.Client // by group; a group leaves when its client closes
	started time.Time
}

// NewConsumers builds the consumers of a valid config; opts connect to the
// cluster (seed brokers, TLS, SASL, logger) and get the group options added.
// With consumers.enabled false it returns consumers that do nothing. It does
// no I/O.
func NewConsumers(cfg Config, opts []kgo.Opt, log zerolog.Logger) (*Consumers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Consumers{
		groups: cfg.ConsumerGroups(), opts: opts,
		log: log.With().Str("component", "demo_consumers").Logger(),
	}, nil
}

// Groups returns the consumer groups, one per service, with how each
// consumes: what the manifest records (Manifest.Consumers).
func (c *Consumers) Groups() []ConsumerGroup {
	out := make([]ConsumerGroup, len(c.groups))
	copy(out, c.groups)
	return out
}

// Start connects and joins every group. The topics must exist. A group that
// never committed on a partition of its topics gets the partition's end
// offset committed first: the service was up to date with the traffic so
// far, so it starts with no lag and reads what comes next. A group that
// already committed (a previous run) resumes from its commits.
func (c *Consumers) Start(ctx context.Context) error {
	if len(c.groups) == 0 {
		return nil
	}
	admin, err := kgo.NewClient(c.opts...)
	if err != nil {
		return fmt.Errorf("demo consumers: kafka client: %w", err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	for _, g := range c.groups {
		if err := seedCommits(ctx, adm, g); err != nil {
			return err
		}
	}
	clients := make(map[string]*kgo.Client, len(c.groups))
	for _, g := range c.groups {
		opts := append(append([]kgo.Opt{}, c.opts...),
			kgo.ClientID(g.Group),
			kgo.ConsumerGroup(g.Group),
			kgo.ConsumeTopics(g.Topics...),
			kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			for _, cl := range clients {
				cl.Close()
			}
			return fmt.Errorf("demo consumers: group %s: %w", g.Group, err)
		}
		clients[g.Group] = cl
	}
	c.mu.Lock()
	c.clients, c.started = clients, time.Now()
	c.mu.Unlock()
	ev := c.log.Info()
	for _, g := range c.groups {
		ev = ev.Str(g.Group, string(g.Behavior))
	}
	ev.Msg("demo services consuming")
	return nil
}

// seedCommits commits the end offsets of the partitions of g's topics that
// the group has no commit on.
func seedCommits(ctx context.Context, adm *kadm.Client, g ConsumerGroup) error {
	var ends kadm.ListedOffsets
	var err error
	// Topics created a moment ago can be unknown to the broker asked until
	// the controller's metadata reaches it (UNKNOWN_TOPIC_OR_PARTITION, a
	// retriable error): ask again for a few seconds.
	for attempt := 0; ; attempt++ {
		ends, err = adm.ListEndOffsets(ctx, g.Topics...)
		if err == nil {
			err = ends.Error()
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) || attempt == 50 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("demo consumers: end offsets of %v: %w", g.Topics, err)
	}
	committed, err := adm.FetchOffsets(ctx, g.Group)
	if err == nil {
		err = committed.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) { // kfake's answer for a group it never saw
		committed, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("demo consumers: offsets of group %s: %w", g.Group, err)
	}
	var seed kadm.Offsets
	ends.Each(func(lo kadm.ListedOffset) {
		if o, ok := committed.Lookup(lo.Topic, lo.Partition); !ok || o.At < 0 {
			seed.AddOffset(lo.Topic, lo.Partition, lo.Offset, -1)
		}
	})
	if len(seed) == 0 {
		return nil
	}
	resp, err := adm.CommitOffsets(ctx, g.Group, seed)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("demo consumers: commit the start of group %s: %w", g.Group, err)
	}
	return nil
}

// Run consumes, each group as its behavior says, until ctx ends; then each
// group commits what it read and Run returns nil. Read and commit failures
// are logged when they start, never fatal.
func (c *Consumers) Run(ctx context.Context) error {
	c.mu.Lock()
	clients, started := c.clients, c.started
	c.mu.Unlock()
	if len(c.groups) == 0 {
		return nil
	}
	if clients == nil {
		return errors.New("demo consumers: Run before Start")
	}
	var wg sync.WaitGroup
	for _, g := range c.groups {
		cl := clients[g.Group]
		if cl == nil {
			continue
		}
		wg.Go(func() { c.consume(ctx, g, cl, started) })
	}
	wg.Wait()
	return nil
}

// consume is one service's loop.
func (c *Consumers) consume(ctx context.Context, g ConsumerGroup, cl *kgo.Client, started time.Time) {
	log := c.log.With().Str("group", g.Group).Logger()
	pollCtx := ctx
	if g.Behavior == BehaviorStopped {
		var cancel context.CancelFunc
		pollCtx, cancel = context.WithDeadline(ctx, started.Add(g.StopAfter))
		defer cancel()
	}
	var thr *throttle
	if g.Behavior == BehaviorLagging {
		thr = newThrottle(g.Rate)
	}
	var read int64
	failing := map[string]bool{} // what → failing since its last success: logged once
	report := func(what string, err error) {
		switch {
		case err == nil:
			failing[what] = false
		case pollCtx.Err() != nil: // stopping: the poll or commit was cut short
		case !failing[what]:
			failing[what] = true
			log.Warn().Err(err).Msg("demo service: " + what + " failed; retrying")
		}
	}
	for pollCtx.Err() == nil {
		limit := -1 // everything fetched
		if thr != nil {
			n, err := thr.wait(pollCtx)
			if err != nil {
				break
			}
			limit = n
		}
		fs := cl.PollRecords(pollCtx, limit)
		recs := fs.Records()
		if thr != nil {
			thr.took(len(recs))
		}
		read += int64(len(recs))
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		report("read", ferr)
		if len(recs) > 0 {
			report("commit", cl.CommitUncommittedOffsets(pollCtx))
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := cl.CommitUncommittedOffsets(cctx); err != nil {
		log.Warn().Err(err).Msg("demo service: last commit failed")
	}
	if g.Behavior == BehaviorStopped && ctx.Err() == nil {
		c.close(g.Group)
		log.Info().Int64("records", read).Dur("after", g.StopAfter).
			Msg("demo service stopped: left its group for good, its lag grows from now on")
	}
}

// close closes one group's client, which leaves the group.
func (c *Consumers) close(group string) {
	c.mu.Lock()
	cl := c.clients[group]
	delete(c.clients, group)
	c.mu.Unlock()
	if cl != nil {
		cl.Close()
	}
}

// Shutdown leaves every group still joined. It is safe to call more than
// once, and without Run.
func (c *Consumers) Shutdown(context.Context) error {
	c.mu.Lock()
	clients := c.clients
	c.clients = map[string]*kgo.Client{}
	c.mu.Unlock()
	for _, cl := range clients {
		cl.Close()
	}
	return nil
}

// throttle is a token bucket: rate records per second, holding at most one
// second's worth (and at least one record).
type throttle struct {
	rate, burst, tokens float64
	last                time.Time
}

func newThrottle(rate float64) *throttle {
	return &throttle{rate: rate, burst: max(1, rate), tokens: 1, last: time.Now()}
}

// wait blocks until at least one record may be read and returns how many may.
func (t *throttle) wait(ctx context.Context) (int, error) {
	for {
		now := time.Now()
		t.tokens = min(t.burst, t.tokens+now.Sub(t.last).Seconds()*t.rate)
		t.last = now
		if t.tokens >= 1 {
			return int(t.tokens), nil
		}
		timer := time.NewTimer(time.Duration((1 - t.tokens) / t.rate * float64(time.Second)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return 0, ctx.Err()
		case <-timer.C:
		}
	}
}

// took spends n records.
func (t *throttle) took(n int) { t.tokens -= float64(n) }
