package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
	"github.com/weft-sh/weft/replay"
)

// runWeftOut runs weft as a process and returns its exit code, stdout and
// stderr.
func runWeftOut(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "WEFT_TEST_MAIN=1", "WEFT_TEST_ARGS="+strings.Join(args, " ")), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, stdout.String(), stderr.String()
}

func replayEnv(brokers []string, ch chstore.Config, allow string) []string {
	env := []string{
		"WEFT_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"WEFT_CLICKHOUSE_ADDR=" + strings.Join(ch.Addr, ","),
		"WEFT_CLICKHOUSE_DATABASE=" + ch.Database,
		"WEFT_LOG_LEVEL=warn",
	}
	if allow != "" {
		env = append(env, "WEFT_REPLAY_ENABLED=true", "WEFT_REPLAY_ALLOW="+allow)
	}
	return env
}

// endOffsets sums the end offsets of topic's partitions: what was ever
// produced to it.
func endOffsets(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	require.NoError(t, err)
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// kcatRecord is a record as kcat, the independent consumer, prints it.
type kcatRecord struct {
	key, value string
	headers    map[string]string
}

// kcatRead reads every committed record of topic with kcat (librdkafka,
// isolation.level read_committed by default).
func kcatRead(t *testing.T, brokers []string, topic string) []kcatRecord {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	require.NoError(t, err, "kcat is the independent consumer of this test (make test installs it)")
	// Fields separated by control characters that no record holds.
	out, err := exec.Command(kcat, "-b", strings.Join(brokers, ","), "-C", "-t", topic, "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%k\x1f%s\x1f%h\x1e").Output()
	require.NoError(t, err)
	var recs []kcatRecord
	for _, raw := range strings.Split(string(out), "\x1e") {
		if raw == "" {
			continue
		}
		f := strings.Split(raw, "\x1f")
		require.Len(t, f, 3, "kcat line %q", raw)
		r := kcatRecord{key: f[0], value: f[1], headers: map[string]string{}}
		for _, h := range strings.Split(f[2], ",") {
			if k, v, ok := strings.Cut(h, "="); ok {
				r.headers[k] = v
			}
		}
		recs = append(recs, r)
	}
	return recs
}

// TestReplayOrder: an order's records are read back from Kafka and
// produced again — the one retention removed is named and skipped — and
// kcat reads on the target exactly the original's key, value and headers
// plus the replay headers. A dry run produces nothing. The detector,
// reading the replay as the tap stores it, sees a replay of the original
// and no duplicate.
func TestReplayOrder(t *testing.T) {
	brokers := testenv.Kafka(t)
	ch := testenv.ClickHouse(t)
	store := openTestStore(t, ch)
	name := testenv.Name(t)
	src, target := "payments_"+name, "payments_replayed_"+name
	testenv.CreateTopic(t, brokers, src, 1, nil)
	testenv.CreateTopic(t, brokers, target, 1, nil)

	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	order := "ord-" + name
	hdrs := []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: "idempotency-key", Value: []byte("idem-2-" + name)}}
	recs := []*kgo.Record{
		{Topic: src, Key: []byte(order), Headers: []kgo.RecordHeader{{Key: "idempotency-key", Value: []byte("idem-1-" + name)}}, Value: []byte(fmt.Sprintf(
			`{"event_id":"e1-%s","event_type":"PaymentRequested","order_id":"%s","occurred_at":"2026-11-24T08:00:00Z"}`, name, order))},
		{Topic: src, Key: []byte(order), Headers: hdrs, Value: []byte(fmt.Sprintf(
			`{"event_id":"e2-%s","event_type":"PaymentAuthorized","order_id":"%s","occurred_at":"2026-11-24T08:01:00Z","card":"4111 1111 1111 1111"}`, name, order))},
	}
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())
	storeAsTheTapDoes(t, store, recs...)
	// Retention removes the first record from Kafka; weft still has it.
	_, err = kadm.NewClient(cl).DeleteRecords(ctx, kadm.Offsets{src: {0: {Topic: src, Partition: 0, At: 1}}})
	require.NoError(t, err)

	env := replayEnv(brokers, ch, regexp.QuoteMeta(target))
	code, stdout, stderr := runWeftOut(t, env, "replay", "order", order, "--to", target, "--dry-run")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "Would produce 1 records of order/"+order+": "+target+" (1)")
	assert.Contains(t, stdout, src+"/0@1")
	assert.Contains(t, stderr, "skipped "+src+"/0@0: gone from Kafka: retention removed it")
	assert.Zero(t, endOffsets(t, brokers, target), "a dry run produces nothing")

	code, stdout, stderr = runWeftOut(t, append(env, "WEFT_USER=alice"), "replay", "order", order, "--to", target)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "skipped "+src+"/0@0: gone from Kafka")
	jobID := regexp.MustCompile(`Job (rpl-[0-9a-f]{16})`).FindStringSubmatch(stdout)
	require.NotNil(t, jobID, stdout)
	assert.Contains(t, stdout, "finished: 1 records produced")

	got := kcatRead(t, brokers, target)
	require.Len(t, got, 1)
	r := got[0]
	assert.Equal(t, string(recs[1].Key), r.key)
	assert.Equal(t, string(recs[1].Value), r.value, "the original bytes, card number and all: never the masked copy")
	assert.Equal(t, map[string]string{
		"traceparent": string(hdrs[0].Value), "idempotency-key": string(hdrs[1].Value),
		replay.HeaderJob: jobID[1], replay.HeaderSeq: "0", replay.HeaderOperator: "alice",
		replay.HeaderOriginalTopic: src, replay.HeaderOriginalPartition: "0", replay.HeaderOriginalOffset: "1",
		replay.HeaderOriginalTimestamp: strconv.FormatInt(recs[1].Timestamp.UnixMilli(), 10),
	}, r.headers)

	// The tap stores the replay; the detector takes it for its original.
	fetched := consumeAll(t, brokers, target, 1)
	storeAsTheTapDoes(t, store, fetched...)
	chain, err := consistency.NewEngine(store, nil).Chain(ctx, order)
	require.NoError(t, err)
	require.Len(t, chain, 3)
	var replays int
	for _, e := range chain {
		if e.ReplayOf != "" {
			replays++
			assert.Equal(t, src+"/0@1", e.ReplayOf)
			assert.Equal(t, jobID[1], e.ReplayJob)
		}
	}
	assert.Equal(t, 1, replays)
	for _, f := range consistency.CheckOrder(nil, chain, time.Now(), consistency.Windows{}) {
		assert.NotEqual(t, consistency.KindDuplicate, f.Kind, f.Summary)
	}

	code, _, stderr = runWeftOut(t, env, "replay", "status", jobID[1])
	require.Equal(t, 0, code, stderr)
}

// TestReplayRefusals: each refusal is one line on stderr, a non-zero
// exit, and nothing produced.
func TestReplayRefusals(t *testing.T) {
	brokers := testenv.Kafka(t)
	ch := testenv.ClickHouse(t)
	store := openTestStore(t, ch)
	name := testenv.Name(t)
	dlq, target, orders := "payments_"+name+".dlq", "payments_"+name, "orders_"+name
	testenv.CreateTopic(t, brokers, dlq, 1, nil)
	testenv.CreateTopic(t, brokers, target, 1, nil)
	testenv.CreateTopic(t, brokers, orders, 1, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	order := "ord-" + name
	rec := &kgo.Record{Topic: dlq, Key: []byte(order), Headers: []kgo.RecordHeader{{Key: "dlq-original-topic", Value: []byte(target)}},
		Value: []byte(`{"event_id":"e1","event_type":"PaymentFailed","order_id":"` + order + `","occurred_at":"2026-11-24T08:00:00Z"}`)}
	placed := &kgo.Record{Topic: orders, Key: []byte(order),
		Value: []byte(`{"event_id":"e0","event_type":"OrderPlaced","order_id":"` + order + `","occurred_at":"2026-11-24T07:59:00Z"}`)}
	require.NoError(t, cl.ProduceSync(context.Background(), rec, placed).FirstErr())
	storeAsTheTapDoes(t, store, rec, placed)

	for _, c := range []struct {
		name  string
		allow string
		args  []string
		want  string
	}{
		{"disabled", "", []string{"redrive", dlq, "--yes"}, "refused: replay is disabled: set replay.enabled and replay.allow (docs/replay.md)"},
		{"not allow-listed", "orders_.*", []string{"redrive", dlq, "--yes"}, "refused: topic " + target + " is not in replay.allow (orders_.*)"},
		{"not allow-listed order", regexp.QuoteMeta(target), []string{"replay", "order", order, "--yes"}, "refused: topic " + orders + " is not in replay.allow (" + regexp.QuoteMeta(target) + ")"},
		{"bad job id", regexp.QuoteMeta(target), []string{"replay", "resume", "nope"}, `refused: "nope" is not a replay job id (rpl- and 16 hex digits)`},
		{"unknown job", regexp.QuoteMeta(target), []string{"replay", "resume", "rpl-0123456789abcdef"}, "refused: no replay job rpl-0123456789abcdef"},
		{"above the threshold without a terminal", regexp.QuoteMeta(target), []string{"redrive", dlq}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := replayEnv(brokers, ch, c.allow)
			if c.want == "" {
				env = append(env, "WEFT_REPLAY_CONFIRM_ABOVE=0")
				c.want = "refused: 1 records to " + target + " (1) is above replay.confirm_above (0): pass --yes when not on a terminal"
			}
			code, _, stderr := runWeftOut(t, env, c.args...)
			assert.Equal(t, 1, code)
			assert.Equal(t, "weft: "+c.want, strings.TrimSpace(firstLine(stderr)))
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %q", stderr)
			assert.Zero(t, endOffsets(t, brokers, target), "nothing produced")
		})
	}
	// Every record gone from Kafka: refused, each named.
	_, err = kadm.NewClient(cl).DeleteRecords(context.Background(), kadm.Offsets{orders: {0: {Topic: orders, Partition: 0, At: 1}}})
	require.NoError(t, err)
	code, _, stderr := runWeftOut(t, replayEnv(brokers, ch, ".*"), "replay", "order", order, "--yes")
	assert.Equal(t, 1, code)
	assert.Equal(t, "weft: refused: order/"+order+": nothing to produce (1 records gone from Kafka)", strings.TrimSpace(stderr))
	assert.Zero(t, endOffsets(t, brokers, orders)-1, "nothing produced to the order's topic")
	assert.Zero(t, endOffsets(t, brokers, target))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func openTestStore(t *testing.T, ch chstore.Config) *chstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := chstore.Open(ctx, ch)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.Migrate(ctx))
	return s
}

// storeAsTheTapDoes decodes records with the tap's decoder and stores them.
func storeAsTheTapDoes(t *testing.T, s *chstore.Store, recs ...*kgo.Record) {
	t.Helper()
	d, err := collector.NewDecoder(collector.Default())
	require.NoError(t, err)
	var evs []event.Event
	for _, r := range recs {
		e, err := d.Decode(r)
		require.NoError(t, err)
		evs = append(evs, e)
	}
	require.NoError(t, s.InsertEvents(context.Background(), evs, time.Now(), ""))
}

// consumeAll reads n committed records of topic.
func consumeAll(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	require.NoError(t, err)
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		out = append(out, fs.Records()...)
	}
	return out
}

// TestReplayKill9Resume: a 50,000-record redrive killed with SIGKILL at
// several points (while producing, and while a resume reads the targets
// back), then resumed: kcat reads every dead-lettered record on the
// target exactly once, by its original-offset header. The job's phases
// are in the operator-actions log.
func TestReplayKill9Resume(t *testing.T) {
	brokers := testenv.Kafka(t)
	ch := testenv.ClickHouse(t)
	store := openTestStore(t, ch)
	name := testenv.Name(t)
	dlq, target := "payments_"+name+".dlq", "payments_"+name
	testenv.CreateTopic(t, brokers, dlq, 3, nil)
	testenv.CreateTopic(t, brokers, target, 3, nil)
	const n = 50_000
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	require.NoError(t, err)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		order := fmt.Sprintf("ord-%05d", i)
		recs[i] = &kgo.Record{Topic: dlq, Key: []byte(order),
			Headers: []kgo.RecordHeader{{Key: "dlq-original-topic", Value: []byte(target)}, {Key: "dlq-reason", Value: []byte("retries_exhausted")}},
			Value:   []byte(fmt.Sprintf(`{"event_id":"e-%d","event_type":"PaymentFailed","order_id":"%s","occurred_at":"2026-11-24T08:00:00Z"}`, i, order))}
	}
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
	cl.Close()

	a := newFaultAudit(t)
	env := append(replayEnv(brokers, ch, regexp.QuoteMeta(target)), a.env...)
	env = append(env, "WEFT_REPLAY_BATCH_RECORDS=500", "WEFT_USER=oncall")
	out := filepath.Join(t.TempDir(), "out")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(out)
			t.Logf("last run's output:\n%s", b)
		}
	})
	start := func(args ...string) *exec.Cmd {
		f, err := os.Create(out)
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), "WEFT_TEST_MAIN=1", "WEFT_TEST_ARGS="+strings.Join(args, " ")), env...)
		cmd.Stdout, cmd.Stderr = f, f
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()
			}
		})
		return cmd
	}
	kill := func(cmd *exec.Cmd) {
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
	}
	cursor := func(id string) uint64 {
		j, err := replay.LoadJob(context.Background(), store, id)
		if err != nil {
			return 0
		}
		return j.Cursor
	}

	first := start("redrive", dlq, "--yes", "--rate", "8000")
	var id string
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(out)
		m := regexp.MustCompile(`Job (rpl-[0-9a-f]{16})`).FindStringSubmatch(string(b))
		if m != nil {
			id = m[1]
		}
		return id != ""
	}, time.Minute, 20*time.Millisecond)
	// 1: while producing, a fifth in.
	require.Eventually(t, func() bool { return cursor(id) >= n/5 }, 40*time.Second, 10*time.Millisecond)
	kill(first)
	// 2: a resume killed while producing, half way.
	second := start("replay", "resume", id, "--rate", "8000")
	require.Eventually(t, func() bool { return cursor(id) >= n/2 }, 2*time.Minute, 10*time.Millisecond)
	time.Sleep(37 * time.Millisecond) // into the next batch, between two cursor writes
	kill(second)
	// 3: a resume killed early, while it fences and reads the targets back.
	third := start("replay", "resume", id, "--rate", "8000")
	time.Sleep(300 * time.Millisecond)
	kill(third)
	before := endOffsets(t, brokers, target)
	assert.Greater(t, before, int64(n/2), "the killed runs produced")

	code, stdout, stderr := runWeftOut(t, env, "replay", "resume", id, "--rate", "0")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "Job "+id+" finished")

	seen := map[string]int{}
	for _, r := range kcatRead(t, brokers, target) {
		require.Equal(t, id, r.headers[replay.HeaderJob])
		seen[r.headers[replay.HeaderOriginalPartition]+"@"+r.headers[replay.HeaderOriginalOffset]]++
	}
	var twice []string
	for k, c := range seen {
		if c != 1 {
			twice = append(twice, fmt.Sprintf("%s×%d", k, c))
		}
	}
	assert.Empty(t, twice, "records produced more than once")
	assert.Len(t, seen, n, "every dead-lettered record on the target")
	j, err := replay.LoadJob(context.Background(), store, id)
	require.NoError(t, err)
	assert.Equal(t, replay.StatusFinished, j.Status)
	assert.Equal(t, uint64(n), j.Produced)
	t.Logf("target end offsets %d (aborted batches and transaction markers included) for %d records committed once", endOffsets(t, brokers, target), n)

	// The job in the operator-actions log: requested, started, resumed by
	// each resume that got that far (the third is killed early), finished —
	// by the operator.
	var phases []string
	require.NoError(t, store.ActionRows(context.Background(), "", func(r chstore.ActionRow) error {
		if r.Verb == "redrive" && strings.Contains(r.Detail, id) {
			phases = append(phases, firstWord(r.Detail))
			assert.Equal(t, "oncall", r.Actor)
		}
		return nil
	}))
	require.GreaterOrEqual(t, len(phases), 5, "%v", phases)
	assert.Equal(t, []string{"requested", "started"}, phases[:2])
	assert.Equal(t, "finished", phases[len(phases)-1])
	for _, p := range phases[2 : len(phases)-1] {
		assert.Equal(t, "resumed", p, "%v", phases)
	}
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(s, " ")
	return w
}

// TestReplayHeadersNeedAKnownJob: replay headers are trusted only when
// their job is one weft planned (replay_jobs). A record forged with a
// weft-replay-job header of an unknown job, carrying a second payload for
// an event, is still a duplicate; the same record from a known job is a
// replay of its original and is not.
func TestReplayHeadersNeedAKnownJob(t *testing.T) {
	ch := testenv.ClickHouse(t)
	store := openTestStore(t, ch)
	name := testenv.Name(t)
	ctx := context.Background()
	topic := "payments_" + name
	now := time.Now().UTC()

	record := func(order string, offset int64, amount int, hdrs ...kgo.RecordHeader) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: 0, Offset: offset, Key: []byte(order), Timestamp: now, Headers: hdrs,
			Value: []byte(fmt.Sprintf(`{"event_id":"e-%s","event_type":"PaymentAuthorized","order_id":"%s","occurred_at":"2026-11-24T08:01:00Z","amount":%d}`,
				order, order, amount))}
	}
	replayHeaders := func(job string, origOffset int64) []kgo.RecordHeader {
		return []kgo.RecordHeader{{Key: replay.HeaderJob, Value: []byte(job)}, {Key: replay.HeaderSeq, Value: []byte("0")},
			{Key: replay.HeaderOriginalTopic, Value: []byte(topic)}, {Key: replay.HeaderOriginalPartition, Value: []byte("0")},
			{Key: replay.HeaderOriginalOffset, Value: []byte(strconv.FormatInt(origOffset, 10))}}
	}
	forgedOrder, replayedOrder := "ord-forged-"+name, "ord-replayed-"+name
	realJob := fmt.Sprintf("rpl-%016x", now.UnixNano())
	forgedJob := fmt.Sprintf("rpl-%016x", now.UnixNano()+1)
	require.NoError(t, store.InsertReplayJob(ctx, chstore.ReplayJobRow{JobID: realJob, Kind: replay.KindOrder,
		Resource: "order/" + replayedOrder, Actor: "alice", CreatedAt: now, UpdatedAt: now, Status: replay.StatusFinished, Version: 1}))
	storeAsTheTapDoes(t, store,
		record(forgedOrder, 5, 100), record(forgedOrder, 9, 999, replayHeaders(forgedJob, 5)...),
		record(replayedOrder, 20, 100), record(replayedOrder, 24, 101, replayHeaders(realJob, 20)...))

	engine := consistency.NewEngine(store, nil)
	kindsOf := func(order string) ([]string, []consistency.ChainEvent) {
		chain, err := engine.Chain(ctx, order)
		require.NoError(t, err)
		require.Len(t, chain, 2, order)
		var kinds []string
		for _, f := range consistency.CheckOrder(nil, chain, now, consistency.Windows{}) {
			kinds = append(kinds, f.Kind)
		}
		return kinds, chain
	}
	kinds, chain := kindsOf(forgedOrder)
	assert.Contains(t, kinds, consistency.KindDuplicate, "a replay header naming a job weft never planned hides nothing")
	for _, e := range chain {
		assert.Empty(t, e.ReplayOf, "the forged record is not taken for a replay")
	}
	kinds, chain = kindsOf(replayedOrder)
	assert.NotContains(t, kinds, consistency.KindDuplicate, "a replay by a known job is its original delivered again")
	assert.Equal(t, topic+"/0@20", chain[1].ReplayOf+chain[0].ReplayOf)

	// Asked again (cached either way), the verdicts hold.
	kinds, _ = kindsOf(forgedOrder)
	assert.Contains(t, kinds, consistency.KindDuplicate)
}
