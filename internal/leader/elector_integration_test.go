package leader

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
)

// The election against the real broker: one leader among three, a
// graceful stop handed over within a heartbeat or two, a killed leader
// replaced after its session, and never two leaders at any instant the
// test looks (every millisecond).

// replica is one running elector.
type replica struct {
	e      *Elector
	cable  *cable
	cancel context.CancelFunc
	done   chan struct{}
}

// cable is a replica's network: cut, its connections to the brokers drop
// and new ones are refused, as when its machine is cut off.
type cable struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (c *cable) dial(ctx context.Context, network, host string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return nil, errors.New("cable cut")
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		c.conns = append(c.conns, conn)
	}
	return conn, err
}

func (c *cable) set(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for _, conn := range c.conns {
			conn.Close()
		}
		c.conns = nil
	}
}

func startReplicas(t *testing.T, n int, session time.Duration) []*replica {
	t.Helper()
	kafka := kafkaconn.Default()
	kafka.Brokers = testenv.Kafka(t)
	group := testenv.Name(t) + ".leader"
	var rs []*replica
	for i := 0; i < n; i++ {
		c := &cable{}
		e, err := New(Config{Enabled: true, Group: group, SessionTimeout: session}, kafka,
			Settings{Logger: zerolog.New(zerolog.NewTestWriter(t)).With().Int("replica", i).Logger(),
				KafkaOpts: []kgo.Opt{kgo.Dialer(c.dial)}})
		require.NoError(t, err)
		require.NoError(t, e.Start(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		r := &replica{e: e, cable: c, cancel: cancel, done: make(chan struct{})}
		go func() { defer close(r.done); _ = e.Run(ctx) }()
		rs = append(rs, r)
	}
	t.Cleanup(func() {
		for _, r := range rs {
			r.stop()
		}
	})
	return rs
}

// stop stops the replica gracefully: it leaves the group.
func (r *replica) stop() {
	r.cancel()
	<-r.done
	_ = r.e.Shutdown(context.Background())
}

// watch samples who leads every millisecond until stopped, counting the
// instants two or more replicas led at once.
type watch struct {
	mu      sync.Mutex
	leaders []int        // who led at the last sample
	double  int          // samples with more than one leader
	led     map[int]bool // every replica seen leading
	stop    chan struct{}
	done    chan struct{}
}

func watchLeaders(t *testing.T, rs []*replica) *watch {
	w := &watch{stop: make(chan struct{}), done: make(chan struct{}), led: map[int]bool{}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			var ls []int
			for i, r := range rs {
				if r.e.Leading() {
					ls = append(ls, i)
				}
			}
			w.mu.Lock()
			w.leaders = ls
			for _, l := range ls {
				w.led[l] = true
			}
			if len(ls) > 1 {
				w.double++
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(w.stop)
		<-w.done
		assert.Zero(t, w.double, "samples with two leaders at once")
	})
	return w
}

// others counts the replicas other than r seen leading so far.
func (w *watch) others(r int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for l := range w.led {
		if l != r {
			n++
		}
	}
	return n
}

// leader waits until exactly one replica leads, not one of those named
// in not, and returns it and how long that took.
func (w *watch) leader(t *testing.T, within time.Duration, not ...int) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		w.mu.Lock()
		ls := w.leaders
		w.mu.Unlock()
		if len(ls) == 1 && !slices.Contains(not, ls[0]) {
			return ls[0], time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no single leader within %s", within)
	return -1, 0
}

// settled waits until every replica is a member of the group in a stable
// generation, and returns the group's description.
func settled(t *testing.T, rs []*replica) kadm.DescribedGroup {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(testenv.Kafka(t)...))
	require.NoError(t, err)
	defer cl.Close()
	group := rs[0].e.cfg.Group
	var g kadm.DescribedGroup
	require.Eventually(t, func() bool {
		groups, err := kadm.NewClient(cl).DescribeGroups(context.Background(), group)
		require.NoError(t, err)
		g = groups[group]
		return g.State == "Stable" && len(g.Members) == len(rs)
	}, 30*time.Second, 20*time.Millisecond, "every replica a member of a stable group")
	return g
}

// TestElectOne: three replicas elect one leader, which stays leader as
// the others join.
func TestElectOne(t *testing.T) {
	rs := startReplicas(t, 3, 6*time.Second)
	w := watchLeaders(t, rs)
	first, took := w.leader(t, 30*time.Second)
	t.Logf("replica %d leads after %s", first, took.Round(time.Millisecond))
	time.Sleep(3 * time.Second) // heartbeats go on: the same leader
	now, _ := w.leader(t, time.Second)
	assert.Equal(t, first, now)

	g := settled(t, rs)
	assert.Equal(t, protocolType, g.ProtocolType)
}

// TestGracefulHandover: a leader that stops leaves the group, and another
// replica leads within about a heartbeat (the others hear of the
// rebalance at their next one). The session is 30 s here, so a handover
// in less than 10 s cannot be the session running out.
func TestGracefulHandover(t *testing.T) {
	rs := startReplicas(t, 3, 30*time.Second)
	w := watchLeaders(t, rs)
	settled(t, rs)
	old, _ := w.leader(t, time.Second)
	stopped := time.Now()
	rs[old].stop()
	next, _ := w.leader(t, 10*time.Second, old)
	took := time.Since(stopped)
	t.Logf("graceful stop of replica %d: replica %d leads %s after the stop began", old, next, took.Round(time.Millisecond))
	assert.NotEqual(t, old, next)
}

// TestKilledLeader: a leader whose client dies (as in a kill -9, or cut
// off from the brokers) stops leading by itself two thirds into its
// session, and another replica leads once the coordinator gave up on it,
// about a session timeout (6 s) later — never both at once.
func TestKilledLeader(t *testing.T) {
	const session = 6 * time.Second
	rs := startReplicas(t, 3, session)
	w := watchLeaders(t, rs)
	settled(t, rs)
	old, _ := w.leader(t, time.Second)
	killed := time.Now()
	rs[old].e.client.Close() // no LeaveGroup, no heartbeat from here on
	require.Eventually(t, func() bool { return !rs[old].e.Leading() }, 2*session, time.Millisecond)
	fenced := time.Since(killed)
	next, _ := w.leader(t, 4*session, old)
	took := time.Since(killed)
	t.Logf("replica %d cut off: it stopped leading after %s, replica %d leads after %s", old, fenced.Round(time.Millisecond),
		next, took.Round(time.Millisecond))
	assert.NotEqual(t, old, next)
	assert.Greater(t, took, fenced, "the successor leads only after the old leader stopped")
	assert.GreaterOrEqual(t, took, session*2/3, "the coordinator waits for the session before naming another")
}

// TestACL: on the broker's SASL_SSL listener, where a principal can do
// only what its ACLs allow, joining the leader group needs READ on it
// (docs/kafka-access.md): without it Start fails and says so; with it the
// replica leads.
func TestACL(t *testing.T) {
	k := testenv.KafkaSecure(t)
	adm := k.Admin(t)
	user, pw := k.NewSCRAMUser(t, adm)
	group := testenv.Name(t) + ".leader"
	e, err := New(Config{Enabled: true, Group: group, SessionTimeout: 6 * time.Second}, k.Conn("scram-sha-512", user, pw),
		Settings{Logger: zerolog.New(zerolog.NewTestWriter(t))})
	require.NoError(t, err)
	err = e.Start(context.Background())
	require.ErrorIs(t, err, ErrNotAuthorized)
	require.ErrorContains(t, err, "grant this principal READ on it")
	t.Logf("without the ACL: %v", err)

	k.Grant(t, adm, kadm.NewACLs().Allow("User:"+user).Groups(group).ResourcePatternType(kadm.ACLPatternLiteral).
		Operations(kadm.OpRead))
	require.NoError(t, e.Start(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	defer func() { cancel(); <-done; _ = e.Shutdown(context.Background()) }()
	require.Eventually(t, e.Leading, 30*time.Second, 10*time.Millisecond, "leads with READ on the group alone")
}

// TestBlip: a leader cut off from the brokers for less than its session
// stops leading by itself two thirds into it; the coordinator still counts
// it the leader of its generation, so nobody else leads, and once its
// heartbeats are answered again it leads again. The session is 12 s here,
// leaving seconds between the fence (8 s and a check) and the coordinator
// giving up (at least 11 s) for the heartbeats to come back.
func TestBlip(t *testing.T) {
	const session = 12 * time.Second
	rs := startReplicas(t, 3, session)
	w := watchLeaders(t, rs)
	settled(t, rs)
	old, _ := w.leader(t, time.Second)
	cut := time.Now()
	rs[old].cable.set(true)
	require.Eventually(t, func() bool { return !rs[old].e.Leading() }, session, time.Millisecond)
	fenced := time.Since(cut)
	require.Eventually(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.leaders) == 0 }, time.Second, time.Millisecond)
	rs[old].cable.set(false)
	again, took := w.leader(t, session)
	t.Logf("replica %d cut off: stopped leading after %s; reconnected, replica %d leads %s later", old, fenced.Round(time.Millisecond),
		again, took.Round(time.Millisecond))
	assert.Equal(t, old, again, "the same leader: the coordinator never gave up on it")
	assert.EqualValues(t, 0, w.others(old), "nobody else led meanwhile")
}
