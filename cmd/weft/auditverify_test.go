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
	state, err := log.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, store.InsertAuditLeaves(ctx, []chstore.AuditLeafRow{{Topic: topic, LeafIndex: 0, Kind: "gap", Offset: 0, End: 5,
		Leaf: lb, LeafHash: auditor.LeafHash(lb), State: state}}, time.Now(), "t1"))
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
