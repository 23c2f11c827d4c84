package collector

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestAuditWatch: weft run's scheduled verification on its schedule (a
// fake clock: the first run a minute after the start), then a row changed
// as a DBA could: the next run says tampered, exports the findings and the
// verdicts as metrics, and records each run as an operator action.
func TestAuditWatch(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "orders.watch_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produceTx := txProducer(ctx, t, brokers, topic, "OrderPlaced", false)
	produceTx(0, []string{"w1", "w2", "w3"}, kgo.TryCommit)

	audit, verifier := testAudit(t)
	c, stop := auditTap(t, brokers, store, audit, "g_"+testenv.Name(t), regexp.QuoteMeta(topic), 0)
	waitStored(t, c, 3)
	stop()

	reg := prometheus.NewRegistry()
	clock := clockwork.NewFakeClockAt(time.Now())
	actions := NewActionLog(audit, store)
	w := NewAuditWatch(store, AuditVerify{ClusterID: audit.ClusterID, Verifier: verifier, CheckpointDir: audit.Dir},
		time.Hour, 2*time.Hour, AuditWatchSettings{Logger: zerolog.Nop(), Registerer: reg, Clock: clock,
			Actions: actions, Actor: "weft", Origin: "run test"})
	runs := func(verdict string) float64 {
		return testutil.ToFloat64(w.m.runs.WithLabelValues(verdict))
	}
	started := testutil.ToFloat64(w.m.lastVerified)
	assert.InDelta(t, float64(clock.Now().UnixMilli())/1e3, started, 0.001, "the start counts as verified until a run says otherwise")

	// On schedule: nothing before the first minute, one run at it.
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(runCtx) }()
	require.NoError(t, clock.BlockUntilContext(ctx, 1))
	clock.Advance(firstVerify - time.Second)
	assert.Zero(t, runs(VerdictVerified))
	clock.Advance(time.Second)
	require.Eventually(t, func() bool { return runs(VerdictVerified) == 1 }, time.Minute, 20*time.Millisecond)
	stopRun()
	<-done
	assert.Zero(t, testutil.ToFloat64(w.m.findings))
	assert.Zero(t, runs(VerdictTampered))
	assert.Greater(t, testutil.ToFloat64(w.m.lastVerified), started)

	// A changed row: tampered, with the finding counted.
	testenv.Mutate(t, `ALTER TABLE `+store.Table("events")+` UPDATE payload = 'tampered' WHERE topic = ? AND offset = 1`, topic)
	clock.Advance(time.Hour)
	verified := testutil.ToFloat64(w.m.lastVerified)
	verdict, rep := w.Once(ctx)
	assert.Equal(t, VerdictTampered, verdict)
	require.Len(t, rep.Findings, 1)
	assert.Equal(t, "changed", rep.Findings[0].Kind)
	assert.Equal(t, 1.0, testutil.ToFloat64(w.m.findings))
	assert.Equal(t, 1.0, runs(VerdictTampered))
	assert.Equal(t, verified, testutil.ToFloat64(w.m.lastVerified), "a tampered run is not a verified one")
	assert.InDelta(t, float64(clock.Now().UnixMilli())/1e3, testutil.ToFloat64(w.m.lastRun), 0.001)

	// Both runs are operator actions, with their verdicts.
	var verbs []string
	require.NoError(t, store.ActionRows(ctx, "", func(r chstore.ActionRow) error {
		verbs = append(verbs, r.Actor+" "+r.Verb+" "+r.Outcome+" "+strings.SplitN(r.Detail, ":", 2)[0])
		return nil
	}))
	assert.Equal(t, []string{"weft verify success verified", "weft verify failure tampered"}, verbs)
}

// TestVerifyWhileTapStores: verify runs while the tap stores a stream of
// records and checkpoints every few leaves (as weft run's schedule does):
// rows, leaves and checkpoints stored while it reads are not findings.
// Each run verifies the logs up to where they were when it listed them.
func TestVerifyWhileTapStores(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "orders.busy_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	audit, verifier := testAudit(t)
	audit.EveryLeaves = 50
	_, stop := auditTap(t, brokers, store, audit, "g_"+testenv.Name(t), regexp.QuoteMeta(topic), 100)
	defer stop()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer cl.Close()
	producing, stopProducing := context.WithCancel(ctx)
	produced := make(chan int)
	go func() {
		n := 0
		for producing.Err() == nil {
			for range 50 {
				id := fmt.Sprint("o-", n%200)
				cl.Produce(ctx, &kgo.Record{Key: []byte(id),
					Value: []byte(fmt.Sprintf(`{"event_type":"OrderPlaced","order_id":%q,"event_id":"e%d"}`, id, n))}, nil)
				n++
			}
			_ = cl.Flush(ctx)
		}
		produced <- n
	}()

	opts := AuditVerify{ClusterID: audit.ClusterID, Verifier: verifier, CheckpointDir: audit.Dir}
	var leaves []uint64
	// At least eight runs, and until the tap stored 2,000 leaves more
	// than the first run saw.
	for len(leaves) < 8 || leaves[len(leaves)-1] < leaves[0]+2000 {
		rep, err := VerifyAudit(ctx, store, opts)
		if errors.Is(err, ErrNothingToVerify) {
			continue
		}
		require.NoError(t, err)
		require.Empty(t, rep.Findings, "verify %d while the tap stores", len(leaves)+1)
		var n uint64
		for _, l := range rep.Logs {
			n += l.Leaves
		}
		leaves = append(leaves, n)
	}
	stopProducing()
	t.Logf("%d records produced; verified while storing at %v leaves", <-produced, leaves)
}
