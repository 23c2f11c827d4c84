package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// The fault tests run weft as a separate process (this test binary, see
// TestMain), produce a steady stream into a real broker, break something
// while it flows, and end with an exact comparison of what was produced and
// what ClickHouse holds: per partition, every offset once, with its content.

// coord is one record's place and content.
type coord struct {
	topic     string
	partition int32
	offset    int64
}

// ledger records what the producer got acknowledged.
type ledger struct {
	mu   sync.Mutex
	recs map[coord]string // → the payload hash weft stores for the record
	done chan struct{}    // closed when every produced record is acknowledged
}

// ledgerDecoder decodes produced records as the tap does: the payload hash
// it gives a record is the one weft must store for it (a hash of the
// masked payload, never of the original).
var ledgerDecoder = func() *collector.Decoder {
	d, err := collector.NewDecoder(collector.Default())
	if err != nil {
		panic(err)
	}
	return d
}()

func (l *ledger) add(r *kgo.Record) {
	e, err := ledgerDecoder.Decode(r)
	hash := "undecodable: " + fmt.Sprint(err)
	if err == nil {
		hash = e.PayloadHash
	}
	l.mu.Lock()
	l.recs[coord{r.Topic, r.Partition, r.Offset}] = hash
	l.mu.Unlock()
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs)
}

// stream produces plain-JSON order events to topic at about rate records/s
// until stop is closed, and returns the acknowledged records.
func stream(t *testing.T, brokers []string, topic string, rate int, stop <-chan struct{}) *ledger {
	t.Helper()
	l := &ledger{recs: map[coord]string{}, done: make(chan struct{})}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond), kgo.RecordRetries(1_000_000),
		kgo.RetryTimeout(2*time.Minute), kgo.ProduceRequestTimeout(10*time.Second))
	require.NoError(t, err)
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		per := max(rate/100, 1)
		seq := 0
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i := 0; i < per; i++ {
				seq++
				order := fmt.Sprintf("o-%05d", seq%5000)
				v := fmt.Sprintf(`{"event_id":"%s-%d","event_type":"OrderPlaced","order_id":"%s","occurred_at":"%s","n":%d}`,
					topic, seq, order, time.Now().UTC().Format(time.RFC3339Nano), seq)
				wg.Add(1)
				cl.Produce(context.Background(), &kgo.Record{Key: []byte(order), Value: []byte(v)}, func(r *kgo.Record, err error) {
					defer wg.Done()
					if err == nil {
						l.add(r)
					}
				})
			}
		}
	}()
	t.Cleanup(cl.Close)
	go func() { <-done; wg.Wait(); close(l.done) }()
	return l
}

// waitProduced waits until every produced record was acknowledged.
func (l *ledger) waitProduced(t *testing.T) {
	t.Helper()
	select {
	case <-l.done:
	case <-time.After(3 * time.Minute):
		t.Fatal("producer did not finish")
	}
}

// weftProc is `weft run` in a child process.
type weftProc struct {
	cmd  *exec.Cmd
	log  string
	http string
}

// startWeft runs `weft run` with env on top of a config for the test's
// topic, group and database.
func startWeft(t *testing.T, env []string) *weftProc {
	t.Helper()
	addr := freeAddr(t)
	logf := filepath.Join(t.TempDir(), "weft.log")
	f, err := os.Create(logf)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "WEFT_TEST_MAIN=1", "WEFT_TEST_ARGS=run", "WEFT_HTTP_LISTEN="+addr,
		"WEFT_LOG_LEVEL=info", "WEFT_LOG_FORMAT=json", "WEFT_COLLECTOR_BATCH_FLUSH_INTERVAL=100ms",
		"WEFT_COLLECTOR_TOPICS_REFRESH_INTERVAL=1s", "WEFT_CONSISTENCY_INTERVAL=1h", "WEFT_COLLECTOR_SESSION_TIMEOUT=6s"), env...)
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	p := &weftProc{cmd: cmd, log: logf, http: addr}
	t.Cleanup(func() { p.kill(); f.Close() })
	return p
}

func (p *weftProc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *weftProc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	errc := make(chan error, 1)
	go func() { errc <- p.cmd.Wait() }()
	select {
	case err := <-errc:
		require.NoError(t, err, "weft exit; log:\n%s", p.tail())
	case <-time.After(30 * time.Second):
		t.Fatalf("weft did not stop on SIGTERM; log:\n%s", p.tail())
	}
}

// consumed is how many records a stopped weft consumed, from its last
// log line ("weft stopped").
func (p *weftProc) consumed(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(p.log)
	require.NoError(t, err)
	for _, line := range slices.Backward(strings.Split(string(b), "\n")) {
		var l struct {
			Message  string `json:"message"`
			Consumed int64  `json:"consumed"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Message == "weft stopped" {
			return l.Consumed
		}
	}
	t.Fatalf("no \"weft stopped\" line; log:\n%s", p.tail())
	return 0
}

func (p *weftProc) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// readyz returns the /readyz status code and body ("" when unreachable).
func (p *weftProc) readyz() (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.http + "/readyz")
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b := make([]byte, 512)
	n, _ := resp.Body.Read(b)
	return resp.StatusCode, string(b[:n])
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// stored reads what ClickHouse holds for topic: every (partition, offset)
// with its payload hash, and how many raw rows (before FINAL) there are.
func stored(t *testing.T, chCfg chstore.Config, topic string) (map[coord]string, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := chstore.Open(ctx, chCfg)
	require.NoError(t, err)
	defer s.Close()
	conn, err := chstore.Dial(ctx, chCfg)
	require.NoError(t, err)
	defer conn.Close()
	rows, err := conn.Query(ctx, "SELECT partition, offset, payload_hash FROM "+s.Table("events")+" FINAL WHERE topic = ?", topic)
	require.NoError(t, err)
	out := map[coord]string{}
	for rows.Next() {
		var c coord
		var h string
		require.NoError(t, rows.Scan(&c.partition, &c.offset, &h))
		c.topic = topic
		out[c] = h
	}
	require.NoError(t, rows.Err())
	var raw uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+s.Table("events")+" WHERE topic = ?", topic).Scan(&raw))
	return out, raw
}

// requireExact waits until ClickHouse holds exactly what was produced, then
// compares record by record.
func requireExact(t *testing.T, chCfg chstore.Config, topic string, l *ledger) {
	t.Helper()
	want := l.len()
	require.NotZero(t, want)
	deadline := time.Now().Add(2 * time.Minute)
	var got map[coord]string
	var raw uint64
	for time.Now().Before(deadline) {
		got, raw = stored(t, chCfg, topic)
		if len(got) >= want {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	missing, wrong := 0, 0
	perPartition := map[int32][2]int{}
	for c, h := range l.recs {
		pp := perPartition[c.partition]
		pp[0]++
		if g, ok := got[c]; !ok {
			missing++
		} else if g != h {
			wrong++
		} else {
			pp[1]++
		}
		perPartition[c.partition] = pp
	}
	extra := len(got) - (len(l.recs) - missing)
	t.Logf("produced %d, stored %d (raw rows before FINAL %d), per partition produced/stored %v", len(l.recs), len(got), raw, perPartition)
	require.Zero(t, missing, "records produced but not stored")
	require.Zero(t, wrong, "records stored with other content")
	require.Zero(t, extra, "records stored that were never produced")
}

// faultRig is what every fault test starts from: the real servers, a
// topic of its own, an audit trail, and the environment of a weft tapping
// that topic in group g_<name>.
type faultRig struct {
	brokers     []string
	ch          chstore.Config
	name, topic string
	audit       *faultAudit
	env         []string
}

// newFaultRig creates the topic prefix_<name> with its partitions; extra
// environment entries follow weftEnv's.
func newFaultRig(t *testing.T, prefix string, partitions int32, extra ...string) faultRig {
	t.Helper()
	r := faultRig{brokers: testenv.Kafka(t), ch: testenv.ClickHouse(t), name: testenv.Name(t), audit: newFaultAudit(t)}
	r.topic = "orders." + prefix + "_" + r.name
	testenv.CreateTopic(t, r.brokers, r.topic, partitions, nil)
	r.env = append(weftEnv(r.brokers, r.ch, "g_"+r.name, r.topic, r.audit), extra...)
	return r
}
