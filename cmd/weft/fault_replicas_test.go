package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/testenv"
	"github.com/weft-sh/weft/notify"
)

// The replica test (docs/replicas.md): three weft processes share the
// tap's group under traffic, and the once-only work runs on the one the
// leader group elects — then on another, once the leader is killed with -9.

// replicaConfig is the config file of the replicas: a workflow whose
// orders are stuck 2 s after ReplicaPlaced unless ReplicaShipped follows
// (the background traffic, OrderPlaced, is in no workflow), passes and
// queue-health samples every second, and a webhook.
const replicaConfig = `consistency:
  interval: 1s
  settle: 1s
  builtin: false
  windows: {grace: 1h, convergence: 1h}
  workflows:
    - name: replicas
      steps:
        - name: placed
          on: [ReplicaPlaced]
          sla: 2s
          expects: [ReplicaShipped]
        - name: shipped
          on: [ReplicaShipped]
          terminal: true
collector:
  lag:
    interval: 1s
alerts:
  webhooks:
    - name: test
      url: %s
      format: json
      min_interval: 100ms
`

// pages collects what the webhook receives: per finding, its opens.
type pages struct {
	mu     sync.Mutex
	opened map[string][]string // order id → finding ids opened, one per message
	other  []string            // anything but a stuck finding opening
}

func (p *pages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m struct {
		Notifications []notify.Notification `json:"notifications"`
	}
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range m.Notifications {
		if n.Event == notify.EventOpened && n.Finding.Kind == "stuck" {
			p.opened[n.Finding.OrderID] = append(p.opened[n.Finding.OrderID], n.Finding.ID)
		} else {
			p.other = append(p.other, n.Event+" "+n.Finding.Kind+" "+n.Finding.OrderID)
		}
	}
}

// have reports whether every order of ids was paged.
func (p *pages) have(ids []string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if len(p.opened[id]) == 0 {
			return false
		}
	}
	return true
}

// wave produces n orders: each placed, every second one shipped at once;
// it returns the ids of those left stuck.
func wave(t *testing.T, cl *kgo.Client, topic, name string, n int) []string {
	t.Helper()
	var stuck []string
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := 0; i < n; i++ {
		order := fmt.Sprintf("r-%s-%02d", name, i)
		types := []string{"ReplicaPlaced"}
		if i%2 == 0 {
			types = append(types, "ReplicaShipped")
		} else {
			stuck = append(stuck, order)
		}
		for _, typ := range types {
			v := fmt.Sprintf(`{"event_id":"%s-%s","event_type":"%s","order_id":"%s","occurred_at":"%s"}`, order, typ, typ, order, now)
			require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte(order), Value: []byte(v)}).FirstErr())
		}
	}
	return stuck
}

// fleet scrapes the replicas' metrics every 100 ms: who leads, and the
// last counts of detector passes and queue-health samples each reported
// (a killed process's count is its last scrape).
type fleet struct {
	ps      []*weftProc
	mu      sync.Mutex
	leaders []int
	double  int // scrapes that found two leaders
	passes  []float64
	samples []float64
	stop    chan struct{}
	done    chan struct{}
}

func watchFleet(t *testing.T, ps []*weftProc) *fleet {
	f := &fleet{ps: ps, passes: make([]float64, len(ps)), samples: make([]float64, len(ps)),
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for {
			var ls []int
			for i, p := range ps {
				if p.cmd.ProcessState != nil {
					continue
				}
				if p.metric("weft_leader_is_leader") == 1 {
					ls = append(ls, i)
				}
				passes, samples := p.metric("weft_consistency_detector_passes_total"), p.metric("weft_queue_samples_total")
				f.mu.Lock()
				f.passes[i], f.samples[i] = max(f.passes[i], passes), max(f.samples[i], samples)
				f.mu.Unlock()
			}
			f.mu.Lock()
			f.leaders = ls
			if len(ls) > 1 {
				f.double++
			}
			f.mu.Unlock()
			select {
			case <-f.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { f.halt() })
	return f
}

func (f *fleet) halt() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

// leader waits until one replica, not one of not, leads.
func (f *fleet) leader(t *testing.T, within time.Duration, not ...int) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		ls := f.leaders
		f.mu.Unlock()
		if len(ls) == 1 && !slices.Contains(not, ls[0]) {
			return ls[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no single leader within %s", within)
	return -1
}

func (f *fleet) total() (passes, samples float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.passes {
		passes, samples = passes+f.passes[i], samples+f.samples[i]
	}
	return passes, samples
}

// TestFaultReplicas: three replicas under traffic. One leads: the
// detector passes once per interval across all three, queue health is
// sampled once per interval (no duplicate rows), every stuck order is
// found and paged once. The leader is killed with -9: another leads after
// about the session timeout (6 s) and finds the next stuck orders, none
// lost or doubled. Then the new leader is stopped gracefully: the last
// replica leads within a heartbeat or two.
func TestFaultReplicas(t *testing.T) {
	r := newFaultRig(t, "replicas", 3)
	pg := &pages{opened: map[string][]string{}}
	hook := httptest.NewServer(pg)
	defer hook.Close()
	cfgPath := filepath.Join(t.TempDir(), "weft.yaml")
	require.NoError(t, os.WriteFile(cfgPath, fmt.Appendf(nil, replicaConfig, hook.URL), 0o600))
	// startWeft's environment sets a pass an hour: the environment wins
	// over the file.
	env := append(r.env, "WEFT_CONFIG="+cfgPath, "WEFT_CONSISTENCY_INTERVAL=1s")

	stop := make(chan struct{})
	defer close(stop)
	stream(t, r.brokers, r.topic, 300, stop)
	var ps []*weftProc
	for range 3 {
		ps = append(ps, startWeft(t, env))
	}
	for _, p := range ps {
		p.untilStored(t, time.Now(), 60*time.Second)
	}
	f := watchFleet(t, ps)
	first := f.leader(t, 30*time.Second)
	began := time.Now()
	passes0, samples0 := f.total()
	t.Logf("replica %d leads", first)

	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...))
	require.NoError(t, err)
	defer cl.Close()
	stuckA := wave(t, cl, r.topic, "a", 20)
	if !assert.Eventually(t, func() bool { return pg.have(stuckA) }, 30*time.Second, 100*time.Millisecond, "wave A paged") {
		t.Fatalf("leader's log:\n%s", ps[first].tail())
	}

	ps[first].kill()
	killed := time.Now()
	second := f.leader(t, 30*time.Second, first)
	takeover := time.Since(killed)
	t.Logf("replica %d killed with -9: replica %d leads after %s", first, second, takeover.Round(10*time.Millisecond))
	assert.Less(t, takeover, 20*time.Second, "the session timeout (6 s) and a join")

	stuckB := wave(t, cl, r.topic, "b", 20)
	require.Eventually(t, func() bool { return pg.have(stuckB) }, 30*time.Second, 100*time.Millisecond, "wave B paged")
	time.Sleep(3 * time.Second) // passes go on: nothing more may be paged
	passes, samples := f.total()
	window := time.Since(began)

	stopping := time.Now()
	ps[second].stop(t)
	third := f.leader(t, 15*time.Second, first, second)
	t.Logf("replica %d stopped: replica %d leads after %s", second, third, time.Since(stopping).Round(10*time.Millisecond))
	f.halt()
	assert.Zero(t, f.double, "scrapes that found two leaders")

	// One detector pass and one queue-health sample per interval (1 s),
	// across the three replicas; three replicas each doing the work
	// would make three.
	perSec := func(n float64) float64 { return n / window.Seconds() }
	t.Logf("over %s: %.0f detector passes (%.2f/s), %.0f queue-health samples (%.2f/s) across the replicas",
		window.Round(100*time.Millisecond), passes-passes0, perSec(passes-passes0), samples-samples0, perSec(samples-samples0))
	assert.Less(t, perSec(passes-passes0), 1.5)
	assert.Less(t, perSec(samples-samples0), 1.5)
	// And the work went on (about 0.6/s here: a third of the window had
	// no leader, after the kill; a loaded machine passes more slowly).
	assert.Greater(t, perSec(passes-passes0), 0.1)
	assert.Greater(t, perSec(samples-samples0), 0.1)

	// Paged once each, only the stuck orders.
	pg.mu.Lock()
	stuck := append(append([]string(nil), stuckA...), stuckB...)
	for _, id := range stuck {
		assert.Len(t, pg.opened[id], 1, "order %s paged once", id)
	}
	assert.Len(t, pg.opened, len(stuck), "only the stuck orders paged")
	assert.Empty(t, pg.other)
	pg.mu.Unlock()

	conn := testenv.Conn(t)
	ctx := context.Background()
	db := r.ch.Database
	// Stored once each: one open stuck finding per stuck order, and no
	// other finding.
	rows, err := conn.Query(ctx, "SELECT order_id, count(), uniqExact(first_seen) FROM "+db+".findings FINAL "+
		"WHERE kind = 'stuck' AND status = 'open' GROUP BY order_id ORDER BY order_id")
	require.NoError(t, err)
	found := map[string]bool{}
	for rows.Next() {
		var id string
		var n, firsts uint64
		require.NoError(t, rows.Scan(&id, &n, &firsts))
		found[id] = true
		assert.EqualValues(t, 1, n, "order %s: one stuck finding", id)
	}
	require.NoError(t, rows.Err())
	var want = map[string]bool{}
	for _, id := range stuck {
		want[id] = true
	}
	assert.Equal(t, want, found, "the stuck orders found, each once")
	var raws int64
	require.NoError(t, conn.QueryRow(ctx, "SELECT uniqExact(finding_id, first_seen) - uniqExact(finding_id) FROM "+db+".findings").Scan(&raws))
	assert.Zero(t, raws, "no finding opened twice (two first_seen for one id)")

	// Queue health: no two samples of a partition at one instant, nor
	// closer than a quarter of an interval (one sampler ticks every
	// second; three would interleave at random).
	var dup uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM (SELECT group_id, topic, partition, ts FROM "+db+".queue_health "+
		"GROUP BY group_id, topic, partition, ts HAVING count() > 1)").Scan(&dup))
	assert.Zero(t, dup, "duplicate queue-health rows")
	rows, err = conn.Query(ctx, "SELECT ts FROM "+db+".queue_health WHERE group_id = ? AND topic = ? AND partition = 0 ORDER BY ts",
		"g_"+r.name, r.topic)
	require.NoError(t, err)
	var times []time.Time
	for rows.Next() {
		var ts time.Time
		require.NoError(t, rows.Scan(&ts))
		times = append(times, ts)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, times)
	minGap := time.Hour
	for i := 1; i < len(times); i++ {
		minGap = min(minGap, times[i].Sub(times[i-1]))
	}
	t.Logf("queue-health samples of the tap's partition 0: %d, least gap %s", len(times), minGap)
	assert.GreaterOrEqual(t, minGap, 250*time.Millisecond, "samples at least a quarter of an interval apart")
}
