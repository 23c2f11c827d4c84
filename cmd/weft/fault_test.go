package main

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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

// weftEnv is the configuration of a fault test's weft processes: its
// brokers, database, group and topic, and its audit trail.
func weftEnv(brokers []string, ch chstore.Config, group, topic string, a *faultAudit) []string {
	return append([]string{
		"WEFT_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"WEFT_CLICKHOUSE_ADDR=" + strings.Join(ch.Addr, ","),
		"WEFT_CLICKHOUSE_DATABASE=" + ch.Database,
		"WEFT_COLLECTOR_GROUP=" + group,
		"WEFT_COLLECTOR_TOPICS_INCLUDE=" + regexp.QuoteMeta(topic),
	}, a.env...)
}

// TestFaultKill9: kill -9 the tap several times mid-stream. Every record
// is stored once and logged once.
func TestFaultKill9(t *testing.T) {
	r := newFaultRig(t, "kill", 4)
	brokers, ch, topic, a, env := r.brokers, r.ch, r.topic, r.audit, r.env

	stop := make(chan struct{})
	l := stream(t, brokers, topic, 2000, stop)
	p := startWeft(t, env)
	for i := 0; i < 3; i++ {
		time.Sleep(time.Second + rand.N(2*time.Second))
		p.kill()
		time.Sleep(200 * time.Millisecond)
		p = startWeft(t, env)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	l.waitProduced(t)
	requireExact(t, ch, topic, l)
	requireAuditWhole(t, ch, topic, a)
}

// TestFaultClickHouseOutage: ClickHouse stops for 30 s under load. The tap
// says why it is not ready, stops fetching (memory stays bounded), and
// resumes by itself when ClickHouse is back.
func TestFaultClickHouseOutage(t *testing.T) {
	brokers := testenv.Kafka(t)
	testenv.Integration(t)
	lib, err := embedch.Fetch(context.Background(), embedch.FetchOptions{})
	require.NoError(t, err)
	dataDir := t.TempDir()
	tcp, httpPort := freePort(t), freePort(t)
	startCH := func() *embedch.Server {
		srv, err := embedch.Start(context.Background(), embedch.Options{LibPath: lib, DataDir: dataDir, TCPPort: tcp, HTTPPort: httpPort})
		require.NoError(t, err)
		return srv
	}
	srv := startCH()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	ch := chstore.Default()
	ch.Addr = []string{srv.Addr()}
	ch.Database = "outage"

	name := testenv.Name(t)
	topic := "orders.outage_" + name
	testenv.CreateTopic(t, brokers, topic, 4, nil)
	stop := make(chan struct{})
	l := stream(t, brokers, topic, 1000, stop)
	a := newFaultAudit(t)
	p := startWeft(t, append(weftEnv(brokers, ch, "g_"+name, topic, a), "WEFT_CLICKHOUSE_DIAL_TIMEOUT=2s"))
	time.Sleep(3 * time.Second)

	require.NoError(t, srv.Shutdown(context.Background()))
	sawNotReady, maxRSS := "", 0
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		if code, body := p.readyz(); code == 503 && sawNotReady == "" {
			sawNotReady = body
		}
		maxRSS = max(maxRSS, rssKB(p.cmd.Process.Pid))
	}
	srv = startCH()
	time.Sleep(3 * time.Second)
	close(stop)
	l.waitProduced(t)
	requireExact(t, ch, topic, l)
	requireAuditWhole(t, ch, topic, a)

	assert.Contains(t, sawNotReady, "clickhouse", "/readyz says why during the outage")
	code, _ := p.readyz()
	assert.Equal(t, 200, code, "ready again after the outage")
	t.Logf("peak RSS of the tap during the outage: %d MiB", maxRSS/1024)
	assert.Less(t, maxRSS, 400*1024, "memory stays bounded while ClickHouse is down")
}

// TestFaultBrokerRestart: the broker restarts mid-stream.
func TestFaultBrokerRestart(t *testing.T) {
	testenv.Integration(t)
	testenv.ClickHouseAddr(t)
	dir := t.TempDir()
	port := strconv.Itoa(freePort(t))
	broker := func(verb string) string {
		cmd := exec.Command("../../scripts/testkafka.sh", verb, dir)
		cmd.Env = append(os.Environ(), "WEFT_KAFKA_PORT="+port)
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("testkafka %s: %v\n%s", verb, err, ee.Stderr)
		}
		require.NoError(t, err)
		return strings.TrimSpace(string(out))
	}
	brokers := []string{broker("start")}
	t.Cleanup(func() { broker("stop") })
	ch := testenv.ClickHouse(t)
	name := testenv.Name(t)
	topic := "orders.broker_" + name
	testenv.CreateTopic(t, brokers, topic, 4, nil)
	stop := make(chan struct{})
	l := stream(t, brokers, topic, 1000, stop)
	a := newFaultAudit(t)
	startWeft(t, weftEnv(brokers, ch, "g_"+name, topic, a))
	time.Sleep(3 * time.Second)
	broker("stop")
	time.Sleep(3 * time.Second)
	broker("start")
	time.Sleep(4 * time.Second)
	close(stop)
	l.waitProduced(t)
	requireExact(t, ch, topic, l)
	requireAuditWhole(t, ch, topic, a)
}

// TestFaultRebalance: a second replica joins and leaves the group several
// times while traffic flows; partitions move between them.
func TestFaultRebalance(t *testing.T) {
	r := newFaultRig(t, "rebalance", 6)
	brokers, ch, topic, a, env := r.brokers, r.ch, r.topic, r.audit, r.env
	stop := make(chan struct{})
	l := stream(t, brokers, topic, 1500, stop)
	startWeft(t, env)
	for i := 0; i < 3; i++ {
		time.Sleep(2 * time.Second)
		second := startWeft(t, env)
		time.Sleep(3 * time.Second)
		second.stop(t)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	l.waitProduced(t)
	requireExact(t, ch, topic, l)
	requireAuditWhole(t, ch, topic, a)
}

// TestFaultRedelivery: mid-stream the tap stops and its group's offsets
// are reset to the start (an operator's reset, or another group reading
// into the same database): every record is read again. The redelivered
// records get no second leaf, and those produced meanwhile are logged
// once.
func TestFaultRedelivery(t *testing.T) {
	r := newFaultRig(t, "redelivery", 4)
	brokers, ch, topic, a, env := r.brokers, r.ch, r.topic, r.audit, r.env
	group := "g_" + r.name
	stop := make(chan struct{})
	l := stream(t, brokers, topic, 1500, stop)
	p := startWeft(t, env)
	time.Sleep(3 * time.Second)
	p.stop(t)

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	reset := kadm.Offsets{}
	for part := int32(0); part < 4; part++ {
		reset.Add(kadm.Offset{Topic: topic, Partition: part, At: 0, LeaderEpoch: -1})
	}
	resp, err := kadm.NewClient(cl).CommitOffsets(context.Background(), group, reset)
	require.NoError(t, err)
	require.NoError(t, resp.Error())

	p = startWeft(t, env)
	time.Sleep(4 * time.Second)
	close(stop)
	l.waitProduced(t)
	requireExact(t, ch, topic, l)
	p.stop(t)
	assert.Equal(t, int64(l.len()), p.consumed(t), "the second run read every record again")
	requireAuditWhole(t, ch, topic, a)
}

func freePort(t *testing.T) int {
	t.Helper()
	a := freeAddr(t)
	p, err := strconv.Atoi(a[strings.LastIndexByte(a, ':')+1:])
	require.NoError(t, err)
	return p
}

// rssKB reads a process's resident set size from /proc (0 when unavailable).
func rssKB(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return n
		}
	}
	return 0
}
