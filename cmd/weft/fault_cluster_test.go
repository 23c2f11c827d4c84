package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/embedch"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestFaultClusterShardDown: weft stores into a cluster of two embedded
// ClickHouse servers (clickhouse.cluster: events_local on each shard under
// a Distributed events sharded by order), and under a steady stream the
// second shard is killed with SIGKILL. An insert needs every shard
// (distributed_foreground_insert), so while the shard is down the tap
// stores and commits nothing: its group's lag grows, and /readyz says the
// inserts are failing. The shard restarts on its data directory and port,
// the tap resumes by itself, and in the end every record is stored once,
// each order's rows on one shard, both shards holding some.
func TestFaultClusterShardDown(t *testing.T) {
	brokers := testenv.Kafka(t)
	lib, err := embedch.Fetch(context.Background(), embedch.FetchOptions{})
	require.NoError(t, err)
	cluster := embedch.Cluster{Name: "fault_shards"}
	var dirs []string
	for range 2 {
		cluster.Shards = append(cluster.Shards, net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))))
		dirs = append(dirs, t.TempDir())
	}
	var shards [2]*embedch.Server
	startShard := func(i int) error {
		_, port, _ := net.SplitHostPort(cluster.Shards[i])
		tcp, _ := strconv.Atoi(port)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		srv, err := embedch.Start(ctx, embedch.Options{LibPath: lib, DataDir: dirs[i], TCPPort: tcp, Cluster: cluster})
		if err != nil {
			return fmt.Errorf("shard %d: %w", i+1, err)
		}
		shards[i] = srv
		return nil
	}
	// Both at once: neither needs the other to start.
	errs := make(chan error, len(shards))
	for i := range shards {
		go func() { errs <- startShard(i) }()
	}
	for range shards {
		require.NoError(t, <-errs)
	}
	t.Cleanup(func() {
		for i, s := range shards {
			if s == nil {
				continue
			}
			if t.Failed() {
				t.Logf("shard %d's log: %s", i+1, filepath.Join(s.DataDir(), embedch.ServerLogName))
			}
			_ = s.Shutdown(context.Background())
		}
	})
	for i, s := range shards {
		require.Equal(t, cluster.Shards[i], s.Addr())
	}

	ch := chstore.Default()
	ch.Addr = []string{shards[0].Addr()}
	ch.Database = "shardfault"
	ch.Cluster.Name = cluster.Name

	name := testenv.Name(t)
	topic := "orders.shard_" + name
	group := "g_" + name
	testenv.CreateTopic(t, brokers, topic, 4, nil)
	stop := make(chan struct{})
	l := stream(t, brokers, topic, 1000, stop)
	a := newFaultAudit(t)
	p := startWeft(t, append(weftEnv(brokers, ch, group, topic, a),
		"WEFT_CLICKHOUSE_CLUSTER_NAME="+cluster.Name, "WEFT_CLICKHOUSE_DIAL_TIMEOUT=2s"))
	p.untilStored(t, time.Now(), time.Minute)
	kc, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer kc.Close()
	g := groupProgress{adm: kadm.NewClient(kc), group: group, topic: topic}
	require.Eventually(t, func() bool { c, _, err := g.read(); return err == nil && c > 0 }, time.Minute, 100*time.Millisecond,
		"the tap committed nothing; its log:\n%s", p.tail())

	// Shard 2 dies. The tap's inserts fail, and /readyz says so.
	require.NoError(t, syscall.Kill(shards[1].PID(), syscall.SIGKILL))
	select {
	case <-shards[1].Done():
	case <-time.After(30 * time.Second):
		t.Fatal("shard 2 did not die of SIGKILL")
	}
	down := time.Now()
	var notReady string
	for deadline := down.Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, body := p.readyz()
		if notReady = body; code == 503 && strings.Contains(body, "clickhouse inserts failing") {
			break
		}
		require.True(t, time.Now().Before(deadline), "/readyz did not say the inserts fail; it says %d %q; log:\n%s", code, body, p.tail())
	}
	t.Logf("/readyz %s after the shard died: %s", time.Since(down).Round(time.Millisecond), strings.TrimSpace(notReady))

	// From now on nothing is stored or committed while records keep
	// coming: polled until the group is 3,000 records further behind.
	committed, lag := g.mustRead(t)
	storedBefore := p.metric("weft_collector_events_stored_total")
	failures := p.metric("weft_collector_insert_errors_total")
	outage := time.Now()
	grown := lag
	for grown < lag+3000 {
		require.Less(t, time.Since(outage), time.Minute, "the group's lag did not grow; is the stream flowing?")
		var c int64
		c, grown = g.mustRead(t)
		require.Equal(t, committed, c, "the tap committed offsets while a shard was down")
		require.Equal(t, storedBefore, p.metric("weft_collector_events_stored_total"), "the tap counted records stored while a shard was down")
		code, body := p.readyz()
		require.Equal(t, 503, code, "ready while a shard is down: %s", body)
		time.Sleep(200 * time.Millisecond)
	}
	assert.Greater(t, p.metric("weft_collector_insert_errors_total"), failures, "the failed inserts are counted")
	t.Logf("shard 2 down for %s; the group's lag grew from %d to %d records, its committed offsets stayed at %d",
		time.Since(down).Round(time.Millisecond), lag, grown, committed)

	// Shard 2 comes back on its data and port; the tap resumes by itself.
	back := time.Now()
	require.NoError(t, startShard(1))
	require.Eventually(t, func() bool {
		c, _, err := g.read()
		return err == nil && c > committed && p.metric("weft_collector_events_stored_total") > storedBefore
	}, time.Minute, 100*time.Millisecond, "the tap did not resume after the shard came back; log:\n%s", p.tail())
	require.Eventually(t, func() bool { code, _ := p.readyz(); return code == 200 }, time.Minute, 100*time.Millisecond,
		"not ready again; log:\n%s", p.tail())
	t.Logf("storing and ready again %s after the shard's restart began", time.Since(back).Round(time.Millisecond))

	close(stop)
	l.waitProduced(t)
	requireExact(t, ch, topic, l)
	requireAuditWhole(t, ch, topic, a)
	require.Eventually(t, func() bool { _, lag, err := g.read(); return err == nil && lag == 0 }, time.Minute, 100*time.Millisecond,
		"the tap did not commit every record; log:\n%s", p.tail())
	requireOrdersSharded(t, ch, shards[:], topic)
}

// groupProgress reads a consumer group's progress on one topic.
type groupProgress struct {
	adm          *kadm.Client
	group, topic string
}

// read returns the sum of the group's committed offsets on the topic, and
// its lag: how many records of the topic it has yet to commit.
func (g groupProgress) read() (committed, lag int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := g.adm.ListEndOffsets(ctx, g.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, 0, err
	}
	offs, err := g.adm.FetchOffsets(ctx, g.group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return 0, 0, err
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == g.topic && o.At > 0 {
			committed += o.At
		}
	})
	ends.Each(func(o kadm.ListedOffset) { lag += o.Offset })
	return committed, lag - committed, nil
}

// mustRead is read in the test's goroutine.
func (g groupProgress) mustRead(t *testing.T) (committed, lag int64) {
	t.Helper()
	committed, lag, err := g.read()
	require.NoError(t, err, "group %s", g.group)
	return committed, lag
}

// requireOrdersSharded reads each shard's own rows of topic (events_local)
// and requires that every order's rows are on one shard, each shard's
// orders of one residue of the sharding key, and that every shard holds
// some.
func requireOrdersSharded(t *testing.T, ch chstore.Config, shards []*embedch.Server, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	on := map[string][]int{} // order → the shards holding its rows
	for i, s := range shards {
		node := ch
		node.Addr, node.Cluster = []string{s.Addr()}, chstore.Cluster{}
		conn, err := chstore.Dial(ctx, node)
		require.NoError(t, err)
		rows, err := conn.Query(ctx, "SELECT DISTINCT order_id FROM "+ch.Database+".events_local WHERE topic = ?", topic)
		require.NoError(t, err)
		n := 0
		for rows.Next() {
			var order string
			require.NoError(t, rows.Scan(&order))
			on[order] = append(on[order], i+1)
			n++
		}
		require.NoError(t, rows.Err())
		// The sharding key, cityHash64(order_id), modulo the shards'
		// total weight picks the shard: one residue per shard.
		var residues uint64
		require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT uniqExact(cityHash64(order_id) %% %d) FROM %s.events_local WHERE topic = ?",
			len(shards), ch.Database), topic).Scan(&residues))
		_ = conn.Close()
		t.Logf("shard %d holds %d orders of the topic", i+1, n)
		require.NotZero(t, n, "shard %d holds no rows", i+1)
		require.EqualValues(t, 1, residues, "shard %d holds orders of more than one sharding-key residue", i+1)
	}
	split := 0
	for order, where := range on {
		if len(where) > 1 {
			split++
			if split <= 5 {
				t.Errorf("order %s has rows on shards %v", order, where)
			}
		}
	}
	require.Zero(t, split, "orders whose rows are on more than one shard")
}
