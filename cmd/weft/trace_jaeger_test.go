package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/testenv"
	"github.com/weft-sh/weft/tracing"
)

var updateTrace = flag.Bool("update", false, "rewrite the golden files in testdata/")

// spanView is what the comparison looks at in a span.
type spanView struct {
	Parent, Name, Service, Kind string
	Attrs                       map[string]any
	Links                       []string
}

func viewSpans(td ptrace.Traces) map[string]spanView {
	out := map[string]spanView{}
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		svc, _ := rs.Resource().Attributes().Get(tracing.AttrServiceName)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				v := spanView{Parent: s.ParentSpanID().String(), Name: s.Name(), Service: svc.AsString(), Kind: s.Kind().String(),
					Attrs: s.Attributes().AsRaw()}
				for l := 0; l < s.Links().Len(); l++ {
					v.Links = append(v.Links, s.Links().At(l).TraceID().String()+"/"+s.Links().At(l).SpanID().String())
				}
				out[s.SpanID().String()] = v
			}
		}
	}
	return out
}

// TestTraceExportToJaeger: demo orders → real Kafka → tap → real
// ClickHouse → the Tracer → OTLP/HTTP → a real Jaeger v2. Every order's
// trace read back through Jaeger's query API is the trace `weft trace`
// builds, span by span: parents, names, services, kinds, attributes and
// links, each span once. One healthy order's trace is golden
// (testdata/trace-healthy.json, -update rewrites it).
func TestTraceExportToJaeger(t *testing.T) {
	jg := testenv.Jaeger(t)
	otlp, query := jg.OTLPHTTP, jg.Query
	brokers := testenv.Kafka(t)
	chCfg := testenv.ClickHouse(t)
	name := testenv.Name(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	dcfg := demo.DefaultConfig()
	dcfg.Seed = 20261203
	dcfg.Orders = 30
	dcfg.Now = time.Now().UTC().Add(-time.Minute)
	dcfg.Topics = demo.TopicNames{Suffix: "." + name}
	manifest := testenv.DemoHistory(t, brokers, dcfg)
	require.NotEmpty(t, manifest.Healthy)

	keyPath := filepath.Join(t.TempDir(), "id.key")
	require.NoError(t, os.WriteFile(keyPath, []byte("weft-trace-test-id-key-0001\n"), 0o600))
	cfg := DefaultConfig()
	cfg.Log.Level = "warn"
	cfg.Kafka.Brokers = brokers
	cfg.ClickHouse = chCfg
	cfg.HTTP.Listen = ""
	cfg.Collector.Group = "weft_" + name
	cfg.Collector.Topics.Include = []string{".*" + regexp.QuoteMeta("."+name)}
	cfg.Collector.Topics.RefreshInterval = time.Second
	cfg.Collector.Batch.FlushInterval = 200 * time.Millisecond
	cfg.Consistency.Interval = time.Second
	cfg.Consistency.Settle = time.Second
	cfg.Consistency.Windows = consistency.Windows{Grace: time.Second, Convergence: time.Second}
	cfg.Tracing.Enabled, cfg.Tracing.ClickHouse, cfg.Tracing.IDKeyFile = true, true, keyPath
	gw := newOTLPGateway(t, otlp)
	cfg.Tracing.Endpoint, cfg.Tracing.Interval = gw.url(), 200*time.Millisecond
	cfg.Tracing.Timeout, cfg.Tracing.RetryFor = 5*time.Second, 3*time.Minute
	require.NoError(t, cfg.Validate())
	runCtx, stop := context.WithCancel(ctx)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- runWeft(runCtx, cfg, zerolog.Nop(), started) }()
	select {
	case <-started:
	case err := <-done:
		stop()
		t.Fatalf("weft run: %v", err)
	}
	defer func() { stop(); require.NoError(t, <-done) }()

	store, err := chstore.Open(ctx, chCfg)
	require.NoError(t, err)
	defer store.Close()
	want := uint64(manifest.Records() - manifest.Undecodable)
	require.Eventually(t, func() bool {
		var n uint64
		_ = testenv.Conn(t).QueryRow(ctx, "SELECT count() FROM "+store.Table("events")+" FINAL").Scan(&n)
		return n == want
	}, 90*time.Second, 250*time.Millisecond, "events stored, want %d", want)

	weftYAML := filepath.Join(t.TempDir(), "weft.yaml")
	require.NoError(t, os.WriteFile(weftYAML, []byte(fmt.Sprintf("clickhouse:\n  addr: [%q]\n  database: %q\ncollector:\n  group: %q\ntracing:\n  id_key_file: %q\n",
		chCfg.Addr[0], chCfg.Database, cfg.Collector.Group, keyPath)), 0o600))
	ids := tracing.NewIDs([]byte("weft-trace-test-id-key-0001"))
	compare := func(manifest *demo.Manifest) {
		compared := 0
		for _, o := range manifest.Orders {
			out, err := execWeft(t, "trace", o.ID, "-o", "otlp-json", "-c", weftYAML)
			require.NoError(t, err, out)
			local, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(out))
			require.NoError(t, err)
			wantSpans := viewSpans(local)
			traceID := ids.TraceID(o.ID).String()
			var got map[string]spanView
			var gotCount int
			require.Eventually(t, func() bool {
				td := testenv.JaegerTrace(t, query, traceID)
				got, gotCount = viewSpans(td), td.SpanCount()
				// The spans of findings the detector opened meanwhile
				// (weft trace marks the latest span instead): each under a
				// span of the order, and not counted below.
				for id, s := range got {
					if s.Service == tracing.FindingService {
						assert.Contains(t, got, s.Parent, "order %s: finding span %s under a span of the order", o.ID, s.Name)
						assert.Equal(t, "weft.finding "+s.Attrs["weft.finding.kind"].(string), s.Name)
						delete(got, id)
						gotCount--
					}
				}
				return gotCount >= len(wantSpans)
			}, 60*time.Second, 250*time.Millisecond, "order %s: %d spans in jaeger", o.ID, len(wantSpans))
			assert.Equal(t, len(wantSpans), gotCount, "order %s: each span once", o.ID)
			assert.Equal(t, wantSpans, got, "order %s: jaeger holds the trace weft trace builds", o.ID)
			// Checked against what the tap stored, not against weft's builder:
			// one span per stored event id, each emitted by its service, and in
			// a healthy order one root with every parent present.
			stored := map[string]string{}
			rows, err := testenv.Conn(t).Query(ctx, "SELECT DISTINCT event_id, service FROM "+store.Table("events")+" WHERE order_id = ?", o.ID)
			require.NoError(t, err)
			for rows.Next() {
				var id, svc string
				require.NoError(t, rows.Scan(&id, &svc))
				stored[id] = svc
			}
			rows.Close()
			fromJaeger := map[string]string{}
			roots := 0
			for _, s := range got {
				fromJaeger[s.Attrs[tracing.AttrMessageID].(string)] = s.Service
				if s.Parent == "" {
					roots++
				} else if slices.Contains(manifest.Healthy, o.ID) {
					_, ok := got[s.Parent]
					assert.True(t, ok, "order %s: span %s's parent %s is in the trace", o.ID, s.Name, s.Parent)
				}
			}
			assert.Equal(t, stored, fromJaeger, "order %s: a span per stored event, by the emitting service", o.ID)
			if slices.Contains(manifest.Healthy, o.ID) {
				assert.Equal(t, 1, roots, "order %s: a healthy order's trace has one root", o.ID)
			}
			compared++
		}
		assert.Equal(t, len(manifest.Orders), compared)
	}
	compare(manifest)

	// A receiver outage: the gateway answers 503, then cuts connections,
	// while more orders are stored; once it is back, every span of the new
	// orders is in Jaeger, each once, and the first orders' are unchanged.
	gw.refusing.Store(true)
	dcfg2 := dcfg
	dcfg2.Seed, dcfg2.Orders, dcfg2.Now = 20261204, 15, time.Now().UTC().Add(-time.Minute)
	manifest2 := testenv.DemoHistory(t, brokers, dcfg2)
	want += uint64(manifest2.Records() - manifest2.Undecodable)
	require.Eventually(t, func() bool {
		var n uint64
		_ = testenv.Conn(t).QueryRow(ctx, "SELECT count() FROM "+store.Table("events")+" FINAL").Scan(&n)
		return n == want
	}, 90*time.Second, 250*time.Millisecond, "events stored, want %d", want)
	require.Eventually(t, func() bool { return gw.answered.Load() >= 2 }, 60*time.Second, 100*time.Millisecond, "the tracer tried during the outage")
	gw.cutConnections()
	require.Eventually(t, func() bool { return gw.cut.Load() >= 1 }, 60*time.Second, 100*time.Millisecond, "the tracer retried into a cut connection")
	for _, o := range manifest2.Orders[:3] {
		assert.Zero(t, testenv.JaegerTrace(t, query, ids.TraceID(o.ID).String()).SpanCount(), "order %s: nothing reached jaeger during the outage", o.ID)
	}
	gw.refusing.Store(false)
	gw.up()
	compare(manifest2)
	compare(manifest)

	// weft order prints the trace id.
	out, err := execWeft(t, "order", manifest.Healthy[0], "-c", weftYAML)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Trace "+ids.TraceID(manifest.Healthy[0]).String())

	// One healthy order, golden: times relative to its first span, the
	// test's topic suffix taken off.
	out, err = execWeft(t, "trace", manifest.Healthy[0], "-o", "otlp-json", "-c", weftYAML)
	require.NoError(t, err, out)
	golden := normalizeTrace(t, out, name)
	path := filepath.Join("testdata", "trace-healthy.json")
	if *updateTrace {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, golden, 0o644))
	}
	wantGolden, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to write it")
	assert.Equal(t, string(wantGolden), string(golden))
}

// normalizeTrace makes an OTLP-JSON trace of a demo order comparable
// across runs. The demo is seeded, so the order's events, their ids,
// services, causes and relative times repeat; what a run changes is taken
// out: the test's name in topics and the group, the order id's tag (from
// the demo's start time), the ids derived from the order id (numbered by
// first appearance), the partition the key hashes to and the offsets
// (other tests share no topic, but the key decides the partition), and
// absolute times (kept as milliseconds after the trace's first).
func normalizeTrace(t *testing.T, js, name string) []byte {
	js = strings.ReplaceAll(js, "."+name, "")
	js = strings.ReplaceAll(js, name, "TEST")
	js = regexp.MustCompile(`ord-[0-9a-f]{6}-`).ReplaceAllString(js, "ord-TAG-")
	var v any
	require.NoError(t, json.Unmarshal([]byte(js), &v))
	var walk func(any, func(string, any) any) any
	walk = func(x any, f func(string, any) any) any {
		switch x := x.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) { // a stable numbering
				x[k] = f(k, walk(x[k], f))
			}
		case []any:
			for i, c := range x {
				x[i] = f("", walk(c, f))
			}
		}
		return x
	}
	isTime := func(k string) bool { return strings.HasSuffix(k, "UnixNano") }
	nanos := func(c any) int64 {
		var n int64
		_, _ = fmt.Sscan(c.(string), &n)
		return n
	}
	base := int64(-1)
	walk(v, func(k string, c any) any {
		if _, ok := c.(string); ok && isTime(k) && (base < 0 || nanos(c) < base) {
			base = nanos(c)
		}
		return c
	})
	ids := map[string]string{}
	hexID := regexp.MustCompile(`^([0-9a-f]{16}|[0-9a-f]{32})$`)
	walk(v, func(k string, c any) any {
		s, ok := c.(string)
		switch {
		case ok && isTime(k):
			return fmt.Sprintf("+%dms", (nanos(c)-base)/1e6)
		case ok && (k == "traceId" || k == "spanId" || k == "parentSpanId") && hexID.MatchString(s):
			if _, seen := ids[s]; !seen {
				ids[s] = fmt.Sprintf("%s-%d", k, len(ids)+1)
			}
			return ids[s]
		}
		if m, ok := c.(map[string]any); ok {
			switch m["key"] {
			case tracing.AttrDestinationPartitionID:
				m["value"] = map[string]any{"stringValue": "P"}
			case tracing.AttrKafkaOffset:
				m["value"] = map[string]any{"intValue": "O"}
			}
		}
		return c
	})
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	return append(b, '\n')
}

// otlpGateway stands between weft and Jaeger's OTLP receiver as a load
// balancer would: it forwards requests (httputil.ReverseProxy), answers 503
// while its backend is "unavailable", and can stop listening altogether
// (connections cut) and start again on the same address. Stopping is
// graceful, so a request is either forwarded and answered or never
// reaches Jaeger: an outage it makes cannot itself cause a duplicate.
type otlpGateway struct {
	t        *testing.T
	addr     string
	proxy    http.Handler
	srv      *http.Server
	refusing atomic.Bool
	answered atomic.Int64 // 503s sent
	cutter   net.Listener // while cutting connections
	cut      atomic.Int64 // connections closed unanswered
}

func newOTLPGateway(t *testing.T, target string) *otlpGateway {
	u, err := url.Parse(target)
	require.NoError(t, err)
	g := &otlpGateway{t: t, addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), proxy: httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})}
	g.up()
	t.Cleanup(g.down)
	return g
}

func (g *otlpGateway) url() string { return "http://" + g.addr + "/v1/traces" }

// cutConnections stops serving (gracefully) and closes every connection
// as soon as it is made, with nothing read: a receiver gone.
func (g *otlpGateway) cutConnections() {
	g.down()
	ln, err := net.Listen("tcp", g.addr)
	require.NoError(g.t, err)
	g.cutter = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.cut.Add(1)
			_ = c.Close()
		}
	}()
}

func (g *otlpGateway) up() {
	if g.cutter != nil {
		_ = g.cutter.Close()
		g.cutter = nil
	}
	var ln net.Listener
	require.Eventually(g.t, func() bool {
		var err error
		ln, err = net.Listen("tcp", g.addr)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "gateway listens again on %s", g.addr)
	g.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.refusing.Load() {
			g.answered.Add(1)
			http.Error(w, "backend unavailable", http.StatusServiceUnavailable)
			return
		}
		g.proxy.ServeHTTP(w, r)
	})}
	go func() { _ = g.srv.Serve(ln) }()
}

func (g *otlpGateway) down() {
	if g.cutter != nil {
		_ = g.cutter.Close()
		g.cutter = nil
	}
	if g.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = g.srv.Shutdown(ctx)
	g.srv = nil
}
