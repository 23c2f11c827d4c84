package consistency

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
)

// The property test "as hostile as real traffic" (issue 12): the demo's
// uneven traffic — every encoding of the event contract, sparse services,
// out-of-order delivery, byte-identical redeliveries, personal data in
// keys, headers, header names and undecodable records — through the real
// broker, the tap, ClickHouse and the detector, as `weft run` wires them.
//
//  1. Backfill: hours of history, every deadline of its stuck orders long
//     passed, are in Kafka before weft starts. The detector's first pass
//     comes before the tap stored anything (as when `weft run` starts),
//     then passes run while the tap ingests in small batches. After every
//     pass, each stuck order whose records were all in the ingest windows
//     passed so far and whose deadline the pass's clock passed must be
//     raised: on the first such pass, not eventually.
//  2. Live: more orders produced while weft runs, until each one's records
//     are stored and its windows ran out on the stream's clock.
//  3. Scoring: precision and recall per finding kind against the manifest
//     (demo.ExpectedFinding per order), a table per seed; precision must be
//     100 % for every kind, recall 100 % for every kind the traffic injects.
//  4. Masking: every column of every table of weft's database holds no
//     Luhn-valid card number, no CVV the traffic carried, no e-mail address
//     but ***@domain.

// hostileRun is one run: a seed, the services that publish sparse events
// in it, and how long before weft starts its history ends: weft attached
// to a topic with hours of retention, a replay of the last hour, of
// yesterday.
type hostileRun struct {
	seed   int64
	sparse []string
	age    time.Duration
}

// sparseSets are the sparse services of the runs, in turn: two services,
// three others, every service; ages are their histories' ages.
var (
	sparseSets = [][]string{
		{demo.ServiceOrders, demo.ServiceNotifications},
		{demo.ServiceInventory, demo.ServicePickup, demo.ServicePayments},
		demo.Services(),
	}
	ages = []time.Duration{time.Minute, time.Hour, 26 * time.Hour}
)

// envHostileSeeds adds seeds to the fixed ones: WEFT_HOSTILE_SEEDS=11,12.
const envHostileSeeds = "WEFT_HOSTILE_SEEDS"

func hostileRuns(t *testing.T) []hostileRun {
	runs := []hostileRun{{1, sparseSets[0], ages[0]}, {7, sparseSets[1], ages[1]}, {2026, sparseSets[2], ages[2]}}
	if v := os.Getenv(envHostileSeeds); v != "" {
		for i, s := range strings.Split(v, ",") {
			seed, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			require.NoError(t, err, "%s=%q", envHostileSeeds, v)
			runs = append(runs, hostileRun{seed, sparseSets[i%len(sparseSets)], ages[i%len(ages)]})
		}
	}
	return runs
}

// hostileWindows are short, so the live orders' windows run out within the
// test; the backfill's ran out long before weft started.
var hostileWindows = Windows{Grace: 2 * time.Second, Convergence: 4 * time.Second}

// hostileConfig is the traffic of a run: the default fault mix plus the
// canonical race, every encoding with the contract fields in headers or in
// band, sparse services, personal data everywhere; then live orders.
func hostileConfig(run hostileRun, name string, now time.Time) demo.Config {
	cfg := demo.DefaultConfig()
	cfg.Seed, cfg.Orders, cfg.Now = run.seed, 150, now
	cfg.Topics = demo.TopicNames{Suffix: "." + name}
	cfg.Encoding = demo.EncodingMix{Structured: 0.4, Binary: 0.3, JSON: 0.3, InBand: true, Sparse: run.sparse}
	cfg.Faults.CancelRace = demo.FaultShare{Count: 3}
	cfg.PersonalData = demo.PersonalData{KeyedByEmail: 0.25, Payloads: true, Headers: true, Undecodable: 12}
	cfg.Live = demo.LiveConfig{Rate: 25, StepDelayMin: 30 * time.Millisecond, StepDelayMax: 250 * time.Millisecond, MaxOrders: 40}
	cfg.Consumers.Enabled = false
	return cfg
}

func TestHostileTrafficProperty(t *testing.T) {
	brokers := testenv.Kafka(t)
	for _, run := range hostileRuns(t) {
		t.Run(fmt.Sprintf("seed=%d", run.seed), func(t *testing.T) {
			t.Parallel()
			runHostile(t, brokers, run)
		})
	}
}

// hostile is one run in progress.
type hostile struct {
	ctx    context.Context
	conn   driver.Conn
	store  *chstore.Store
	engine *Engine
	det    *Detector
	// stuck are the orders that must be raised stuck once the clock
	// passes their deadline, by order id.
	stuck map[string]*stuckWant
	// late describes every stuck order a pass should have raised and did not.
	late   []string
	passes int
	clock  Clock // of the last pass
}

// stuckWant is a stuck order, its deadline, and the pass that raised it.
type stuckWant struct {
	fault    demo.Fault
	deadline time.Time
	records  int
	raised   int // pass number, 0 until raised
	missed   int // the first pass that should have raised it, 0 if none
}

func runHostile(t *testing.T, brokers []string, run hostileRun) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := testenv.Name(t)
	chCfg := testenv.ClickHouse(t)
	store, err := chstore.Open(ctx, chCfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	require.NoError(t, store.Migrate(ctx))

	// The traffic: planned (to check what it covers), then produced.
	began := time.Now()
	dcfg := hostileConfig(run, name, began.UTC().Add(-run.age).Truncate(time.Millisecond))
	plan, err := demo.Plan(dcfg)
	require.NoError(t, err)
	checkTraffic(t, dcfg, plan)
	// Small batches, as a shop's services produce them one event at a
	// time: the tap's fetches then bring a few records of each partition.
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(4<<10))
	require.NoError(t, err)
	defer prod.Close()
	gen, err := demo.New(dcfg, prod, zerolog.Nop())
	require.NoError(t, err)
	require.NoError(t, gen.EnsureTopics(ctx, kadm.NewClient(prod), 3))
	manifest, err := gen.RunHistory(ctx)
	require.NoError(t, err)
	require.Equal(t, plan.Manifest.Summary(), manifest.Summary())

	// weft, as `weft run` wires it (cmd/weft/run.go), on this run's topics.
	engine := NewEngine(store, Builtin())
	var tap *collector.Collector
	det := NewDetector(engine, time.Second, hostileWindows, Settings{Logger: zerolog.Nop(),
		StoringSince: func() time.Time { return tap.StoringSince() }})
	ccfg := collector.Default()
	ccfg.Group = "weft_" + name
	ccfg.Topics.Include = []string{".*" + regexp.QuoteMeta("."+name)}
	ccfg.Topics.RefreshInterval = time.Second
	// A backfill of many batches, each partition read a few records at a
	// time: the stream's clock climbs through the history as a large
	// topic's would, instead of jumping to its end with the first fetch.
	ccfg.Batch.MaxRecords, ccfg.Batch.FlushInterval = 20, 50*time.Millisecond
	ccfg.Fetch.MaxPartitionBytes = 4 << 10
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	tap, err = collector.New(ccfg, kc, store, collector.Settings{Logger: zerolog.Nop()})
	require.NoError(t, err)
	require.NoError(t, tap.Start(ctx))
	defer func() { _ = tap.Shutdown(context.Background()) }()
	h := &hostile{ctx: ctx, conn: testenv.Conn(t), store: store, engine: engine, det: det, stuck: map[string]*stuckWant{}}
	h.expectStuck(manifest)

	// 1. Backfill. The detector's first pass comes before the tap stored
	// anything, as when weft starts; then passes while the tap ingests.
	h.pass(t)
	runCtx, stop := context.WithCancel(ctx)
	tapDone := make(chan error, 1)
	go func() { tapDone <- tap.Run(runCtx) }()
	defer func() { stop(); require.NoError(t, <-tapDone) }()
	stored := func() int { s := tap.Stats(); return int(s.Stored + s.Quarantined) }
	duringIngest := 0
	for {
		before := stored()
		h.pass(t)
		if before == manifest.Records() {
			break // this pass began with the whole history stored
		}
		if before > 0 {
			duringIngest++
		}
		require.NoError(t, ctx.Err(), "backfill: %d of %d records stored", before, manifest.Records())
	}
	backfillPasses := h.passes
	require.GreaterOrEqual(t, duringIngest, 3, "the detector passed while the tap ingested the backfill")

	// 2. Live: more orders while weft runs, until every record is stored
	// and the windows of the last order ran out on the stream's clock.
	liveDone := make(chan error, 1)
	var live *demo.Manifest
	go func() {
		var err error
		live, err = gen.RunLive(ctx, nil)
		liveDone <- err
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case err := <-liveDone:
			require.NoError(t, err)
			running = false
		case <-tick.C:
			h.pass(t)
		}
	}
	require.Empty(t, live.Interrupted)
	h.expectStuck(live)
	manifest.Merge(live)
	var last time.Time
	for _, o := range manifest.Orders {
		last = later(last, o.LastEventAt)
	}
	for {
		before := stored()
		h.pass(t)
		if before == manifest.Records() && h.clock.Now.After(last.Add(max(hostileWindows.Grace, hostileWindows.Convergence))) {
			break
		}
		require.NoError(t, ctx.Err(), "live: %d of %d records stored, clock %s, last event %s", before, manifest.Records(), h.clock.Now, last)
		<-tick.C
	}
	t.Logf("%d passes: %d in the backfill (%d while the tap ingested it), %d live; %s in all",
		h.passes, backfillPasses, duringIngest, h.passes-backfillPasses, time.Since(began).Round(time.Millisecond))

	// Nothing lost: every event stored, every undecodable record quarantined.
	var events, quarantined uint64
	require.NoError(t, h.conn.QueryRow(ctx, "SELECT uniqExact(topic, partition, offset) FROM "+store.Table("events")).Scan(&events))
	require.NoError(t, h.conn.QueryRow(ctx, "SELECT uniqExact(topic, partition, offset) FROM "+store.Table("quarantine")).Scan(&quarantined))
	assert.Equal(t, manifest.Records()-manifest.Undecodable, int(events), "events stored")
	assert.Equal(t, manifest.Undecodable, int(quarantined), "undecodable records quarantined")

	// Stuck orders raised on the first pass that should have.
	var on []int
	due := 0
	for _, w := range h.stuck {
		if h.clock.Now.After(w.deadline) {
			due++
		}
		if w.raised > 0 {
			on = append(on, w.raised)
		}
	}
	slices.Sort(on)
	t.Logf("stuck orders: %d raised of the %d whose deadline passed (%d live ones not yet due), on passes %v",
		len(on), due, len(h.stuck)-due, slices.Compact(on))
	assertNone(t, h.late, "stuck orders not raised on the first pass whose clock passed their deadline")

	// 3. Scoring.
	active, err := engine.Findings(ctx, FindingFilter{Status: "active"})
	require.NoError(t, err)
	resolved, err := engine.Findings(ctx, FindingFilter{Status: StatusResolved})
	require.NoError(t, err)
	sc := scoreFindings(manifest, h.clock, active, resolved, h.stuck)
	t.Logf("seed %d, history ending %s before weft started, sparse services %v: %s\n%s",
		run.seed, run.age, run.sparse, manifest.Summary(), sc.table())
	for _, k := range Kinds {
		assert.Positive(t, sc.kinds[k].expected, "the traffic injects %s", k)
		assertNone(t, sc.kinds[k].falsePos, "%s precision: raised on orders that do not have it", k)
		assertNone(t, sc.kinds[k].missed, "%s recall: not raised on orders that have it", k)
	}
	assert.Positive(t, sc.sparseOrders, "sparse orders")
	assertNone(t, sc.sparseDivergent, "divergence on sparse orders (a normal completed order is never divergent)")
	assertNone(t, sc.wrongStep, "stuck orders raised in another step")

	// 4. Masking: every stored column.
	scanner := newLeakScanner(demo.CVVs())
	leaks, values := scanDatabase(ctx, t, h.conn, chCfg.Database, scanner)
	t.Logf("masking: %d stored values scanned, %d leaks", values, len(leaks))
	for i, l := range leaks {
		if i == 20 {
			t.Errorf("… and %d more leaks", len(leaks)-i)
			break
		}
		t.Errorf("personal data stored: %s", l)
	}
}

// expectStuck adds the stuck orders of m: each must be raised once the
// clock passes its deadline, the last event's time plus its step's SLA.
func (h *hostile) expectStuck(m *demo.Manifest) {
	for _, f := range m.FaultsOf(demo.KindStuck) {
		st, _ := demo.LookupStep(f.Step)
		o, _ := m.Order(f.OrderID)
		h.stuck[f.OrderID] = &stuckWant{fault: f, deadline: f.LastEventAt.Add(st.SLA), records: o.Records}
	}
}

// pass runs one detector pass, then checks that every stuck order the pass
// should have raised is raised: its records were all stored within the
// ingest windows passed so far, and the pass's clock passed its deadline.
func (h *hostile) pass(t *testing.T) PassResult {
	t.Helper()
	res, err := h.det.Pass(h.ctx)
	require.NoError(t, err)
	h.passes++
	h.clock = res.Clock
	// Rows stored before the ingest window now starts were looked at
	// (ingested_at is compared in milliseconds).
	looked := h.det.cur.IngestFrom.Truncate(time.Millisecond)

	var pending []string
	for id, w := range h.stuck {
		if w.raised == 0 {
			pending = append(pending, id)
		}
	}
	if len(pending) == 0 {
		return res
	}
	type storedOrder struct {
		records uint64
		last    time.Time
	}
	got := map[string]storedOrder{}
	rows, err := h.conn.Query(h.ctx, "SELECT order_id, uniqExact(topic, partition, offset), max(ingested_at) FROM "+
		h.store.Table("events")+" WHERE order_id IN ? GROUP BY order_id", pending)
	require.NoError(t, err)
	for rows.Next() {
		var (
			id string
			s  storedOrder
		)
		require.NoError(t, rows.Scan(&id, &s.records, &s.last))
		got[id] = s
	}
	require.NoError(t, rows.Err())
	raised, err := h.engine.Findings(h.ctx, FindingFilter{Kind: KindStuck, Status: "active"})
	require.NoError(t, err)
	isRaised := map[string]bool{}
	for _, f := range raised {
		isRaised[f.OrderID] = true
	}
	slices.Sort(pending)
	for _, id := range pending {
		w := h.stuck[id]
		if isRaised[id] {
			w.raised = h.passes
			continue
		}
		s := got[id]
		due := int(s.records) == w.records && s.last.Before(looked) && res.Clock.Now.After(w.deadline)
		if due && w.missed == 0 {
			w.missed = h.passes
			h.late = append(h.late, fmt.Sprintf("pass %d, clock %s: %s stuck in %s, deadline %s, its %d records stored by %s (window looked at up to %s): not raised",
				h.passes, res.Clock.Now.Format(time.RFC3339Nano), id, w.fault.Step, w.deadline.Format(time.RFC3339Nano),
				w.records, s.last.Format(time.RFC3339Nano), looked.Format(time.RFC3339Nano)))
		}
	}
	return res
}

// assertNone fails when list is not empty, naming up to ten of its items
// one a line, and how many there are.
func assertNone(t *testing.T, list []string, format string, args ...any) {
	t.Helper()
	if len(list) == 0 {
		return
	}
	shown := list[:min(len(list), 10)]
	more := ""
	if len(list) > len(shown) {
		more = fmt.Sprintf("\n  … and %d more", len(list)-len(shown))
	}
	t.Errorf("%s: %d\n  %s%s", fmt.Sprintf(format, args...), len(list), strings.Join(shown, "\n  "), more)
}
