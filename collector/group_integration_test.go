package collector

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
)

// The tap in its consumer group, on the real broker: what moves in a
// rebalance, what a stop leaves behind.

// groupTap is a collector run in a test, with its logs and metrics.
type groupTap struct {
	c    *Collector
	reg  *prometheus.Registry
	logs *testenv.LogBuffer
	stop func() time.Duration // cancels Run, shuts down, and says how long that took
}

// noLeaks fails t if goroutines started from now on outlive it: call it
// before the taps start, so its check runs after they are all closed.
func noLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func startGroupTap(t *testing.T, cfg Config, brokers []string, store *chstore.Store) *groupTap {
	t.Helper()
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	logs := &testenv.LogBuffer{}
	reg := prometheus.NewRegistry()
	c, err := New(cfg, kc, store, Settings{Logger: zerolog.New(logs).Level(zerolog.InfoLevel), Registerer: reg})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, c.Start(ctx))
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	var once sync.Once
	var took time.Duration
	stop := func() time.Duration {
		once.Do(func() {
			start := time.Now()
			cancel()
			<-done
			_ = c.Shutdown(context.Background())
			took = time.Since(start)
		})
		return took
	}
	t.Cleanup(func() { stop() })
	return &groupTap{c: c, reg: reg, logs: logs, stop: stop}
}

// lines are the tap's log lines that contain s.
func (g *groupTap) lines(s string) []string {
	var out []string
	for _, l := range strings.Split(g.logs.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

func (g *groupTap) owned() map[topicPartition]bool {
	g.c.member.mu.Lock()
	defer g.c.member.mu.Unlock()
	out := map[topicPartition]bool{}
	for tp := range g.c.member.owned {
		out[tp] = true
	}
	return out
}

// produceSteadily writes plain-JSON events round-robin over the topic's
// partitions until stop is closed, and returns how many it wrote.
func produceSteadily(t *testing.T, brokers []string, topic string, stop <-chan struct{}) func() int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			v := fmt.Sprintf(`{"event_id":"e-%d","event_type":"OrderPlaced","order_id":"o-%d"}`, i, i%100)
			if cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(v)}).FirstErr() == nil {
				n.Add(1)
			}
		}
	}()
	return func() int64 { <-done; return n.Load() }
}

// TestScaleUpMovesOnlyWhatTheNewMemberTakes: a second tap joins the group
// of a first that owns every partition. The group rebalances
// incrementally (cooperative-sticky): the first gives up exactly the
// partitions the second takes, keeps consuming the others without a stop,
// and nothing is read twice — every commit named partitions it owned.
func TestScaleUpMovesOnlyWhatTheNewMemberTakes(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	name := testenv.Name(t)
	topic := "scaleup_" + name + ".orders"
	testenv.CreateTopic(t, brokers, topic, 4, nil)
	noLeaks(t)
	stop := make(chan struct{})
	produced := produceSteadily(t, brokers, topic, stop)

	cfg := Default()
	cfg.Group = "g_" + name
	cfg.Topics.Include = []string{regexp.QuoteMeta(topic)}
	cfg.Topics.RefreshInterval = time.Second
	cfg.Batch.FlushInterval = 100 * time.Millisecond
	a := startGroupTap(t, cfg, brokers, store)
	require.Eventually(t, func() bool { return len(a.owned()) == 4 && a.c.Stats().Stored > 0 }, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, a.c.Ready())

	// While the second joins, sample the first: what it owns, and when it
	// stored the records of the partitions it keeps.
	var minOwned atomic.Int64
	minOwned.Store(4)
	sampling := make(chan struct{})
	var longestPause time.Duration
	go func() {
		defer close(sampling)
		last, lastAt := a.c.Stats().Stored, time.Now()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			minOwned.Store(min(minOwned.Load(), int64(len(a.owned()))))
			if s := a.c.Stats().Stored; s != last {
				longestPause = max(longestPause, time.Since(lastAt))
				last, lastAt = s, time.Now()
			}
		}
	}()
	b := startGroupTap(t, cfg, brokers, store)
	require.Eventually(t, func() bool { return len(a.owned()) == 2 && len(b.owned()) == 2 }, 60*time.Second, 20*time.Millisecond,
		"the two share the four partitions")
	rebalanced := a.c.Stats().Stored
	require.Eventually(t, func() bool { return a.c.Stats().Stored > rebalanced && b.c.Stats().Stored > 0 }, 30*time.Second, 20*time.Millisecond,
		"both store")
	close(stop)
	<-sampling
	total := produced()

	kept, taken := a.owned(), b.owned()
	for tp := range taken {
		assert.False(t, kept[tp], "%v owned by both", tp)
	}
	assert.EqualValues(t, 2, minOwned.Load(), "the first never gave up the partitions it keeps, not even for a moment")
	assert.Zero(t, testutil.ToFloat64(a.c.metrics.rebalances.WithLabelValues("lost")))
	assert.Equal(t, 1.0, testutil.ToFloat64(a.c.metrics.rebalances.WithLabelValues("revoked")), "one revoke, of what moved")
	moved := map[string][]int32{}
	for tp := range taken {
		moved[tp.topic] = append(moved[tp.topic], tp.partition)
	}
	revokes := a.lines("partitions revoked")
	require.Len(t, revokes, 1)
	assert.Contains(t, revokes[0], fmt.Sprintf(`"revoked":%q`, formatPartitions(moved)), "the revoke named exactly the partitions the second took")
	assert.Equal(t, 2.0, testutil.ToFloat64(a.c.metrics.assigned))
	require.NoError(t, a.c.Ready())
	require.NoError(t, b.c.Ready())
	t.Logf("the first tap's longest pause between two stores while the second joined: %s", longestPause)

	// Every record stored, none read twice.
	require.Eventually(t, func() bool { return a.c.Stats().Stored+b.c.Stats().Stored >= total }, 60*time.Second, 50*time.Millisecond,
		"stored %d+%d of %d", a.c.Stats().Stored, b.c.Stats().Stored, total)
	assert.Equal(t, total, a.c.Stats().Consumed+b.c.Stats().Consumed, "no record read twice (a commit naming a partition another owns would rewind it)")
	var rows, distinct uint64
	require.NoError(t, testenv.Conn(t).QueryRow(context.Background(),
		"SELECT count(), uniqExact(partition, offset) FROM "+store.Table("events")+" WHERE topic = ?", topic).Scan(&rows, &distinct))
	assert.EqualValues(t, total, distinct)
	assert.EqualValues(t, total, rows, "no row stored twice")
}

// TestStaticMemberLeavesOnStop: a static member leaves the group on a
// graceful stop (collector.leave_group_on_stop, the default), so the other
// member takes its partitions at once; with the option off it stays in the
// group for its instance id to come back.
func TestStaticMemberLeavesOnStop(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	for _, leave := range []bool{true, false} {
		t.Run(fmt.Sprint("leave=", leave), func(t *testing.T) {
			name := testenv.Name(t)
			topic := "static_" + name + ".orders"
			testenv.CreateTopic(t, brokers, topic, 2, nil)
			noLeaks(t)
			cfg := Default()
			cfg.Group = "g_" + name
			cfg.Topics.Include = []string{regexp.QuoteMeta(topic)}
			cfg.Topics.RefreshInterval = time.Second
			cfg.SessionTimeout = 30 * time.Second
			cfg.LeaveGroupOnStop = leave
			cfg.InstanceID = "a-" + name
			a := startGroupTap(t, cfg, brokers, store)
			cfg.InstanceID = "b-" + name
			b := startGroupTap(t, cfg, brokers, store)
			require.Eventually(t, func() bool { return len(a.owned()) == 1 && len(b.owned()) == 1 }, 60*time.Second, 20*time.Millisecond)

			took := a.stop()
			assert.Less(t, took, 3*time.Second, "a graceful stop of a static member")
			members := func() []string {
				gs, err := adm.DescribeGroups(context.Background(), cfg.Group)
				require.NoError(t, err)
				var ids []string
				for _, m := range gs[cfg.Group].Members {
					if m.InstanceID != nil {
						ids = append(ids, *m.InstanceID)
					}
				}
				return ids
			}
			if leave {
				assert.Equal(t, []string{"b-" + name}, members(), "a left the group")
				require.Eventually(t, func() bool { return len(b.owned()) == 2 }, 10*time.Second, 20*time.Millisecond,
					"b takes a's partition at once, not after the 30 s session timeout")
				assert.Len(t, a.lines("left the consumer group"), 1)
			} else {
				assert.ElementsMatch(t, []string{"a-" + name, "b-" + name}, members(), "a stays in the group for its id to come back")
				assert.Len(t, a.lines("stopped without leaving the consumer group"), 1)
			}
		})
	}
}
