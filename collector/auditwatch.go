package collector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
)

// AuditWatch is `weft run`'s scheduled verification (audit.verify): every
// Every it runs what `weft audit verify --since <Window>` runs over what
// was stored lately, logs the verdict, records it as an operator action
// and exports it as metrics an alert can be written on
// (docs/audit.md, "Verifying on a schedule"; docs/runbook.md).
type AuditWatch struct {
	store   *chstore.Store
	opts    AuditVerify
	every   time.Duration
	window  time.Duration
	actions *ActionLog
	actor   string
	origin  string
	clock   clockwork.Clock
	log     zerolog.Logger
	m       auditWatchMetrics
}

// AuditWatchSettings are what an AuditWatch uses besides its schedule.
type AuditWatchSettings struct {
	Logger     zerolog.Logger
	Registerer prometheus.Registerer // nil registers nothing
	Clock      clockwork.Clock       // nil: the real clock
	// Actions, when set, records each run as an operator action by Actor
	// from Origin.
	Actions       *ActionLog
	Actor, Origin string
}

type auditWatchMetrics struct {
	runs         *prometheus.CounterVec
	findings     prometheus.Gauge
	lastRun      prometheus.Gauge
	lastVerified prometheus.Gauge
	duration     prometheus.Gauge
}

// Verdicts of a verify run, as `weft audit verify` prints them.
const (
	VerdictVerified   = "verified"
	VerdictTampered   = "tampered"
	VerdictUnverified = "unverified"
)

// NewAuditWatch verifies with opts (its Since is set on each run) every
// every, what was stored in the last window.
func NewAuditWatch(store *chstore.Store, opts AuditVerify, every, window time.Duration, set AuditWatchSettings) *AuditWatch {
	if set.Clock == nil {
		set.Clock = clockwork.NewRealClock()
	}
	w := &AuditWatch{store: store, opts: opts, every: every, window: window, actions: set.Actions,
		actor: set.Actor, origin: set.Origin, clock: set.Clock,
		log: set.Logger.With().Str("component", "audit verify").Logger()}
	w.m = auditWatchMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "audit_verify", Name: "runs_total",
			Help: "Scheduled audit verifications (audit.verify) by verdict: verified, tampered (findings), unverified (it could not verify).",
		}, []string{"verdict"}),
		findings: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "weft", Subsystem: "audit_verify", Name: "findings",
			Help: "Findings of the last scheduled audit verification that could verify: tampering or loss it found (0: none).",
		}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "weft", Subsystem: "audit_verify", Name: "last_run_timestamp_seconds",
			Help: "When the last scheduled audit verification ended (Unix time; 0: none yet).",
		}),
		lastVerified: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "weft", Subsystem: "audit_verify", Name: "last_verified_timestamp_seconds",
			Help: "When a scheduled audit verification last ended with every log verified (Unix time; the process's start until then).",
		}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "weft", Subsystem: "audit_verify", Name: "duration_seconds",
			Help: "How long the last scheduled audit verification took.",
		}),
	}
	for _, v := range []string{VerdictVerified, VerdictTampered, VerdictUnverified} {
		w.m.runs.WithLabelValues(v)
	}
	w.m.lastVerified.Set(unixSeconds(w.clock.Now()))
	if set.Registerer != nil {
		set.Registerer.MustRegister(w.m.runs, w.m.findings, w.m.lastRun, w.m.lastVerified, w.m.duration)
	}
	return w
}

// Start does nothing: the store was opened and checked by the caller.
func (w *AuditWatch) Start(context.Context) error { return nil }

// Shutdown does nothing.
func (w *AuditWatch) Shutdown(context.Context) error { return nil }

// firstVerify is how soon after the start the first run comes when Every
// is longer: a restarted weft says early whether the trail holds.
const firstVerify = time.Minute

// Run verifies on the schedule until ctx ends. A run that fails is logged
// and counted; the next one comes on time.
func (w *AuditWatch) Run(ctx context.Context) error {
	next := min(w.every, firstVerify)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.clock.After(next):
		}
		_, _ = w.Once(ctx)
		next = w.every
	}
}

// Once runs one verification of what was stored in the last window, and
// returns its verdict and report.
func (w *AuditWatch) Once(ctx context.Context) (string, AuditVerifyReport) {
	start := w.clock.Now()
	opts := w.opts
	opts.Since = start.Add(-w.window)
	rep, err := VerifyAudit(ctx, w.store, opts)
	if ctx.Err() != nil {
		return VerdictUnverified, rep // stopping: not a verdict
	}
	end := w.clock.Now()
	verdict := VerdictVerified
	switch {
	case errors.Is(err, ErrNothingToVerify):
		err = nil // nothing stored: nothing lost
	case err != nil:
		verdict = VerdictUnverified
	case len(rep.Findings) > 0:
		verdict = VerdictTampered
	}
	var leaves uint64
	for _, l := range rep.Logs {
		leaves += l.Leaves
	}
	var detail string
	switch verdict {
	case VerdictVerified:
		detail = fmt.Sprintf("verified %d logs, %d leaves since %s", len(rep.Logs), leaves, opts.Since.UTC().Format(time.RFC3339))
		w.log.Info().Int("logs", len(rep.Logs)).Uint64("leaves", leaves).Time("since", opts.Since).
			Dur("took", end.Sub(start)).Msg("audit trail verified")
	case VerdictTampered:
		var first []string
		for _, f := range rep.Findings[:min(3, len(rep.Findings))] {
			first = append(first, f.String())
		}
		detail = fmt.Sprintf("%d findings since %s: %s", len(rep.Findings), opts.Since.UTC().Format(time.RFC3339), strings.Join(first, "; "))
		w.log.Error().Int("findings", len(rep.Findings)).Strs("first", first).Time("since", opts.Since).
			Msg("audit trail NOT verified: tampering or loss found; run `weft audit verify` for the whole report")
	default:
		detail = err.Error()
		w.log.Warn().Err(err).Msg("audit trail could not be verified; trying again on schedule")
	}
	// The run is an operator action before its metrics move: a scrape that
	// sees the verdict finds the action in the log.
	if w.actions != nil {
		outcome := auditor.OutcomeSuccess
		if verdict != VerdictVerified {
			outcome = auditor.OutcomeFailure
		}
		a := auditor.Action{Actor: w.actor, Origin: w.origin, Verb: "verify", Resource: "logs",
			Outcome: outcome, Detail: verdict + ": " + detail}
		if _, err := w.actions.Record(ctx, a, ""); err != nil && ctx.Err() == nil {
			w.log.Warn().Err(err).Msg("scheduled audit verification not in the operator-actions log")
		}
	}
	switch verdict {
	case VerdictVerified:
		w.m.findings.Set(0)
		w.m.lastVerified.Set(unixSeconds(end))
	case VerdictTampered:
		w.m.findings.Set(float64(len(rep.Findings)))
	}
	w.m.runs.WithLabelValues(verdict).Inc()
	w.m.lastRun.Set(unixSeconds(end))
	w.m.duration.Set(end.Sub(start).Seconds())
	return verdict, rep
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1e3 }
