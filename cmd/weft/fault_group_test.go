package main

import (
	"bufio"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/testenv"
)

// The fault tests of weft in its consumer group (docs/delivery.md,
// "Restarts and replicas"): back within seconds after kill -9, not ready
// while it owns nothing, a stop in seconds while the group is stuck, and
// one process per instance id.

// metric sums the samples of a metric on the process's /metrics (-1 when
// it does not answer).
func (p *weftProc) metric(name string) float64 {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.http + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || rest[0] != ' ' && rest[0] != '{' {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// exited waits up to d for the process to exit by itself and returns its
// exit code; false when it still runs.
func (p *weftProc) exited(d time.Duration) (int, bool) {
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// logLines are the lines of the process's log that contain s.
func (p *weftProc) logLines(t *testing.T, s string) []string {
	t.Helper()
	b, err := os.ReadFile(p.log)
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// untilStored polls the process until it stored a record and answered
// ready, and says how long each took from since; it fails after limit.
func (p *weftProc) untilStored(t *testing.T, since time.Time, limit time.Duration) (stored, ready time.Duration) {
	t.Helper()
	for time.Since(since) < limit {
		if ready == 0 {
			if code, _ := p.readyz(); code == 200 {
				ready = time.Since(since)
			}
		}
		if stored == 0 && p.metric("weft_collector_events_stored_total") > 0 {
			stored = time.Since(since)
		}
		if stored > 0 && ready > 0 {
			return stored, ready
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("weft stored nothing or was not ready within %s of its start (stored after %s, ready after %s); log:\n%s", limit, stored, ready, p.tail())
	return 0, 0
}

// TestFaultCrashLoop: weft is killed with -9 and restarted at once, five
// times, under traffic, as Kubernetes restarts a crashing container. With
// an instance id (static membership) each restart takes the partitions of
// the process it replaces without waiting out its session timeout — the
// default 45 s here, which dynamic membership would wait every time — and
// stores new records within seconds. In the end every offset is stored
// once and the audit trail is whole.
func TestFaultCrashLoop(t *testing.T) {
	r := newFaultRig(t, "crashloop", 4, "WEFT_COLLECTOR_SESSION_TIMEOUT=45s", "WEFT_COLLECTOR_INSTANCE_ID=tap-0")
	brokers, ch, topic, a, env := r.brokers, r.ch, r.topic, r.audit, r.env

	stop := make(chan struct{})
	l := stream(t, brokers, topic, 1000, stop)
	start := time.Now()
	p := startWeft(t, env)
	first, _ := p.untilStored(t, start, 30*time.Second)
	t.Logf("first start: stored after %s", first)

	// Generous for a loaded 2-core machine: the process starts, migrates,
	// joins and stores; a dynamic member would wait ~45 s.
	const bound = 10 * time.Second
	loop := time.Now()
	var storedAfter, readyAfter []time.Duration
	for i := 0; i < 5; i++ {
		time.Sleep(500*time.Millisecond + rand.N(time.Second))
		p.kill()
		start := time.Now()
		p = startWeft(t, env)
		stored, ready := p.untilStored(t, start, 30*time.Second)
		storedAfter, readyAfter = append(storedAfter, stored), append(readyAfter, ready)
	}
	t.Logf("five kill -9 and restarts in %s; after each restart, first records stored after %v, ready after %v",
		time.Since(loop).Round(100*time.Millisecond), storedAfter, readyAfter)
	for i, d := range storedAfter {
		assert.Less(t, d, bound, "restart %d stored its first records after %s", i+1, d)
	}
	time.Sleep(time.Second)
	close(stop)
	l.waitProduced(t)
	requireExact(t, ch, topic, l)
	requireAuditWhole(t, ch, topic, a)

	stopping := time.Now()
	p.stop(t)
	t.Logf("graceful stop of the last process: %s", time.Since(stopping).Round(10*time.Millisecond))
}

// TestFaultStuckRebalance: a dynamic member is killed with -9 (a ghost the
// group waits for until its 30 s session expires), and a new weft joins.
// While its join waits it owns no partition: /readyz is not 200 and says
// why. Stopped then, it does not wait for the group: it leaves within a
// few seconds, saying it gave up waiting (before: up to the ghost's
// session timeout, 34–47 s with the default 45 s).
func TestFaultStuckRebalance(t *testing.T) {
	brokers := testenv.Kafka(t)
	ch := testenv.ClickHouse(t)
	name := testenv.Name(t)
	topic := "orders.stuck_" + name
	testenv.CreateTopic(t, brokers, topic, 2, nil)
	env := append(weftEnv(brokers, ch, "g_"+name, topic, &faultAudit{}), "WEFT_COLLECTOR_SESSION_TIMEOUT=30s")
	stop := make(chan struct{})
	defer close(stop)
	stream(t, brokers, topic, 200, stop)

	ghost := startWeft(t, env)
	ghost.untilStored(t, time.Now(), 30*time.Second)
	ghost.kill()

	p := startWeft(t, env)
	var body string
	require.Eventually(t, func() bool {
		var code int
		code, body = p.readyz()
		return code == 503 && strings.Contains(body, "owns no partition yet: joining consumer group")
	}, 20*time.Second, 50*time.Millisecond, "not ready while joining; last /readyz: %q", body)
	time.Sleep(2 * time.Second)
	code, body := p.readyz()
	require.Equal(t, 503, code, "still waiting for the ghost: %s", body)
	t.Logf("/readyz while the join waits for the ghost: %d %s", code, strings.TrimSpace(body))
	assert.Zero(t, p.metric("weft_collector_assigned_partitions"))

	stopping := time.Now()
	p.stop(t)
	took := time.Since(stopping)
	t.Logf("graceful stop while the group waits for the ghost: %s", took.Round(10*time.Millisecond))
	assert.Less(t, took, 6*time.Second, "a stop does not wait out the ghost's session")
	assert.Len(t, p.logLines(t, "the consumer group is rebalancing: stopped waiting for it"), 1)
}

// TestFaultFencedInstanceID: a second process is started with the instance
// id of a running one. The broker fences the older; it stops with one
// line naming the id and the remedy — no loop of the two taking the id
// from each other — and the newer goes on storing. Every offset is stored
// once and the audit trail is whole.
func TestFaultFencedInstanceID(t *testing.T) {
	id := "dup-" + testenv.Name(t)
	r := newFaultRig(t, "fenced", 2, "WEFT_COLLECTOR_INSTANCE_ID="+id)
	brokers, ch, topic, a, env := r.brokers, r.ch, r.topic, r.audit, r.env
	stop := make(chan struct{})
	l := stream(t, brokers, topic, 500, stop)

	older := startWeft(t, env)
	older.untilStored(t, time.Now(), 30*time.Second)
	newer := startWeft(t, env)
	newer.untilStored(t, time.Now(), 30*time.Second)
	code, exited := older.exited(20 * time.Second)
	require.True(t, exited, "the fenced process stops; log:\n%s", older.tail())
	assert.Equal(t, 1, code)
	fenced := older.logLines(t, "FENCED_INSTANCE_ID")
	require.Len(t, fenced, 1, "one line, no retry loop:\n%s", strings.Join(fenced, "\n"))
	assert.Contains(t, fenced[0], `instance id "`+id+`"`)
	assert.Contains(t, fenced[0], "give every replica its own collector.instance_id")
	t.Logf("the fenced process: %s", fenced[0])

	storedByNewer := newer.metric("weft_collector_events_stored_total")
	time.Sleep(2 * time.Second)
	assert.Greater(t, newer.metric("weft_collector_events_stored_total"), storedByNewer, "the newer one goes on storing")
	code, _ = newer.readyz()
	assert.Equal(t, 200, code)
	assert.Empty(t, newer.logLines(t, "FENCED_INSTANCE_ID"), "the newer one was never fenced back")
	close(stop)
	l.waitProduced(t)
	requireExact(t, ch, topic, l)
	requireAuditWhole(t, ch, topic, a)
	newer.stop(t)
}
