package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/embedch"
	"github.com/weft-sh/weft/internal/testenv"
)

// The embedded ClickHouse under weft (docs/architecture.md, "The embedded
// ClickHouse"): supervised as `weft dev` runs it, killed under traffic, and
// loaded with bursts. These tests start an embedded ClickHouse of their own
// (they kill it); Kafka is the shared test broker.

// ownClickHouse starts a supervised embedded ClickHouse in a temporary
// directory, as `weft dev` does, logging to logs.
func ownClickHouse(t *testing.T, logs *testenv.LogBuffer, o embedch.SuperviseOptions) (*embedch.Supervisor, chstore.Config) {
	t.Helper()
	testenv.Integration(t)
	lib, err := embedch.Fetch(context.Background(), embedch.FetchOptions{})
	require.NoError(t, err)
	o.LibPath, o.DataDir = lib, t.TempDir()
	o.Logger = zerolog.New(logs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := embedch.Supervise(ctx, o)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("embedded ClickHouse's supervisor said:\n%s", logs.String())
			if b, err := os.ReadFile(srv.DataDir() + "/" + embedch.ServerErrorLogName); err == nil {
				t.Logf("its error log ends:\n%s", tailLines(string(b), 40))
			}
		}
		_ = srv.Shutdown(context.Background())
	})
	ch := chstore.Default()
	ch.Addr = []string{srv.Addr()}
	ch.Database = "weft"
	return srv, ch
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestEmbeddedClickHouseSupervised: under a steady stream through `weft
// run`, the embedded ClickHouse is killed with SIGKILL, then aborted with
// SIGABRT on one of its own threads (as a crash of the engine is). Each
// time the supervisor says so in one line naming the exit and the log
// (for the abort, with ClickHouse's own account of the signal), restarts
// it on the same address, and weft resumes by itself: in the end every
// record is stored exactly once.
func TestEmbeddedClickHouseSupervised(t *testing.T) {
	brokers := testenv.Kafka(t)
	logs := &testenv.LogBuffer{}
	srv, ch := ownClickHouse(t, logs, embedch.SuperviseOptions{Backoff: 500 * time.Millisecond})
	addr := srv.Addr()

	name := testenv.Name(t)
	topic := "orders.chsup_" + name
	testenv.CreateTopic(t, brokers, topic, 4, nil)
	stop := make(chan struct{})
	l := stream(t, brokers, topic, 1000, stop)
	a := newFaultAudit(t)
	p := startWeft(t, append(weftEnv(brokers, ch, "g_"+name, topic, a), "WEFT_CLICKHOUSE_DIAL_TIMEOUT=2s"))
	p.untilStored(t, time.Now(), time.Minute)

	for i, kill := range []struct {
		sig  syscall.Signal
		exit string
	}{{syscall.SIGKILL, "signal: killed"}, {syscall.SIGABRT, "signal: aborted"}} {
		stored := p.metric("weft_collector_events_stored_total")
		pid := srv.PID()
		if kill.sig == syscall.SIGABRT {
			abortThread(t, pid)
		} else {
			require.NoError(t, syscall.Kill(pid, kill.sig))
		}
		require.Eventually(t, func() bool { return srv.Restarts() == i+1 }, time.Minute, 100*time.Millisecond,
			"not restarted after %v; supervisor:\n%s", kill.sig, logs.String())
		assert.NotEqual(t, pid, srv.PID())
		assert.Equal(t, addr, srv.Addr(), "restarted on the same address")

		died := logLinesOf(logs.String(), `"message":"embedded ClickHouse died (`+kill.exit+`); restarting it"`)
		require.Len(t, died, 1, "one line for the death by %v; supervisor:\n%s", kill.sig, logs.String())
		assert.Contains(t, died[0], `"log":"`+srv.DataDir()+"/"+embedch.ServerLogName+`"`)
		assert.Contains(t, died[0], `"pid":`+strconv.Itoa(pid))
		if kill.sig == syscall.SIGABRT {
			// ClickHouse's own handler wrote the signal to its log before dying.
			assert.Contains(t, died[0], "Received signal Aborted (6)", "the reason, from ClickHouse's log")
		}
		// weft stores again, by itself.
		require.Eventually(t, func() bool { return p.metric("weft_collector_events_stored_total") > stored+500 }, time.Minute, 200*time.Millisecond,
			"weft stored nothing after the restart; its log:\n%s", p.tail())
	}
	close(stop)
	l.waitProduced(t)
	requireExact(t, ch, topic, l)
	requireAuditWhole(t, ch, topic, a)
	code, _ := p.readyz()
	assert.Equal(t, 200, code, "ready again")
}

// abortThread sends SIGABRT to one of the engine's own threads of process
// pid, as abort() on that thread does (a process-wide kill would most
// likely land on the main thread, a Go one).
func abortThread(t *testing.T, pid int) {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	require.NoError(t, err)
	for _, task := range tasks {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/comm", pid, task.Name()))
		if strings.TrimSpace(string(comm)) == "BgSchPool" { // a ClickHouse background thread
			tid, _ := strconv.Atoi(task.Name())
			require.NoError(t, syscall.Tgkill(pid, tid, syscall.SIGABRT))
			return
		}
	}
	t.Fatalf("no ClickHouse thread in process %d", pid)
}

func logLinesOf(log, s string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// TestEmbeddedClickHouseBurst: bursts of records, produced as fast as the
// broker takes them, go through `weft run` into the embedded ClickHouse,
// several times, and in each a client's connection is reset. It stays up
// (no restart), and every record is stored exactly once. WEFT_TEST_BURST_RECORDS (default 100,000) and
// WEFT_TEST_BURST_ROUNDS (default 3) size it; docs/architecture.md gives
// the full-scale run.
func TestEmbeddedClickHouseBurst(t *testing.T) {
	brokers := testenv.Kafka(t)
	records, rounds := envInt(t, "WEFT_TEST_BURST_RECORDS", 100_000), envInt(t, "WEFT_TEST_BURST_ROUNDS", 3)
	logs := &testenv.LogBuffer{}
	srv, ch := ownClickHouse(t, logs, embedch.SuperviseOptions{})
	pid := srv.PID()

	name := testenv.Name(t)
	topic := "orders.burst_" + name
	testenv.CreateTopic(t, brokers, topic, 6, nil)
	a := newFaultAudit(t)
	p := startWeft(t, weftEnv(brokers, ch, "g_"+name, topic, a))

	l := &ledger{recs: map[coord]string{}}
	for round := 1; round <= rounds; round++ {
		began := time.Now()
		burst(t, brokers, topic, round, records, l)
		produced := time.Since(began)
		// A client dies meanwhile (its kernel resets its connection), as
		// the killed tests and tools around a burst did.
		resetClient(t, srv.Addr())
		want := float64(round * records)
		require.Eventually(t, func() bool {
			select {
			case <-srv.Done():
				return true // fails below
			default:
			}
			return p.metric("weft_collector_events_stored_total") >= want
		}, 5*time.Minute, 200*time.Millisecond, "round %d: not stored; weft's log:\n%s", round, p.tail())
		require.Zero(t, srv.Restarts(), "round %d: the embedded ClickHouse died; supervisor:\n%s", round, logs.String())
		require.Equal(t, pid, srv.PID())
		t.Logf("round %d: %d records produced in %s, stored in %s; ClickHouse RSS %d MiB",
			round, records, produced.Round(time.Millisecond), time.Since(began).Round(time.Millisecond), rssKB(pid)/1024)
	}
	requireExact(t, ch, topic, l)
	requireAuditWhole(t, ch, topic, a)
	require.Zero(t, srv.Restarts(), "supervisor:\n%s", logs.String())
}

// burst produces n records to topic as fast as the broker acknowledges
// them, adding them to l.
func burst(t *testing.T, brokers []string, topic string, round, n int, l *ledger) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(50_000))
	require.NoError(t, err)
	defer cl.Close()
	pad := strings.Repeat("x", 300) // ~500-byte records, as the demo's
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		order := fmt.Sprintf("o-%d-%06d", round, i%20000)
		v := fmt.Sprintf(`{"event_id":"%s-%d-%d","event_type":"OrderPlaced","order_id":"%s","occurred_at":"%s","n":%d,"note":"%s"}`,
			topic, round, i, order, time.Now().UTC().Format(time.RFC3339Nano), i, pad)
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Key: []byte(order), Value: []byte(v)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				return
			}
			l.add(r)
		})
	}
	wg.Wait()
	require.NoError(t, firstErr)
}

func envInt(t *testing.T, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, key)
	require.Positive(t, n, key)
	return n
}

// TestDevRestartsClickHouse: `weft dev` (what `make run` runs) with its
// embedded ClickHouse killed: it says so in one line naming the exit and
// ClickHouse's log, restarts it on the same port, and weft stores again by
// itself; Ctrl-C still stops everything cleanly.
func TestDevRestartsClickHouse(t *testing.T) {
	testenv.Integration(t)
	dataDir := t.TempDir()
	chPort, httpAddr := freePort(t), freeAddr(t)
	out := &testenv.LogBuffer{}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WEFT_TEST_MAIN=1", "WEFT_TEST_ARGS="+strings.Join([]string{"dev",
		"--data-dir", dataDir, "--kafka-port", strconv.Itoa(freePort(t)), "--clickhouse-port", strconv.Itoa(chPort),
		"--clickhouse-http-port", strconv.Itoa(freePort(t)), "--http", httpAddr,
		"--orders", "40", "--live-rate", "20", "--consumers=false", "--detect-interval", "1h"}, " "))
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	p := &weftProc{cmd: cmd, http: httpAddr}
	t.Cleanup(p.kill)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "weft is running on embedded servers") },
		3*time.Minute, 100*time.Millisecond, "no banner:\n%s", out.String())

	chPID := func() int {
		for _, l := range logLinesOf(out.String(), `"message":"embedded ClickHouse is up"`) {
			var line struct{ PID int }
			require.NoError(t, json.Unmarshal([]byte(l), &line))
			return line.PID
		}
		t.Fatalf("no start line:\n%s", out.String())
		return 0
	}
	stored := func() float64 { return p.metric("weft_collector_events_stored_total") }
	require.Eventually(t, func() bool { return stored() > 0 }, time.Minute, 100*time.Millisecond)
	before := stored()
	pid := chPID()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	require.Eventually(t, func() bool { return strings.Contains(out.String(), `"message":"embedded ClickHouse is back"`) },
		time.Minute, 100*time.Millisecond, "not restarted:\n%s", out.String())
	died := logLinesOf(out.String(), `"message":"embedded ClickHouse died (signal: killed); restarting it"`)
	require.Len(t, died, 1, out.String())
	assert.Contains(t, died[0], `"pid":`+strconv.Itoa(pid))
	assert.Contains(t, died[0], `"log":"`+filepath.Join(dataDir, "clickhouse", embedch.ServerLogName)+`"`)
	// The same port, and weft stores again by itself.
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(chPort)), 5*time.Second)
	require.NoError(t, err)
	_ = conn.Close()
	require.Eventually(t, func() bool { return stored() > before+20 }, time.Minute, 200*time.Millisecond,
		"weft stored nothing after the restart:\n%s", tailLines(out.String(), 30))
	require.Eventually(t, func() bool { code, _ := p.readyz(); return code == 200 }, time.Minute, 200*time.Millisecond)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	code, exited := p.exited(time.Minute)
	require.True(t, exited, "weft dev did not stop:\n%s", tailLines(out.String(), 30))
	assert.Equal(t, 0, code, tailLines(out.String(), 30))
}

// resetClient opens a native connection to addr, runs a query, and resets
// the connection (SO_LINGER 0), as the kernel of a killed client may.
func resetClient(t *testing.T, addr string) {
	t.Helper()
	var raw *net.TCPConn
	c, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialContext: func(ctx context.Context, a string) (net.Conn, error) {
		d, err := (&net.Dialer{}).DialContext(ctx, "tcp", a)
		if err == nil {
			raw = d.(*net.TCPConn)
		}
		return d, err
	}})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Ping(context.Background()))
	require.NoError(t, raw.SetLinger(0))
	require.NoError(t, raw.Close())
}
