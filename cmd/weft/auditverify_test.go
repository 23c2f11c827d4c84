package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestAuditVerifyExitCodes: weft audit verify against a hand-built log
// (one gap leaf, signed): 0 when it verifies, 4 with a forged row in the
// gap, 1 on a database with no audit leaves. The tamper cases themselves
// are collector's TestVerifyAuditTamper.
func TestAuditVerifyExitCodes(t *testing.T) {
	ctx := context.Background()
	store := testenv.Store(t)
	dir := t.TempDir()
	skey, _, err := auditor.GenerateKey("weft-test")
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "signing.key")
	require.NoError(t, os.WriteFile(keyFile, []byte(skey+"\n"), 0o600))
	signer, err := auditor.NewSigner(skey)
	require.NoError(t, err)

	topic := "orders"
	leaf := auditor.Leaf{Kind: auditor.KindGap, Topic: topic, Offset: 0, End: 5, LeaderEpoch: -1, TimestampMs: 1}
	lb, err := leaf.MarshalBinary()
	require.NoError(t, err)
	log := auditor.NewLog()
	_, err = log.Append(auditor.LeafHash(lb))
	require.NoError(t, err)
	// No state: the tap stores a partition's (auditor.PartitionLog), and it
	// never starts a log with a gap.
	require.NoError(t, store.InsertAuditLeaves(ctx, []chstore.AuditLeafRow{{Topic: topic, LeafIndex: 0, Kind: "gap", Offset: 0, End: 5,
		Leaf: lb, LeafHash: auditor.LeafHash(lb)}}, time.Now(), "t1"))
	origin := auditor.LogOrigin("c1", topic, 0)
	sc, err := signer.Sign(log.Checkpoint(origin))
	require.NoError(t, err)
	require.NoError(t, store.InsertCheckpoint(ctx, chstore.CheckpointRow{Origin: origin, Size: sc.Size, Root: sc.Root,
		Note: sc.Note, Signed: true, CreatedAt: time.Now()}))

	config := func(s *chstore.Store) string {
		db := strings.TrimSuffix(s.Table("x"), ".x")
		return writeFile(t, fmt.Sprintf("clickhouse:\n  addr: [%s]\n  database: %s\naudit:\n  cluster_id: c1\n  signing_key_file: %s\n",
			strings.Join(testenv.ClickHouseAddr(t), ", "), db, keyFile))
	}
	cfg := config(store)

	out, err := runCmd(t, "audit", "verify", "--config", cfg)
	require.NoError(t, err, out)
	assert.Contains(t, out, "VERIFIED: 1 logs, 1 leaves, 0 rows; checkpoints verified with weft-test+")

	testenv.Conn(t).Exec(ctx, "INSERT INTO "+store.Table("events")+" (topic, partition, offset, order_id, payload) VALUES ('orders', 0, 2, 'o-forged', 'x')") //nolint:errcheck // checked below
	out, err = runCmd(t, "audit", "verify", "--config", cfg)
	var ce codeError
	require.True(t, errors.As(err, &ce), "%v", err)
	assert.Equal(t, exitTampered, ce.code)
	assert.Contains(t, out, "extra orders/0@2 order o-forged")
	assert.Contains(t, out, "TAMPERED: 1 findings")
	out, _ = runCmd(t, "audit", "verify", "--config", cfg, "-o", "json")
	var v AuditVerifyVerdict
	require.NoError(t, json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &v), out)
	assert.Equal(t, "tampered", v.Verdict)
	require.Len(t, v.Findings, 1)
	assert.Equal(t, "extra", v.Findings[0].Kind)
	code, _ := runMain(t, nil, "audit", "verify", "--config", cfg)
	assert.Equal(t, exitTampered, code)

	code, stderr := runMain(t, nil, "audit", "verify", "--config", config(testenv.Store(t)))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "nothing to verify")
}

// TestAuditVerifyKafka: weft audit verify --kafka against a hand-built
// log of an empty topic (one gap leaf, offsets 0-5): verified, with the
// Kafka counts in the summary; then a record is produced at offset 0,
// inside the gap: never stored, named with its order id, exit 4. A Kafka
// that does not answer is exit 1 and one line; a bad --since exit 2.
func TestAuditVerifyKafka(t *testing.T) {
	ctx := context.Background()
	store := testenv.Store(t)
	brokers := testenv.Kafka(t)
	topic := "verify_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 1, nil)

	leaf := auditor.Leaf{Kind: auditor.KindGap, Topic: topic, Offset: 0, End: 5, LeaderEpoch: -1, TimestampMs: 1}
	lb, err := leaf.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, store.InsertAuditLeaves(ctx, []chstore.AuditLeafRow{{Topic: topic, LeafIndex: 0, Kind: "gap", Offset: 0, End: 5,
		Leaf: lb, LeafHash: auditor.LeafHash(lb)}}, time.Now(), "t1"))
	db := strings.TrimSuffix(store.Table("x"), ".x")
	cfg := writeFile(t, fmt.Sprintf("kafka:\n  brokers: [%s]\nclickhouse:\n  addr: [%s]\n  database: %s\naudit:\n  cluster_id: c1\n",
		strings.Join(brokers, ", "), strings.Join(testenv.ClickHouseAddr(t), ", "), db))

	out, err := runCmd(t, "audit", "verify", "--kafka", "--config", cfg)
	require.NoError(t, err, out)
	assert.Contains(t, out, "VERIFIED: 1 logs, 1 leaves, 0 rows; checkpoints NOT AUTHENTICATED (no verifier key); Kafka: 0 records read, "+
		"0 matched by offset only (C_source unchecked: no source key), 0 not on Kafka (compacted or deleted), 0 before Kafka's log start (retention)")

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Value: []byte(`{"event_type":"OrderPlaced","order_id":"o-k1","event_id":"k1"}`)}).FirstErr())
	out, err = runCmd(t, "audit", "verify", "--kafka", "--config", cfg)
	var ce codeError
	require.True(t, errors.As(err, &ce), "%v: %s", err, out)
	assert.Equal(t, exitTampered, ce.code)
	assert.Contains(t, out, "never-stored "+topic+"/0@0 order o-k1: Kafka holds a committed record here, but the log has a gap for offsets 0 to 5")
	assert.Contains(t, out, "Kafka: 1 records read")
	out, _ = runCmd(t, "audit", "verify", "--kafka", "--config", cfg, "-o", "json")
	var v AuditVerifyVerdict
	require.NoError(t, json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &v), out)
	assert.True(t, v.Kafka)
	require.Len(t, v.Logs, 1)
	require.NotNil(t, v.Logs[0].Kafka)
	assert.Equal(t, uint64(1), v.Logs[0].Kafka.Records)
	assert.Equal(t, "never-stored", v.Findings[0].Kind)

	// Without --kafka the log itself verifies: only Kafka tells.
	out, err = runCmd(t, "audit", "verify", "--config", cfg)
	require.NoError(t, err, out)

	down := writeFile(t, fmt.Sprintf("kafka:\n  brokers: [127.0.0.1:1]\n  dial_timeout: 1s\nclickhouse:\n  addr: [%s]\n  database: %s\naudit:\n  cluster_id: c1\n",
		strings.Join(testenv.ClickHouseAddr(t), ", "), db))
	code, stderr := runMain(t, nil, "audit", "verify", "--kafka", "--config", down)
	assert.Equal(t, 1, code)
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %q", stderr)
	assert.Contains(t, stderr, "weft: --kafka: kafka unreachable: brokers 127.0.0.1:1 did not answer within 1s")

	code, stderr = runMain(t, nil, "audit", "verify", "--since", "yesterday", "--config", cfg)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `--since "yesterday"`)
}
