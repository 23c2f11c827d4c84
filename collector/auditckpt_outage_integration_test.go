package collector

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
)

// countingLog counts the lines of a logger that contain a string.
type countingLog struct {
	mu    sync.Mutex
	match string
	n     int
}

func (c *countingLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += strings.Count(string(p), c.match)
	return len(p), nil
}

func (c *countingLog) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestAuditCheckpointStoredAfterClickHouseRefusedIt: ClickHouse refuses
// the checkpoint inserts (here the table is away; in life the server died)
// while the log grows. A checkpoint already in the sink is stored once
// ClickHouse takes inserts again, before any newer one: verify finds no
// sink checkpoint missing from ClickHouse. (Signing a newer checkpoint
// instead left the sink's older one out of ClickHouse for good, which
// verify reports as a deleted checkpoint.)
func TestAuditCheckpointStoredAfterClickHouseRefusedIt(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	conn := testenv.Conn(t)
	topic := "orders.ckptout_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produce := orderOneProducer(ctx, t, brokers, topic)
	var stored uint64
	leaves := func() uint64 {
		require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+store.Table("audit_leaves")+" WHERE topic = ?", topic).Scan(&stored))
		return stored
	}
	table, away := store.Table("audit_checkpoints"), store.Table("audit_checkpoints_away")

	audit, verifier := testAudit(t)
	audit.Every = time.Second // a pass per tick while checkpoints are due
	refused := &countingLog{match: "audit checkpoint not stored"}
	cfg := Default()
	cfg.Group = "g_" + testenv.Name(t)
	cfg.Topics.Include = []string{regexp.QuoteMeta(topic)}
	cfg.Batch.FlushInterval = 100 * time.Millisecond
	cfg.Topics.RefreshInterval = time.Second
	kc := kafkaconn.Default()
	kc.Brokers = brokers
	c, err := New(cfg, kc, store, Settings{Logger: zerolog.New(refused), Audit: &audit})
	require.NoError(t, err)
	runCtx, stopRun := context.WithCancel(context.Background())
	require.NoError(t, c.Start(runCtx))
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(runCtx) }()
	t.Cleanup(func() { stopRun(); <-done; _ = c.Shutdown(context.Background()) })

	lastSize := func() uint64 {
		row, _, err := store.LastCheckpoint(ctx, auditor.LogOrigin(audit.ClusterID, topic, 0))
		require.NoError(t, err)
		return row.Size
	}
	// The log is loaded (from the checkpoints) and checkpointed once
	// before ClickHouse refuses.
	produce(0, 1)
	require.Eventually(t, func() bool { return lastSize() == 1 }, time.Minute, 50*time.Millisecond)
	require.NoError(t, conn.Exec(ctx, "RENAME TABLE "+table+" TO "+away))
	produce(1, 10)
	require.Eventually(t, func() bool { return leaves() == 10 && refused.count() > 0 }, time.Minute, 50*time.Millisecond,
		"the first checkpoint refused (%d leaves)", stored)
	produce(10, 15)
	require.Eventually(t, func() bool { return leaves() == 15 }, time.Minute, 50*time.Millisecond)
	// A pass after the log grew, refused too.
	after := refused.count()
	require.Eventually(t, func() bool { return refused.count() > after }, time.Minute, 50*time.Millisecond)
	require.NoError(t, conn.Exec(ctx, "RENAME TABLE "+away+" TO "+table))

	require.Eventually(t, func() bool { return lastSize() == 15 }, time.Minute, 50*time.Millisecond, "the grown log checkpointed once ClickHouse takes inserts")
	rep, err := VerifyAudit(ctx, store, AuditVerify{ClusterID: audit.ClusterID, Topic: topic, Verifier: verifier, CheckpointDir: audit.Dir})
	require.NoError(t, err)
	assert.Empty(t, rep.Findings, "every checkpoint in the sink is in ClickHouse")
}

// TestAuditCheckpointInTheSinkOnlyIsStoredOnRestart: a tap killed between
// writing a checkpoint to the sink and inserting it into ClickHouse (here:
// the newest stored checkpoint deleted after a clean stop, which leaves
// the same state) left one that verify reports as missing. The next tap to
// open the log stores it, because its root is that of the state stored on
// its last leaf; a forged checkpoint in the sink, of a size the log never
// had, is not stored and verify still reports it.
func TestAuditCheckpointInTheSinkOnlyIsStoredOnRestart(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "orders.ckptsink_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produceOrders(ctx, t, brokers, topic, 0, 20)

	audit, verifier := testAudit(t)
	audit.EveryLeaves = 1000 // one checkpoint, when the tap stops
	pattern, group := regexp.QuoteMeta(topic), "g_"+testenv.Name(t)
	c, stop := auditTap(t, brokers, store, audit, group, pattern, 50)
	waitStored(t, c, 20)
	stop()
	origin := auditor.LogOrigin(audit.ClusterID, topic, 0)
	cps, err := store.Checkpoints(ctx, origin)
	require.NoError(t, err)
	require.Equal(t, uint64(20), cps[len(cps)-1].Size)
	testenv.Mutate(t, "ALTER TABLE "+store.Table("audit_checkpoints")+" DELETE WHERE origin = ? AND size = 20", origin)
	forged, err := audit.Signer.Sign(auditor.Checkpoint{Origin: origin, Size: 100, Root: auditor.Hash{1}})
	require.NoError(t, err)
	require.NoError(t, appendCheckpoint(audit.Dir, forged))

	verify := func() []string {
		rep, err := VerifyAudit(ctx, store, AuditVerify{ClusterID: audit.ClusterID, Topic: topic, Verifier: verifier, CheckpointDir: audit.Dir})
		require.NoError(t, err)
		var out []string
		for _, f := range rep.Findings {
			out = append(out, fmt.Sprintf("%s %d", f.Kind, f.Size))
		}
		return out
	}
	before := verify()
	require.Contains(t, before, FindingMissingCkpt+" 20", "the crash's state: the sink's checkpoint of 20 leaves is not stored")

	_, done, stopRun := runAuditTap(t, brokers, store, audit, group, pattern)
	produceOrders(ctx, t, brokers, topic, 20, 1) // the log opens when a record of it arrives
	require.Eventually(t, func() bool { return countLeaves(t, store, topic, 0) == 21 }, time.Minute, 50*time.Millisecond)
	stopRun()
	require.NoError(t, <-done)

	cps, err = store.Checkpoints(ctx, origin)
	require.NoError(t, err)
	var sizes []uint64
	for _, c := range cps {
		sizes = append(sizes, c.Size)
	}
	assert.Contains(t, sizes, uint64(20), "the sink's checkpoint of 20 leaves stored on restart")
	for _, c := range cps {
		assert.NotEqual(t, auditor.Hash{1}, auditor.Hash(c.Root), "the forged checkpoint is not stored")
	}
	after := verify()
	assert.NotContains(t, after, FindingMissingCkpt+" 20")
	assert.NotEmpty(t, after, "the forged checkpoint is still reported")
	t.Logf("verify before the restart: %v; after: %v", before, after)
}
