package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/component"
	"github.com/weft-sh/weft/internal/httpserver"
	"github.com/weft-sh/weft/internal/leader"
	"github.com/weft-sh/weft/notify"
	"github.com/weft-sh/weft/queuehealth"
	"github.com/weft-sh/weft/tracing"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the tap, the stuck-order detector and the HTTP API",
		Long: `run consumes every commerce topic of the configured Kafka cluster into
ClickHouse (it never produces to that cluster), runs the detector on an
interval, and serves /metrics, /healthz, /readyz and the JSON API.

Every /api/ route needs a bearer token or an OIDC JWT with a role
(http.auth; make a token with ` + "`weft auth token`" + `), and http.tls serves
HTTPS: docs/security.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := newLogger(cfg.Log)
			// Process-wide, so here and not in runWeft: `weft dev` shares
			// its process with the in-memory Kafka.
			applyMemoryLimit(cfg.Runtime, log)
			return runWeft(ctx, cfg, log, nil)
		},
	}
}

func newLogger(c LogConfig) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	var l zerolog.Logger
	if c.Format == "console" || c.Format == "auto" && isatty.IsTerminal(os.Stderr.Fd()) {
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly})
	} else {
		l = zerolog.New(os.Stderr)
	}
	return l.Level(lvl).With().Timestamp().Logger()
}

// runWeft is `weft run`: it returns when ctx ends (nil), start-up fails, or
// a component fails for good. started, when non-nil, is closed once
// everything serves.
//
// Every long-running part is a component.Component, run by one Runner
// (docs/architecture.md): a fatal error in one stops the others, and a
// graceful stop lets the tap store and commit what it buffered.
func runWeft(ctx context.Context, cfg Config, log zerolog.Logger, started chan<- struct{}) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store, err := chstore.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := prepareSchema(ctx, store, cfg.ClickHouse); err != nil {
		return err
	}
	audit, err := tapAudit(cfg.Audit)
	if err != nil {
		return err
	}
	var actions *collector.ActionLog
	if audit != nil {
		actions = collector.NewActionLog(*audit, store)
	}
	col, err := collector.New(tapConfig(cfg.Collector.Config, os.Getenv), cfg.Kafka, store, collector.Settings{Logger: log, Registerer: reg, Audit: audit})
	if err != nil {
		return err
	}
	lag, err := queuehealth.New(cfg.Collector.Lag, cfg.Collector.tapped(), cfg.Kafka, store, queuehealth.Settings{Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	engine, err := newEngine(cfg, store)
	if err != nil {
		return err
	}
	notifier, err := notify.New(cfg.Alerts, notify.Settings{Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	var tr *tracing.Tracer
	if cfg.Tracing.Enabled {
		tr, err = tracing.New(cfg.Tracing, store, engine, tracing.Settings{Logger: log, Registerer: reg, Group: cfg.Collector.Group,
			Settle: cfg.Consistency.Settle, StoringSince: col.StoringSince, Behind: col.Behind})
		if err != nil {
			return err
		}
	}
	var hear []func([]consistency.Finding)
	if notifier.Enabled() {
		hear = append(hear, notifier.Notify)
	}
	if tr != nil {
		hear = append(hear, tr.OnFinding)
	}
	var onFinding func([]consistency.Finding)
	if len(hear) > 0 {
		onFinding = func(fs []consistency.Finding) {
			for _, h := range hear {
				h(fs)
			}
		}
	}
	det := consistency.NewDetector(engine, cfg.Consistency.Interval, cfg.Consistency.Windows, consistency.Settings{Logger: log, Registerer: reg, Settle: cfg.Consistency.Settle,
		Behind: col.Behind, BacklogInterval: cfg.Consistency.BacklogInterval, StoringSince: col.StoringSince, OnFinding: onFinding})

	// The work that must run once for the whole cluster runs on the one
	// replica the leader group elects (docs/replicas.md); the tap runs on
	// every replica, on its share of the partitions.
	el, err := leader.New(cfg.Leader.WithGroup(cfg.Collector.Group), cfg.Kafka, leader.Settings{Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	parts := []component.Named{
		{Name: "leader", Component: el},
		{Name: "collector", Component: col},
		{Name: "queue health", Component: leader.Gate(el, lag)},
		{Name: "detector", Component: leader.Gate(el, det)},
	}
	if notifier.Enabled() {
		// Fed by the detector: only the leader's findings are sent.
		parts = append(parts, component.Named{Name: "notify", Component: leader.Gate(el, notifier)})
	}
	if audit != nil && cfg.Audit.Verify.Every > 0 {
		parts = append(parts, component.Named{Name: "audit verify", Component: leader.Gate(el, auditWatch(cfg, audit, store, actions, reg, log))})
	}
	if tr != nil {
		// A pass reads every stored event since one shared cursor: the
		// whole cluster's, not this replica's partitions.
		parts = append(parts, component.Named{Name: "tracing", Component: leader.Gate(el, tr)})
	}
	// weft_replay_jobs, counted from the shared table whether or not this
	// process runs jobs: one started by weft replay that failed alerts too.
	// Every replica (read-only, the same counts); replay jobs run where
	// they were confirmed.
	parts = append(parts, component.Named{Name: "replay metrics", Component: newReplayJobStates(store, reg, log)})
	var srv *httpserver.Server
	if cfg.HTTP.Listen != "" {
		authn, err := startAuth(ctx, cfg.HTTP.Auth, actions, reg, log)
		if err != nil {
			return err
		}
		traceID := orderTraceIDs(cfg)
		cons, err := newConsole(engine, store, actions, authn, log, traceID)
		if err != nil {
			return err
		}
		jobs := newReplayJobs(cfg, store, actions, log)
		jobs.register(reg)
		parts = append(parts, component.Named{Name: "replay jobs", Component: jobs})
		api := newAPI(engine, store, col, actions, authn, reg, log, cfg.HTTP.Pprof, cons, jobs, traceID)
		srv = httpserver.New(cfg.HTTP.Listen, api, httpserver.Settings{TLS: cfg.HTTP.TLS, Logger: log.With().Str("component", "http").Logger()})
		parts = append(parts, component.Named{Name: "http", Component: srv})
	}
	err = component.Runner{
		Components: parts,
		OnStarted: func() {
			ev := log.Info().Str("http", cfg.HTTP.Listen).Bool("https", cfg.HTTP.TLS.Enabled())
			if srv != nil {
				// The address bound, also when http.listen asked for port 0.
				ev = ev.Str("console", srv.URL()+"/")
			}
			ev.Strs("brokers", cfg.Kafka.Brokers).Strs("clickhouse", cfg.ClickHouse.Addr).
				Str("database", cfg.ClickHouse.Database).Msg("weft running")
			if started != nil {
				close(started)
			}
		},
	}.Run(ctx)
	st := col.Stats()
	log.Info().Int64("consumed", st.Consumed).Int64("stored", st.Stored).Int64("quarantined", st.Quarantined).Msg("weft stopped")
	return err
}
