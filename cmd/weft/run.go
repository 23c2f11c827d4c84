package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
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
	"github.com/weft-sh/weft/queuehealth"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the tap, the stuck-order detector and the HTTP API",
		Long: `run consumes every commerce topic of the configured Kafka cluster into
ClickHouse (it never produces to that cluster), runs the detector on an
interval, and serves /metrics, /healthz, /readyz and the JSON API.`,
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

// runWeft is `weft run`: it returns when ctx ends (nil) or start-up fails.
// started, when non-nil, is closed once everything serves.
func runWeft(ctx context.Context, cfg Config, log zerolog.Logger, started chan<- struct{}) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store, err := chstore.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("clickhouse schema: %w", err)
	}
	col, err := collector.New(cfg.Collector.Config, cfg.Kafka, store, collector.Settings{Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	if err := col.Start(ctx); err != nil {
		return err
	}
	lag, err := queuehealth.New(cfg.Collector.Lag, cfg.Collector.tapped(), cfg.Kafka, store, queuehealth.Settings{Logger: log, Registerer: reg})
	if err == nil {
		err = lag.Start(ctx)
	}
	if err != nil {
		_ = col.Shutdown(ctx)
		return err
	}
	engine := consistency.NewEngine(store, cfg.Consistency.AllWorkflows())
	det := consistency.NewDetector(engine, cfg.Consistency.Interval, cfg.Consistency.Windows, consistency.Settings{Logger: log, Registerer: reg, Settle: cfg.Consistency.Settle,
		Behind: col.Behind, BacklogInterval: cfg.Consistency.BacklogInterval})

	var srv *http.Server
	if cfg.HTTP.Listen != "" {
		srv, err = serveHTTP(cfg.HTTP.Listen, newAPI(engine, store, col, reg, log, cfg.HTTP.Pprof))
		if err != nil {
			_ = col.Shutdown(ctx)
			_ = lag.Shutdown(ctx)
			return err
		}
	}
	log.Info().Str("http", cfg.HTTP.Listen).Strs("brokers", cfg.Kafka.Brokers).Strs("clickhouse", cfg.ClickHouse.Addr).
		Str("database", cfg.ClickHouse.Database).Msg("weft running")
	if started != nil {
		close(started)
	}

	var wg sync.WaitGroup
	wg.Add(2)
	runErr := make(chan error, 1)
	go func() { defer wg.Done(); runErr <- col.Run(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); _ = lag.Run(ctx) }()
	go func() { defer wg.Done(); det.Run(ctx) }()
	<-ctx.Done()

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if srv != nil {
		_ = srv.Shutdown(shutdownCtx)
	}
	_ = col.Shutdown(shutdownCtx)
	_ = lag.Shutdown(shutdownCtx)
	wg.Wait()
	st := col.Stats()
	log.Info().Int64("consumed", st.Consumed).Int64("stored", st.Stored).Int64("quarantined", st.Quarantined).Msg("weft stopped")
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
