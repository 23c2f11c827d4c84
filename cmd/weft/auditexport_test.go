package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestAuditExportCommand: weft run with the audit trail on stores an
// order's events on two partitions; weft audit export writes its bundle,
// logged as an export action; weft audit verify-bundle on the file exits
// 0, and on the file with one byte changed exits 4. The file is not
// replaced without --force, and a changed row refuses the export (exit 4,
// logged as a failed export).
func TestAuditExportCommand(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	name := testenv.Name(t)
	topic := "orders.export_" + name
	testenv.CreateTopic(t, brokers, topic, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir := t.TempDir()
	skey, vkey, err := auditor.GenerateKey("weft-test")
	require.NoError(t, err)
	keyFile, vkeyFile, sourceFile := filepath.Join(dir, "signing.key"), filepath.Join(dir, "weft.vkey"), filepath.Join(dir, "source.key")
	require.NoError(t, os.WriteFile(keyFile, []byte(skey+"\n"), 0o600))
	require.NoError(t, os.WriteFile(vkeyFile, []byte(vkey+"\n"), 0o600))
	require.NoError(t, os.WriteFile(sourceFile, []byte(auditor.GenerateSourceKey()+"\n"), 0o600))
	db := strings.TrimSuffix(store.Table("x"), ".x")
	cfgFile := writeFile(t, fmt.Sprintf(`kafka:
  brokers: [%s]
clickhouse:
  addr: [%s]
  database: %s
http:
  listen: 127.0.0.1:0
collector:
  group: weft_%s
  topics:
    include: ['%s']
    refresh_interval: 1s
  batch:
    flush_interval: 100ms
audit:
  enabled: true
  cluster_id: c1
  signing_key_file: %s
  source_key_file: %s
  checkpoint:
    dir: %s
`, strings.Join(brokers, ", "), strings.Join(testenv.ClickHouseAddr(t), ", "), db, name, strings.ReplaceAll(topic, ".", `\.`),
		keyFile, sourceFile, filepath.Join(dir, "checkpoints")))

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	for i, r := range []struct {
		part  int32
		order string
	}{{0, "ord-X"}, {1, "ord-Y"}, {1, "ord-X"}, {0, "ord-Y"}} {
		v := fmt.Sprintf(`{"event_type":"OrderPlaced","order_id":%q,"event_id":"e%d","customer":{"email":"jane@example.com"}}`, r.order, i)
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: r.part, Key: []byte(r.order), Value: []byte(v)}).FirstErr())
	}

	cfg, err := loadValid(cfgFile)
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	started, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- runWeft(runCtx, cfg, zerolog.Nop(), started) }()
	select {
	case <-started:
	case err := <-done:
		stop()
		t.Fatalf("weft run: %v", err)
	}
	leaves := func(order string) int {
		n := 0
		require.NoError(t, store.AuditOrderLeaves(ctx, order, func(chstore.AuditLeafRow) error { n++; return nil }))
		return n
	}
	require.Eventually(t, func() bool { return leaves("ord-X") == 2 && leaves("ord-Y") == 2 }, time.Minute, 100*time.Millisecond)
	stop() // checkpoints every log that grew
	require.NoError(t, <-done)

	bundle := filepath.Join(dir, "ord-X.zip")
	out, err := runCmd(t, "audit", "export", "--order", "ord-X", "--out", bundle, "--config", cfgFile)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Exported order ord-X to "+bundle)
	assert.Contains(t, out, "2 events (0 erased) and 0 operator actions, proven in 2 logs; logged as operator action #0")
	assert.Contains(t, out, "weft audit verify-bundle "+bundle+" --key "+vkey)

	code, stderr := runMain(t, nil, "audit", "verify-bundle", bundle, "--key", vkeyFile)
	assert.Equal(t, 0, code, stderr)
	out, err = runCmd(t, "audit", "verify-bundle", bundle, "--key", vkeyFile)
	require.NoError(t, err)
	assert.Contains(t, out, `VERIFIED with weft-test+`)
	assert.Contains(t, out, `2 events (0 erased) and 0 operator actions of order "ord-X" in 2 logs`)
	assert.Contains(t, out, topic+"/0@0")
	assert.Contains(t, out, topic+"/1@1")
	assert.Contains(t, out, `mask policy "masked before storing: the values of the JSON keys card_number`)

	// One byte changed, in the middle of the file: tampered, exit 4.
	data, err := os.ReadFile(bundle)
	require.NoError(t, err)
	forged := filepath.Join(dir, "forged.zip")
	data[len(data)/2] ^= 0x20
	require.NoError(t, os.WriteFile(forged, data, 0o600))
	code, stderr = runMain(t, nil, "audit", "verify-bundle", forged, "--key", vkeyFile)
	assert.Equal(t, exitTampered, code, stderr)

	// Never over a file without --force; with it, the new bundle lists
	// the first export among the order's actions.
	code, stderr = runMain(t, nil, "audit", "export", "--order", "ord-X", "--out", bundle, "--config", cfgFile)
	assert.Equal(t, 2, code, stderr)
	assert.Contains(t, stderr, "exists: pass --force to replace it")
	out, err = runCmd(t, "audit", "export", "--order", "ord-X", "--out", bundle, "--force", "--config", cfgFile, "-o", "json")
	require.NoError(t, err, out)
	assert.Contains(t, out, `"actions": 1`)
	assert.Contains(t, out, `"action": 1`)
	out, err = runCmd(t, "audit", "verify-bundle", bundle, "--key", vkeyFile)
	require.NoError(t, err, out)
	assert.Regexp(t, `0\s+\S+ \S+\s+\S+\s+cli \S+@\S+\s+export order/ord-X\s+success`, out)

	// A changed row: refused, exit 4, logged as a failed export.
	testenv.Mutate(t, `ALTER TABLE `+store.Table("events")+` UPDATE event_type = 'OrderCancelled' WHERE topic = ? AND partition = 1 AND offset = 1`, topic)
	other := filepath.Join(dir, "again.zip")
	code, stderr = runMain(t, nil, "audit", "export", "--order", "ord-X", "--out", other, "--config", cfgFile)
	assert.Equal(t, exitTampered, code, stderr)
	assert.Contains(t, stderr, topic+"/1@1 (leaf 1): the stored row does not recompute")
	assert.NoFileExists(t, other)

	var got []string
	require.NoError(t, store.ActionRows(ctx, "ord-X", func(r chstore.ActionRow) error {
		got = append(got, fmt.Sprintf("%s %s %s %d", r.Verb, r.Resource, r.Outcome, len(r.Targets)))
		if r.Outcome == "success" {
			assert.Contains(t, r.Detail, bundle+": 2 events (0 erased)")
		}
		return nil
	}))
	assert.Equal(t, []string{"export order/ord-X success 2", "export order/ord-X success 2", "export order/ord-X failure 0"}, got)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), "."), "temporary file %s left behind", e.Name())
	}
}
