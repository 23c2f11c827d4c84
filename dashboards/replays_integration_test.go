package dashboards

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/replay"
)

// checkReplays redrives part of the demo's dead-letter topic with weft's
// replay (the real broker, a real job and its cursor), leaves a second
// job planned, and compares the replay dashboard before and after: the
// jobs by state, the records replayed to the payments topic, the jobs
// table, and the dead letters waiting, down by what was redriven. The tap
// has stopped, so the redriven records are not stored again.
func (l *loaded) checkReplays(t *testing.T, d Dashboard, before map[string]panelRun) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dlq, payments := l.topics.Name(demo.TopicPaymentsDLQ), l.topics.Name(demo.TopicPayments)
	waitingBefore := numberAt(before["Dead letters waiting"]["A"])
	require.Positive(t, waitingBefore, "the demo dead-letters payments")
	assert.Positive(t, numberAt(before["Oldest dead letter waiting"]["A"]))
	assert.Zero(t, numberAt(before["Jobs running"]["A"]))
	assert.Empty(t, before["Jobs"]["A"].rows, "no job yet")
	topicsBefore := before["Dead-letter topics"]["A"]
	assert.Equal(t, []string{dlq}, topicsBefore.values("topic"))
	assert.Equal(t, []string{"0"}, topicsBefore.values("redriven"))

	kc := kafkaconn.Default()
	kc.Brokers = l.brokers
	opts, err := kc.Opts(zerolog.Nop())
	require.NoError(t, err)
	cfg := replay.Default()
	cfg.Enabled, cfg.Allow, cfg.Rate = true, []string{regexp.QuoteMeta(payments)}, 0
	r, err := replay.New(cfg, replay.Settings{Store: l.store, Kafka: opts, Brokers: l.brokers, Operator: "oncall", Origin: "test"})
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	defer r.Shutdown(ctx) //nolint:errcheck // closes clients only
	const redriven = 3
	plan, err := r.PlanRedrive(ctx, replay.RedriveRequest{Topic: dlq, Limit: redriven})
	require.NoError(t, err)
	require.NoError(t, r.Check(ctx, plan))
	require.Equal(t, map[string]int{payments: redriven}, plan.PerTopic(), "back to where they failed, by their header")
	j, err := r.Create(ctx, plan, 0)
	require.NoError(t, err)
	j, err = r.Run(ctx, j.ID, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(redriven), j.Produced)
	all, err := r.PlanRedrive(ctx, replay.RedriveRequest{Topic: dlq})
	require.NoError(t, err)
	planned, err := r.Create(ctx, all, 0)
	require.NoError(t, err)

	after := l.runDashboard(t, d.Model, "")
	states := after["Jobs by state"]["A"]
	assert.Equal(t, []string{replay.StatusFinished, replay.StatusPlanned}, states.values("status"))
	assert.Equal(t, []string{"1", "1"}, states.values("jobs"))
	assert.Equal(t, float64(redriven), numberAt(after["Records replayed"]["A"]))
	perTopic := after["Records replayed per topic"]["A"]
	assert.Equal(t, []string{payments}, perTopic.values("topic"), "only the finished job produced, to the payments topic")
	assert.Equal(t, []string{fmt.Sprint(redriven)}, perTopic.values("records"))
	jobs := after["Jobs"]["A"]
	assert.ElementsMatch(t, []string{j.ID, planned.ID}, jobs.values("job_id"))
	assert.ElementsMatch(t, []string{"oncall", "oncall"}, jobs.values("actor"))

	assert.Equal(t, waitingBefore-redriven, numberAt(after["Dead letters waiting"]["A"]), "the redriven records no longer wait")
	topics := after["Dead-letter topics"]["A"]
	assert.Equal(t, []string{fmt.Sprint(redriven)}, topics.values("redriven"))
	assert.Equal(t, []string{fmt.Sprint(int(waitingBefore) - redriven)}, topics.values("waiting"))
	assert.Equal(t, topicsBefore.values("stored"), topics.values("stored"))
	series := map[string]float64{}
	flow := after["Dead letters and redrives"]["A"]
	for i, s := range flow.values("series") {
		var v float64
		_, _ = fmt.Sscan(fmt.Sprint(flow.rows[i][flow.col("records")]), &v)
		series[s] += v
	}
	assert.Equal(t, float64(redriven), series[dlq+" redriven"])
	assert.Equal(t, waitingBefore, series[dlq+" dead-lettered"])
}
