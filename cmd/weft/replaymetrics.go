package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/replay"
)

// Replay metrics for alerting (docs/replay.md, "Metrics"; the
// WeftReplayJobFailed rule in alerts/).

// replayJobsEvery is how often weft run counts the replay jobs by state.
const replayJobsEvery = 30 * time.Second

// replayJobStates is a component of weft run: it sets weft_replay_jobs
// from replay_jobs on a timer. The labels are the five states, never job
// ids: the table is shared, so every weft run reports the same counts.
type replayJobStates struct {
	store *chstore.Store
	log   zerolog.Logger
	every time.Duration
	jobs  *prometheus.GaugeVec
}

func newReplayJobStates(store *chstore.Store, reg prometheus.Registerer, log zerolog.Logger) *replayJobStates {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_replay_jobs",
		Help: "Replay and redrive jobs by state (planned, running, finished, cancelled, failed), as stored in ClickHouse, counted every 30s."},
		[]string{"state"})
	reg.MustRegister(g)
	return &replayJobStates{store: store, log: log.With().Str("component", "replay metrics").Logger(), every: replayJobsEvery, jobs: g}
}

func (s *replayJobStates) Start(ctx context.Context) error { return nil }

// Run counts at once, then every s.every until ctx ends. A failed count
// leaves the last values and is logged.
func (s *replayJobStates) Run(ctx context.Context) error {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("replay jobs not counted")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *replayJobStates) Shutdown(context.Context) error { return nil }

// refresh sets the gauge from replay_jobs; a state with no job is 0, so
// every state always has a series.
func (s *replayJobStates) refresh(ctx context.Context) error {
	n, err := s.store.ReplayJobStates(ctx)
	if err != nil {
		return err
	}
	for _, st := range replay.States {
		s.jobs.WithLabelValues(st).Set(float64(n[st]))
	}
	return nil
}

// replayRecords counts the records of the jobs weft run's API runs, by
// target topic (bounded by replay.allow) and outcome: produced, or gone
// from Kafka (skipped).
type replayRecords struct{ c *prometheus.CounterVec }

func newReplayRecords() replayRecords {
	return replayRecords{prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_replay_records_total",
		Help: "Records of replay jobs run by weft run's HTTP API, by target topic and outcome (produced: committed in Kafka; gone: skipped, no longer in Kafka)."},
		[]string{"topic", "outcome"})}
}

// committed is a Replayer's Settings.Committed.
func (m replayRecords) committed(produced, gone map[string]int) {
	for t, n := range produced {
		m.c.WithLabelValues(t, "produced").Add(float64(n))
	}
	for t, n := range gone {
		m.c.WithLabelValues(t, "gone").Add(float64(n))
	}
}
