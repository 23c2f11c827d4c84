package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/demo"
)

func TestConsumersNote(t *testing.T) {
	cfg := demo.DefaultConfig()
	m := &demo.Manifest{Consumers: cfg.ConsumerGroups()}
	assert.Equal(t, `The shop's services consume the live traffic in their own consumer groups:
  fulfillment-svc falls behind (it reads 0.5 records/s of payments)
  notifications-svc stops after 1m0s, for good
  orders-svc, inventory-svc, payments-svc, pickup-svc keep up
`, consumersNote(m))
	assert.Empty(t, consumersNote(&demo.Manifest{}), "no consumers, no note")
}

// TestDevDemoConsumers: `weft dev`'s demo, on kfake as dev runs it, reports
// the history with the services' groups, which consume while live traffic
// flows, and stops cleanly when told to.
func TestDevDemoConsumers(t *testing.T) {
	kf, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer kf.Close()
	cfg := DefaultConfig()
	cfg.Kafka.Brokers = kf.ListenAddrs()
	dcfg := demo.DefaultConfig()
	dcfg.Orders = 20
	dcfg.Live.Rate = 20
	dcfg.Consumers.StopAfter = 100 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	histDone := make(chan *demo.Manifest, 1)
	done := make(chan error, 1)
	go func() { done <- runDevDemo(ctx, dcfg, cfg, zerolog.Nop(), histDone) }()
	var m *demo.Manifest
	select {
	case m = <-histDone:
	case err := <-done:
		t.Fatalf("dev demo ended before its history: %v", err)
	}
	assert.Equal(t, dcfg.ConsumerGroups(), m.Consumers)

	cl, err := kgo.NewClient(kgo.SeedBrokers(kf.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	state := func(group string) string {
		d, err := adm.DescribeGroups(ctx, group)
		require.NoError(t, err)
		return d[group].State
	}
	stopped := m.GroupsWith(demo.BehaviorStopped)[0].Group
	require.Eventually(t, func() bool { return state(stopped) == "Empty" }, 10*time.Second, 50*time.Millisecond, stopped)
	for _, g := range m.GroupsWith(demo.BehaviorKeepsUp) {
		require.Eventually(t, func() bool { return state(g.Group) == "Stable" }, 10*time.Second, 50*time.Millisecond, g.Group)
	}
	cancel()
	require.NoError(t, <-done)
}

// TestDevBanner: the banner of `weft dev` suggests, for a stuck order of
// the demo, its events, an export of its evidence into the data directory
// and the offline check of that bundle with the verifier key.
func TestDevBanner(t *testing.T) {
	dataDir := t.TempDir()
	cfg := DefaultConfig()
	cfg.HTTP.Listen = "127.0.0.1:8080"
	require.NoError(t, devAudit(&cfg, dataDir))
	cfgPath := filepath.Join(dataDir, "weft.yaml")
	m := &demo.Manifest{Faults: []demo.Fault{{Kind: demo.KindLost, OrderID: "ord-lost"}, {Kind: demo.KindStuck, OrderID: "ord-7"}}}
	var b strings.Builder
	printDevBanner(&b, cfgPath, cfg, devAddrs{kafka: "127.0.0.1:19092", clickhouse: "127.0.0.1:19000", clickhouseHTTP: "127.0.0.1:18123",
		clickhouseLog: filepath.Join(dataDir, "clickhouse", "clickhouse-server.log")}, m,
		map[auth.Role]string{auth.Viewer: "weft_v", auth.Operator: "weft_o", auth.Auditor: "weft_a"})
	out := b.String()
	bundle := filepath.Join(dataDir, "ord-7.zip")
	for _, line := range []string{
		"  Its events:       weft events --order ord-7 -c " + cfgPath + "\n",
		"  Audit key:        weft audit key -c " + cfgPath + "    (checkpoints signed every 10s; copies in " + dataDir + "/audit/checkpoints)\n",
		"  Its evidence:     weft audit export --order ord-7 --out " + bundle + " -c " + cfgPath + "\n",
		"  Checked offline:  weft audit verify-bundle " + bundle + ` --key "$(weft audit key -c ` + cfgPath + `)"` + "\n",
		"  Web console:      http://127.0.0.1:8080/   (log in with a token below; operator to acknowledge findings)\n",
		`  HTTP API:         curl -H "Authorization: Bearer weft_v" http://127.0.0.1:8080/api/v1/stuck` + "\n",
		"  API tokens:       viewer    weft_v  (reads)\n",
		"  A time range:     weft replay range --topic payments --from 1h --to now --type PaymentAuthorized --dry-run -c " + cfgPath + "\n",
		"  ClickHouse log:   " + filepath.Join(dataDir, "clickhouse", "clickhouse-server.log") + " (restarted if it dies)\n",
	} {
		assert.Contains(t, out, line)
	}
}

// TestDevTracing: `weft dev` turns tracing on with spans into ClickHouse,
// an id key made once (0600) and reused, written into the config the
// banner's commands read, so `weft trace` there gives weft run's ids.
func TestDevTracing(t *testing.T) {
	dataDir := t.TempDir()
	cfg := DefaultConfig()
	require.NoError(t, devTracing(&cfg, dataDir, ""))
	key, err := os.ReadFile(cfg.Tracing.IDKeyFile)
	require.NoError(t, err)
	fi, err := os.Stat(cfg.Tracing.IDKeyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	cfg2 := DefaultConfig()
	require.NoError(t, devTracing(&cfg2, dataDir, "http://127.0.0.1:4318/v1/traces"))
	key2, err := os.ReadFile(cfg2.Tracing.IDKeyFile)
	require.NoError(t, err)
	assert.Equal(t, key, key2, "the next run reuses the key")

	cfgPath := filepath.Join(dataDir, "weft.yaml")
	require.NoError(t, writeDevConfig(cfgPath, cfg2))
	loaded, err := loadConfig(cfgPath)
	require.NoError(t, err)
	assert.True(t, loaded.Tracing.Enabled)
	assert.True(t, loaded.Tracing.ClickHouse)
	assert.Equal(t, cfg2.Tracing.IDKeyFile, loaded.Tracing.IDKeyFile)
	assert.Equal(t, "http://127.0.0.1:4318/v1/traces", loaded.Tracing.Endpoint)

	var b strings.Builder
	printDevBanner(&b, cfgPath, cfg, devAddrs{}, &demo.Manifest{Faults: []demo.Fault{{Kind: demo.KindStuck, OrderID: "ord-7"}}}, nil)
	assert.Contains(t, b.String(), "  Its trace:        weft trace ord-7 -o otlp-json -c "+cfgPath)
}
