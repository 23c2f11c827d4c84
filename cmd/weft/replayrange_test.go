package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
	"github.com/weft-sh/weft/replay"
)

// rangeFixture is a topic of two partitions with records in and around a
// time range, of several types, services and orders, stored as the tap
// stores them; want are those a range asking for types PaymentAuthorized
// and PaymentRefunded, service payments and orders A and B selects.
type rangeFixture struct {
	src, target string
	base        time.Time // the range is [base, base+1h)
	ordersFile  string
	recs        []*kgo.Record
	want        []*kgo.Record
}

func newRangeFixture(t *testing.T, brokers []string, store *chstore.Store) rangeFixture {
	t.Helper()
	name := testenv.Name(t)
	f := rangeFixture{src: "payments_" + name, target: "payments_again_" + name,
		base: time.Now().Add(-3 * time.Hour).Truncate(time.Second).UTC()}
	testenv.CreateTopic(t, brokers, f.src, 2, nil)
	testenv.CreateTopic(t, brokers, f.target, 1, nil)
	a, b, c := "ord-a-"+name, "ord-b-"+name, "ord-c-"+name
	f.ordersFile = filepath.Join(t.TempDir(), "orders.txt")
	require.NoError(t, os.WriteFile(f.ordersFile, []byte("# stuck since 10:00\n"+a+"\n\n  "+b+"  \n"), 0o600))

	type spec struct {
		at            time.Duration
		part          int32
		typ, svc, ord string
		in            bool
	}
	for i, s := range []spec{
		{-time.Hour, 0, "PaymentAuthorized", "payments", a, false},      // before the range
		{time.Minute, 1, "PaymentAuthorized", "payments", a, true},      //
		{2 * time.Minute, 0, "PaymentFailed", "payments", a, false},     // another type
		{3 * time.Minute, 0, "PaymentAuthorized", "fraud", a, false},    // another service
		{4 * time.Minute, 0, "PaymentAuthorized", "payments", b, true},  //
		{5 * time.Minute, 1, "PaymentAuthorized", "payments", c, false}, // an order not in the file
		{6 * time.Minute, 1, "PaymentRefunded", "payments", b, true},    // the second type
		{time.Hour, 0, "PaymentAuthorized", "payments", a, false},       // at --to: excluded
		{2 * time.Hour, 1, "PaymentAuthorized", "payments", b, false},   // after the range
	} {
		r := &kgo.Record{Topic: f.src, Partition: s.part, Key: []byte(s.ord), Timestamp: f.base.Add(s.at),
			Headers: []kgo.RecordHeader{{Key: "idempotency-key", Value: []byte(fmt.Sprintf("idem-%d-%s", i, name))}},
			Value: []byte(fmt.Sprintf(`{"event_id":"e%d-%s","event_type":"%s","order_id":"%s","occurred_at":"%s","card":"4111 1111 1111 1111"}`,
				i, name, s.typ, s.ord, f.base.Add(s.at).Format(time.RFC3339)))}
		if s.svc != "payments" {
			// Another service: a CloudEvent whose source names it (a plain
			// event's service is its topic's prefix, payments).
			r.Value = []byte(fmt.Sprintf(`{"specversion":"1.0","id":"e%d-%s","type":"%s","source":"/%s","subject":"%s","time":"%s","data":{}}`,
				i, name, s.typ, s.svc, s.ord, f.base.Add(s.at).Format(time.RFC3339)))
		}
		f.recs = append(f.recs, r)
		if s.in {
			f.want = append(f.want, r)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(context.Background(), f.recs...).FirstErr())
	storeAsTheTapDoes(t, store, f.recs...)
	return f
}

// assertReplayed checks that kcat reads on the target exactly the wanted
// records, in order, with their key, value and headers plus the replay
// headers of job id.
func (f rangeFixture) assertReplayed(t *testing.T, brokers []string, id, operator string) {
	t.Helper()
	got := kcatRead(t, brokers, f.target)
	require.Len(t, got, len(f.want))
	for i, w := range f.want {
		g := got[i]
		assert.Equal(t, string(w.Key), g.key)
		assert.Equal(t, string(w.Value), g.value, "the original bytes, card number and all")
		assert.Equal(t, map[string]string{
			"idempotency-key": string(w.Headers[0].Value),
			replay.HeaderJob:  id, replay.HeaderSeq: strconv.Itoa(i), replay.HeaderOperator: operator,
			replay.HeaderOriginalTopic: f.src, replay.HeaderOriginalPartition: strconv.Itoa(int(w.Partition)),
			replay.HeaderOriginalOffset:    strconv.FormatInt(w.Offset, 10),
			replay.HeaderOriginalTimestamp: strconv.FormatInt(w.Timestamp.UnixMilli(), 10),
		}, g.headers, "record %d", i)
	}
}

// TestReplayRange: weft replay range selects exactly the stored records
// of the topic in [--from, --to) of the types, services and orders asked,
// oldest first across partitions; a dry run prints them and produces
// nothing; the run produces them and kcat reads exactly those on the
// target with their replay headers. A bad time, an empty range and a range
// nothing matches are each one line, exit 1, nothing produced.
func TestReplayRange(t *testing.T) {
	brokers := testenv.Kafka(t)
	ch := testenv.ClickHouse(t)
	store := openTestStore(t, ch)
	f := newRangeFixture(t, brokers, store)
	env := replayEnv(brokers, ch, regexp.QuoteMeta(f.target))
	from, to := f.base.Format(time.RFC3339), f.base.Add(time.Hour).Format(time.RFC3339)
	args := []string{"replay", "range", "--topic", f.src, "--from", from, "--to", to, "--type", "PaymentAuthorized",
		"--type", "PaymentRefunded", "--service", "payments", "--orders-file", f.ordersFile, "--target", f.target}

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"bad time", []string{"replay", "range", "--topic", f.src, "--from", "yesterday", "--to", to},
			`weft: --from "yesterday": want an RFC 3339 time (2026-11-24T10:00:00Z), a date (2026-11-24) or a duration back from now (15m, 2h, 7d)`},
		{"empty range", []string{"replay", "range", "--topic", f.src, "--from", to, "--to", from, "--target", f.target},
			"weft: refused: topic/" + f.src + ": the range " + to + " to " + from + " is empty: --from must be before --to"},
		{"nothing in it", []string{"replay", "range", "--topic", f.src, "--from", from, "--to", to, "--type", "Nope", "--target", f.target},
			"weft: refused: topic/" + f.src + ": weft stored no records from " + from + " to " + to + " of types [Nope]"},
		{"no orders in the file", append(slices.Clone(args[:len(args)-4]), "--orders-file", os.DevNull),
			"weft: --orders-file " + os.DevNull + ": no order ids in it (one a line)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runWeftOut(t, env, c.args...)
			assert.Equal(t, 1, code)
			assert.Equal(t, c.want, strings.TrimSpace(stderr), "one line")
			assert.Zero(t, endOffsets(t, brokers, f.target), "nothing produced")
		})
	}

	code, stdout, stderr := runWeftOut(t, env, append(args, "--dry-run")...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, fmt.Sprintf("Would produce 3 records of topic/%s: %s (3)", f.src, f.target))
	for _, w := range f.want {
		assert.Contains(t, stdout, fmt.Sprintf("%s/%d@%d", f.src, w.Partition, w.Offset))
	}
	assert.Zero(t, endOffsets(t, brokers, f.target), "a dry run produces nothing")

	code, stdout, stderr = runWeftOut(t, append(env, "WEFT_USER=erin"), args...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "finished: 3 records produced")
	id := regexp.MustCompile(`Job (rpl-[0-9a-f]{16})`).FindStringSubmatch(stdout)
	require.NotNil(t, id, stdout)
	f.assertReplayed(t, brokers, id[1], "erin")
	j, err := replay.LoadJob(context.Background(), store, id[1])
	require.NoError(t, err)
	assert.Equal(t, replay.KindRange, j.Kind)
	assert.Equal(t, "topic/"+f.src, j.Resource)
}

// TestReplayRangeAPI: the same range as a job of the HTTP API: created as
// a dry run with exactly the wanted records in its plan, confirmed, and
// kcat reads exactly those on the target. A bad time is 400 naming the
// key, and stores no job.
func TestReplayRangeAPI(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	f := newRangeFixture(t, brokers, store)
	actions, _ := auditedConfig(t, store)
	authn, tokens := testAuth(t, "dana", actions, nil, nil)
	cfg := DefaultConfig()
	cfg.Kafka.Brokers = brokers
	cfg.Replay.Enabled, cfg.Replay.Allow = true, []string{regexp.QuoteMeta(f.target)}
	jobs := newReplayJobs(cfg, store, actions, zerolog.Nop())
	reg := prometheus.NewRegistry()
	jobs.register(reg)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = jobs.Run(ctx) }()
	srv := httptest.NewServer(newAPI(consistency.NewEngine(store, nil), store, nil, actions, authn, prometheus.NewRegistry(), zerolog.Nop(), false, nil, jobs, nil))
	defer srv.Close()
	post := func(path, body string, out any) (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(withToken(req, tokens[auth.Operator]))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		if out != nil && resp.StatusCode < 300 {
			require.NoError(t, json.Unmarshal(b, out), string(b))
		}
		return resp.StatusCode, string(b)
	}
	ids, err := readOrderIDs(f.ordersFile)
	require.NoError(t, err)
	orders, _ := json.Marshal(ids)
	body := func(from, until string) string {
		return fmt.Sprintf(`{"kind":"range","topic":%q,"from":%q,"until":%q,"types":["PaymentAuthorized","PaymentRefunded"],"services":["payments"],"order_ids":%s,"to":%q,"rate":0}`,
			f.src, from, until, orders, f.target)
	}
	from, until := f.base.Format(time.RFC3339), f.base.Add(time.Hour).Format(time.RFC3339)

	code, resp := post("/api/v1/replay/jobs", body("soon", until), nil)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, resp, `from \"soon\": want an RFC 3339 time`)

	var created JobPlanReport
	code, resp = post("/api/v1/replay/jobs", body(from, until), &created)
	require.Equal(t, http.StatusCreated, code, resp)
	assert.Equal(t, replay.KindRange, created.Job.Kind)
	require.Equal(t, 3, created.Plan.Records)
	for i, w := range f.want {
		assert.Equal(t, replay.Position{Topic: f.src, Partition: w.Partition, Offset: w.Offset}, created.Plan.First[i].From)
	}
	assert.Zero(t, endOffsets(t, brokers, f.target), "creating a job produces nothing")

	code, resp = post("/api/v1/replay/jobs/"+created.Job.ID+"/confirm", "", nil)
	require.Equal(t, http.StatusAccepted, code, resp)
	require.Eventually(t, func() bool {
		j, err := replay.LoadJob(context.Background(), store, created.Job.ID)
		return err == nil && j.Status == replay.StatusFinished && jobs.runningHere(j.ID) == nil
	}, time.Minute, 50*time.Millisecond)
	f.assertReplayed(t, brokers, created.Job.ID, "dana-operator")
	assert.Equal(t, 3.0, testutil.ToFloat64(jobs.records.c.WithLabelValues(f.target, "produced")), "weft_replay_records_total")
	assert.Equal(t, 0.0, testutil.ToFloat64(jobs.records.c.WithLabelValues(f.target, "gone")))
}

// TestReplayJobStates: weft_replay_jobs counts the jobs of replay_jobs
// by the status of each one's newest version, every state with a series.
func TestReplayJobStates(t *testing.T) {
	store := testenv.Store(t)
	ctx := context.Background()
	now := time.Now().UTC()
	job := func(id int, status string, version uint64) {
		require.NoError(t, store.InsertReplayJob(ctx, chstore.ReplayJobRow{JobID: fmt.Sprintf("rpl-%016x", id), Kind: replay.KindRange,
			Resource: "topic/t", Actor: "a", CreatedAt: now, UpdatedAt: now, Status: status, Version: version}))
	}
	job(1, replay.StatusPlanned, 1)
	job(1, replay.StatusRunning, 2)
	job(1, replay.StatusFailed, 3) // failed: its newest version
	job(2, replay.StatusRunning, 1)
	job(2, replay.StatusFinished, 2)
	job(3, replay.StatusFinished, 1)
	job(4, replay.StatusFailed, 2)
	job(4, replay.StatusRunning, 3) // resumed after it failed
	reg := prometheus.NewRegistry()
	s := newReplayJobStates(store, reg, zerolog.Nop())
	require.NoError(t, s.refresh(ctx))
	got := map[string]float64{}
	for _, st := range replay.States {
		got[st] = testutil.ToFloat64(s.jobs.WithLabelValues(st))
	}
	assert.Equal(t, map[string]float64{"planned": 0, "running": 1, "finished": 2, "cancelled": 0, "failed": 1}, got)
	n, err := testutil.GatherAndCount(reg, "weft_replay_jobs")
	require.NoError(t, err)
	assert.Equal(t, len(replay.States), n, "one series a state, no job ids")
}

// TestReplayJobsMetricFromWeftRun: weft run, as a process, exports
// weft_replay_jobs from the replay_jobs table on /metrics: a failed job
// stored before it started is counted (the alert's input), and every state
// has a series.
func TestReplayJobsMetricFromWeftRun(t *testing.T) {
	r := newFaultRig(t, "replaymetric", 1)
	store := openTestStore(t, r.ch)
	now := time.Now().UTC()
	require.NoError(t, store.InsertReplayJob(context.Background(), chstore.ReplayJobRow{JobID: "rpl-00000000000000f1",
		Kind: replay.KindRedrive, Resource: "topic/payments.dlq", Actor: "oncall", CreatedAt: now, UpdatedAt: now,
		Status: replay.StatusFailed, Detail: "kafka: commit the batch from item 500", Version: 1}))
	p := startWeft(t, r.env)
	require.Eventually(t, func() bool { return p.metric(`weft_replay_jobs{state="failed"}`) == 1 },
		time.Minute, 200*time.Millisecond, "log:\n%s", p.tail())
	resp, err := http.Get("http://" + p.http + "/metrics")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	for _, st := range replay.States {
		want := 0
		if st == replay.StatusFailed {
			want = 1
		}
		assert.Contains(t, string(b), fmt.Sprintf("weft_replay_jobs{state=%q} %d\n", st, want))
	}
	p.stop(t)
}
