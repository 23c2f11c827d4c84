package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weft-sh/weft/internal/component"
	"github.com/weft-sh/weft/internal/config"
	"github.com/weft-sh/weft/internal/kafkaconn"
)

// Settings is what the wiring code passes in.
type Settings struct {
	// Logger gets one line per change of leadership and the failures.
	Logger zerolog.Logger
	// Registerer receives weft_leader_is_leader and
	// weft_leader_changes_total; nil registers nothing.
	Registerer prometheus.Registerer
	// Clock times the heartbeats and the self-fencing; nil is the real
	// clock.
	Clock clockwork.Clock
	// KafkaOpts are appended to the client's options (the tests cut its
	// connections with a kgo.Dialer).
	KafkaOpts []kgo.Opt
}

// Elector is this replica's membership of the leader group: a
// component.Component whose Run joins the group, heartbeats, and rejoins
// when the group rebalances, and which says whether this replica leads.
//
// The guarantee (docs/replicas.md): the coordinator names a new leader
// only once the old one left or was silent for leader.session_timeout, and
// a leader whose heartbeats went unconfirmed for two thirds of that stops
// leading first — it counts from when it sent the last confirmed
// heartbeat, which the coordinator received later. Two replicas lead at
// once only when a leader's process was frozen (a stopped VM, a stalled
// machine) past that margin and resumes with work in flight.
type Elector struct {
	cfg   Config
	kafka kafkaconn.Config
	opts  []kgo.Opt // Settings.KafkaOpts
	log   zerolog.Logger
	clock clockwork.Clock
	m     *metrics

	client *kgo.Client // set by Start when enabled

	mu       sync.Mutex
	leading  bool
	stopped  bool               // Run ended: never leads again
	endTerm  context.CancelFunc // ends the current term's context
	term     context.Context
	deadline time.Time      // when a leader fences itself (zero: never)
	change   chan struct{}  // closed at the next change of leading
	held     sync.WaitGroup // gated Runs of the current term

	// The membership, owned by Run's goroutine.
	memberID   string
	generation int32
	members    []string // the group's members, told to the leader by JoinGroup
	lastErr    string   // the last failure logged, so a long outage logs once
}

var _ component.Component = (*Elector)(nil)

// New validates cfg (its Group must be set: Config.WithGroup) and builds
// the elector. It does no I/O.
func New(cfg Config, kafka kafkaconn.Config, set Settings) (*Elector, error) {
	var p config.Problems
	p.Merge("", cfg.Validate())
	if cfg.Enabled && cfg.Group == "" {
		p.Addf("group", "required")
	}
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("leader: %w", err)
	}
	e := &Elector{cfg: cfg, kafka: kafka, opts: set.KafkaOpts, clock: set.Clock, m: newMetrics(set.Registerer),
		log: set.Logger.With().Str("component", "leader").Logger(), change: make(chan struct{})}
	if e.clock == nil {
		e.clock = clockwork.NewRealClock()
	}
	return e, nil
}

// Leading reports whether this replica leads now.
func (e *Elector) Leading() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading
}

// Start connects to Kafka with the tap's connection settings and checks
// the brokers answer. It does not wait for the group: Run joins it.
func (e *Elector) Start(ctx context.Context) error {
	if !e.cfg.Enabled {
		return nil
	}
	opts, err := e.kafka.Opts(e.log)
	if err != nil {
		return err
	}
	klog := kafkaconn.NewLogger(e.log)
	klog.Mute(true)
	// No ConsumerGroup option: the group is joined by hand, below.
	cl, err := kgo.NewClient(append(append(opts, kgo.WithLogger(klog)), e.opts...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	if err := kafkaconn.Ping(ctx, cl, e.kafka.Brokers, e.kafka.DialTimeout+5*time.Second); err != nil {
		cl.Close()
		return err
	}
	if err := e.authorized(ctx, cl); err != nil {
		cl.Close()
		return err
	}
	klog.Mute(false)
	e.client = cl
	return nil
}

// ErrNotAuthorized marks a leader group this replica's principal may not
// join: without it no replica would ever lead.
var ErrNotAuthorized = errors.New("leader group not authorized")

// authorized asks the coordinator to describe the group, which the READ
// that joining needs implies, so a missing ACL fails at start-up instead
// of leaving the cluster without a leader. Any other answer (a fresh
// cluster whose coordinator is not there yet) is left to Run, which
// retries.
func (e *Elector) authorized(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{e.cfg.Group}
	resp, err := req.RequestWith(ctx, cl)
	if err == nil && len(resp.Groups) == 1 {
		err = kerr.ErrorForCode(resp.Groups[0].ErrorCode)
	}
	switch {
	case err == nil, errors.Is(err, kerr.GroupIDNotFound): // not joined yet (Kafka 4 says so)
		return nil
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		return fmt.Errorf("%w: group %q: grant this principal READ on it (docs/kafka-access.md), or set leader.enabled: false on a single replica: %w",
			ErrNotAuthorized, e.cfg.Group, err)
	default:
		e.log.Warn().Err(err).Str("group", e.cfg.Group).Msg("leader group not checked at start; joining it anyway")
		return nil
	}
}

// Shutdown closes the Kafka client. It is safe to call more than once.
func (e *Elector) Shutdown(context.Context) error {
	e.stop("stopping")
	if e.client != nil {
		e.client.Close()
		e.client = nil
	}
	return nil
}

// Run is a member of the leader group until ctx ends, rejoining whenever
// the group rebalances or the coordinator forgets this replica. When ctx
// ends it stops leading, waits (up to the session timeout) for the gated
// components' Runs to return, and leaves the group, so another replica
// leads within a heartbeat. With leader.enabled false it leads until ctx
// ends. Failures are logged and retried, never returned.
func (e *Elector) Run(ctx context.Context) error {
	if !e.cfg.Enabled {
		e.lead(time.Time{}, "leader election is off (leader.enabled: false)")
		<-ctx.Done()
		e.stop("stopping")
		return nil
	}
	if e.client == nil {
		return errors.New("leader: Run before Start")
	}
	e.log.Info().Str("group", e.cfg.Group).Dur("session_timeout", e.cfg.SessionTimeout).Msg("joining the leader group")
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { e.fence(fctx) })
	var backoff time.Duration
	for ctx.Err() == nil {
		err := e.member(ctx)
		if err == nil || ctx.Err() != nil {
			backoff = 0
			continue
		}
		if s := err.Error(); s != e.lastErr {
			e.lastErr = s
			e.log.Warn().Err(err).Str("group", e.cfg.Group).Msg("leader group: will retry")
		}
		backoff = min(max(2*backoff, 250*time.Millisecond), e.cfg.SessionTimeout)
		select {
		case <-ctx.Done():
		case <-e.clock.After(backoff):
		}
	}
	cancel()
	wg.Wait()
	e.stop("stopping")
	e.awaitHeld()
	e.leave()
	return nil
}

// lead makes this replica the leader, or keeps it leading, after the
// coordinator named it leader of the generation in an answer to a request
// sent at sent (a SyncGroup, then each Heartbeat): the deadline moves on
// to two thirds of a session after sent. A zero sent leads with no
// deadline (election off).
func (e *Elector) lead(sent time.Time, why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	if !sent.IsZero() {
		if d := sent.Add(e.cfg.fenceAfter()); d.After(e.deadline) {
			e.deadline = d
		}
		if !e.clock.Now().Before(e.deadline) {
			return // answered too late to be sure nobody else leads by now
		}
	}
	if e.leading {
		return
	}
	e.leading = true
	e.term, e.endTerm = context.WithCancel(context.Background())
	e.changed()
	e.log.Info().Str("group", e.cfg.Group).Str("member_id", e.memberID).Int32("generation", e.generation).Str("why", why).Msg("leading")
}

// unlead stops leading, saying why.
func (e *Elector) unlead(why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unleadLocked(why)
}

func (e *Elector) unleadLocked(why string) {
	if !e.leading {
		return
	}
	e.leading = false
	e.endTerm()
	e.changed()
	e.log.Info().Str("group", e.cfg.Group).Str("member_id", e.memberID).Msg("no longer leading: " + why)
}

// stop stops leading for good.
func (e *Elector) stop(why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unleadLocked(why)
	if !e.stopped {
		e.stopped = true
		e.changed()
	}
}

// changed publishes a change of e.leading; e.mu is held.
func (e *Elector) changed() {
	if e.leading {
		e.m.isLeader.Set(1)
	} else {
		e.m.isLeader.Set(0)
	}
	e.m.changes.Inc()
	close(e.change)
	e.change = make(chan struct{})
}

// fence stops leading once the deadline passed without a confirmed
// heartbeat, checking a few times per heartbeat, until ctx ends.
func (e *Elector) fence(ctx context.Context) {
	t := e.clock.NewTicker(max(e.cfg.heartbeat()/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
		e.mu.Lock()
		if e.leading && !e.deadline.IsZero() && !e.clock.Now().Before(e.deadline) {
			e.unleadLocked(fmt.Sprintf("no heartbeat answered for %s", e.cfg.fenceAfter()))
		}
		e.mu.Unlock()
	}
}

// hold waits until this replica leads and returns the term's context,
// which ends when it stops leading, and release, which the caller calls
// once its work of the term returned. ok is false when ctx ended first or
// the elector stopped.
func (e *Elector) hold(ctx context.Context) (term context.Context, release func(), ok bool) {
	for {
		e.mu.Lock()
		if e.leading {
			e.held.Add(1)
			term := e.term
			e.mu.Unlock()
			return term, e.held.Done, true
		}
		stopped, ch := e.stopped, e.change
		e.mu.Unlock()
		if stopped {
			return nil, nil, false
		}
		select {
		case <-ctx.Done():
			return nil, nil, false
		case <-ch:
		}
	}
}

// awaitHeld waits, up to the session timeout, for the gated Runs of the
// last term to return: a graceful stop hands over only finished work.
func (e *Elector) awaitHeld() {
	done := make(chan struct{})
	go func() { e.held.Wait(); close(done) }()
	select {
	case <-done:
	case <-e.clock.After(e.cfg.SessionTimeout):
		e.log.Warn().Dur("waited", e.cfg.SessionTimeout).Msg("leader-only work still stopping; leaving the leader group anyway")
	}
}
