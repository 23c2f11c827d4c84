package main

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/testenv"
)

// execWeft runs the weft command line in-process and returns its stdout.
func execWeft(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestEndToEndStuckOrders: demo traffic with a known set of injected stuck
// orders → real Kafka → tap → real ClickHouse → detector. `weft stuck -o
// json` must report exactly those orders, at the right step: no more, no fewer.
func TestEndToEndStuckOrders(t *testing.T) {
	brokers := testenv.Kafka(t)
	chCfg := testenv.ClickHouse(t)
	name := testenv.Name(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// 1. Demo history into the real broker, on topics of this test's own.
	dcfg := demo.DefaultConfig()
	dcfg.Seed = 20261124
	dcfg.Orders = 150
	dcfg.Now = time.Now().UTC().Add(-time.Minute)
	dcfg.Topics = demo.TopicNames{Suffix: "." + name}
	manifest := testenv.DemoHistory(t, brokers, dcfg)
	injected := manifest.FaultsOf(demo.KindStuck)
	require.NotEmpty(t, injected)

	// 2. weft run over exactly those topics.
	cfg := DefaultConfig()
	cfg.Log.Level = "warn"
	cfg.Kafka.Brokers = brokers
	cfg.ClickHouse = chCfg
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Collector.Group = "weft_" + name
	cfg.Collector.Topics.Include = []string{".*" + regexp.QuoteMeta("."+name)}
	cfg.Collector.Topics.RefreshInterval = time.Second
	cfg.Collector.Batch.FlushInterval = 200 * time.Millisecond
	cfg.Consistency.Interval = time.Second
	cfg.Consistency.Windows = consistency.Windows{Grace: time.Second, Convergence: time.Second}
	require.NoError(t, cfg.Validate())
	runCtx, stop := context.WithCancel(ctx)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- runWeft(runCtx, cfg, zerolog.Nop(), started) }()
	select {
	case <-started:
	case err := <-done:
		stop()
		t.Fatalf("weft run: %v", err) // done is drained: nothing to wait for
	}
	defer func() { stop(); require.NoError(t, <-done) }()

	// 3. Wait until every produced record is stored.
	store, err := chstore.Open(ctx, chCfg)
	require.NoError(t, err)
	defer store.Close()
	want := uint64(manifest.Records())
	require.Eventually(t, func() bool {
		var n uint64
		_ = testenv.Conn(t).QueryRow(ctx, "SELECT count() FROM "+store.Table("events")+" FINAL").Scan(&n)
		return n == want
	}, 90*time.Second, 250*time.Millisecond, "events stored, want %d", want)
	var quarantined uint64
	require.NoError(t, testenv.Conn(t).QueryRow(ctx, "SELECT count() FROM "+store.Table("quarantine")).Scan(&quarantined))
	assert.Zero(t, quarantined, "demo records are all decodable")

	// 4. weft stuck -o json reports exactly the injected stuck orders: from
	// the detector's findings once its passes caught up, and the same when
	// every order is evaluated now (--live).
	type key struct{ Order, Step string }
	var wantKeys []key
	for _, f := range injected {
		wantKeys = append(wantKeys, key{f.OrderID, f.Step})
	}
	sortKeys := func(k []key) {
		sort.Slice(k, func(i, j int) bool { return k[i].Order < k[j].Order })
	}
	sortKeys(wantKeys)
	stuck := func(extra ...string) (StuckReport, []key) {
		out, err := execWeft(t, append([]string{"stuck", "-o", "json", "--clickhouse", chCfg.Addr[0], "--database", chCfg.Database}, extra...)...)
		require.NoError(t, err, out)
		var rep StuckReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
		var got []key
		for _, s := range rep.Orders {
			got = append(got, key{s.OrderID, s.Step})
		}
		sortKeys(got)
		return rep, got
	}
	var rep StuckReport
	var gotKeys []key
	require.Eventually(t, func() bool {
		rep, gotKeys = stuck()
		return rep.Source == "detector" && !rep.CatchingUp && reflect.DeepEqual(wantKeys, gotKeys)
	}, 30*time.Second, 500*time.Millisecond, "stuck orders and their steps from the detector")
	assert.Equal(t, wantKeys, gotKeys, "stuck orders and their steps")
	for _, s := range rep.Orders {
		assert.NotEmpty(t, s.Owner, s.OrderID)
		assert.NotEmpty(t, s.LastEventType, s.OrderID)
		assert.Greater(t, s.InStepSeconds, s.SLASeconds, s.OrderID)
	}
	live, liveKeys := stuck("--live")
	assert.Equal(t, "live", live.Source)
	assert.Equal(t, wantKeys, liveKeys, "live evaluation agrees")

	// 5. The detector stored one open finding per stuck order.
	engine := consistency.NewEngine(store, cfg.Consistency.AllWorkflows())
	require.Eventually(t, func() bool {
		open, err := engine.Findings(ctx, consistency.FindingFilter{Kind: consistency.KindStuck, Status: "active"})
		return err == nil && len(open) == len(injected)
	}, 30*time.Second, 250*time.Millisecond, "open stuck findings")

	// 6. Every other finding: exactly the kind each injected fault calls
	// for, on exactly those orders (weft findings -o json).
	type fk struct{ Order, Kind string }
	var wantFindings []fk
	for _, f := range manifest.Faults {
		if k := demo.ExpectedFinding(f.Kind); k != "" {
			wantFindings = append(wantFindings, fk{f.OrderID, k})
		}
	}
	sortFK := func(v []fk) {
		sort.Slice(v, func(i, j int) bool { return v[i].Order+v[i].Kind < v[j].Order+v[j].Kind })
	}
	sortFK(wantFindings)
	var gotFindings []fk
	require.Eventually(t, func() bool {
		out, err := execWeft(t, "findings", "-o", "json", "--limit", "0", "--clickhouse", chCfg.Addr[0], "--database", chCfg.Database)
		if err != nil {
			return false
		}
		var rep FindingsReport
		if json.Unmarshal([]byte(out), &rep) != nil {
			return false
		}
		gotFindings = gotFindings[:0]
		for _, f := range rep.Findings {
			gotFindings = append(gotFindings, fk{f.OrderID, f.Kind})
		}
		sortFK(gotFindings)
		return assert.ObjectsAreEqual(wantFindings, gotFindings)
	}, 30*time.Second, 500*time.Millisecond, "findings")
	assert.Equal(t, wantFindings, gotFindings)

	// 7. weft order shows a stuck order's chain, each event after its cause.
	out, err := execWeft(t, "order", injected[0].OrderID, "-o", "json", "--clickhouse", chCfg.Addr[0], "--database", chCfg.Database)
	require.NoError(t, err, out)
	var ord OrderReport
	require.NoError(t, json.Unmarshal([]byte(out), &ord), out)
	require.NotEmpty(t, ord.Events)
	pos := map[string]int{}
	for i, e := range ord.Events {
		pos[e.EventID] = i
		assert.NotEmpty(t, e.Topic)
		assert.False(t, e.IngestedAt.IsZero())
	}
	for i, e := range ord.Events {
		if p, ok := pos[e.CausationID]; ok {
			assert.Less(t, p, i, "event %s comes after its cause", e.EventID)
		}
	}
	assert.Equal(t, injected[0].LastEventType, ord.Events[len(ord.Events)-1].Type)
}
