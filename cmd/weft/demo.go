package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/kafkaconn"
)

// newDemoCmd is `weft demo`: it produces realistic BOPIS traffic with an
// exact manifest of injected faults, for trying weft out and for
// end-to-end tests.
func newDemoCmd() *cobra.Command {
	cfg := demo.DefaultConfig()
	var (
		brokers      []string
		manifestPath string
		partitions   int32
		faults       map[string]string
		logLevel     string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Produce demo commerce traffic with known faults to Kafka",
		Long: `demo creates the commerce topics if missing, produces a history of BOPIS
orders spread over the --history window ending now (some stuck, lost,
duplicated, out of order, racing, with failed payments, orphaned,
violating causality, conflicting duplicates, missing a compensation, or
diverging), then keeps producing live orders at --live-rate until
interrupted (Ctrl-C).

The manifest (every order and every injected fault, as JSON) goes to
--manifest, written after the history and again when live mode stops, or
to stdout at the end when --manifest is not given. A one-line summary of
the faults per kind is printed too.

Faults: --fault KIND=N (an integer is an exact count, a decimal a fraction
of --orders), repeatable or comma-separated; kinds: stuck, lost, duplicate,
out_of_order, race, payment_failed, orphan, causality_violation,
conflicting_duplicate, missing_compensation, divergence, cancel_race (the
customer cancels as the store hands over; none by default). Unnamed kinds
keep their defaults.

Uneven traffic: --in-band moves the contract fields of half the events off
the contract headers into CloudEvents attributes, ce_* headers or JSON
members; --sparse SERVICE,… makes those services publish plain JSON with
only event id, type, order id and time; --personal-data keys a fifth of the
orders by the customer's e-mail, adds CVVs, e-mails and cards to payloads,
headers and header names, and ten undecodable records, for trying masking.

Consumers (--consumers, on by default): while live traffic flows, the
shop's services consume their upstream topics in their own consumer groups
(--group-prefix + service + "-svc": orders-svc, inventory-svc, payments-svc,
fulfillment-svc, notifications-svc, pickup-svc) and commit what they read,
so ` + "`weft lag`" + ` shows application lag. They start at the end of the topics
(a group that committed before resumes). --lagging names the service that
falls behind, reading --lagging-rate records per second (below --live-rate;
when not given and --live-rate is lower, half of --live-rate); --stopping
names the service that leaves its group for good after --stop-after. The
manifest lists the groups and which one lags and which one stopped. They
produce nothing, and do not run with --live-rate 0. --consumers=false
creates no group.`,
		Example: `  weft demo --brokers 127.0.0.1:9092 --orders 200 --seed 7 --manifest demo.json
  weft demo --live-rate 0 --fault stuck=11,race=0.05 --topic-prefix shop.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Now = time.Now().UTC().Truncate(time.Millisecond)
			if !cmd.Flags().Changed("lagging-rate") && cfg.Live.Rate > 0 && cfg.Consumers.LaggingRate >= cfg.Live.Rate {
				cfg.Consumers.LaggingRate = cfg.Live.Rate / 2 // slow live traffic: the lagging service reads slower still
			}
			if err := applyFaultFlags(&cfg.Faults, faults); err != nil {
				return usageError{err}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			kc := kafkaconn.Default()
			kc.Brokers, kc.ClientID = brokers, "weft-demo"
			if err := kc.Validate(); err != nil {
				return usageError{err}
			}
			lvl, err := zerolog.ParseLevel(logLevel)
			if err != nil {
				return usageError{fmt.Errorf("--log-level: %w", err)}
			}
			log := newLogger(LogConfig{Level: lvl.String(), Format: "auto"})
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, cfg, kc, partitions, manifestPath, cmd.OutOrStdout(), cmd.ErrOrStderr(), log)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&brokers, "brokers", kafkaconn.Default().Brokers, "Kafka bootstrap brokers (host:port)")
	f.IntVar(&cfg.Orders, "orders", cfg.Orders, "history orders")
	f.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed: the same seed (and start time) gives the same run")
	f.DurationVar(&cfg.History, "history", cfg.History, fmt.Sprintf("history window ending now (at least %s)", demo.MinHistory()))
	f.Float64Var(&cfg.Live.Rate, "live-rate", cfg.Live.Rate, "live orders per second after the history; 0 stops after the history")
	f.DurationVar(&cfg.Live.StepDelayMin, "step-delay-min", cfg.Live.StepDelayMin, "shortest delay between a live order's steps")
	f.DurationVar(&cfg.Live.StepDelayMax, "step-delay-max", cfg.Live.StepDelayMax, "longest delay between a live order's steps")
	f.IntVar(&cfg.Live.MaxOrders, "live-orders", 0, "stop after this many live orders (0: until interrupted)")
	f.StringToStringVar(&faults, "fault", nil, "fault share KIND=N: integer count or fraction of --orders (repeatable)")
	f.BoolVar(&cfg.Encoding.InBand, "in-band", false, "carry half the events' contract fields in band instead of in contract headers")
	f.StringSliceVar(&cfg.Encoding.Sparse, "sparse", nil, "services whose events carry only event id, type, order id and time")
	f.BoolFunc("personal-data", "put personal data where masking must find it (keys, headers, undecodable records)", func(string) error {
		cfg.PersonalData = demo.PersonalData{KeyedByEmail: 0.2, Payloads: true, Headers: true, Undecodable: 10}
		return nil
	})
	f.StringVar(&cfg.Topics.Prefix, "topic-prefix", "", "prefix of every topic name")
	f.StringVar(&cfg.Topics.Suffix, "topic-suffix", "", "suffix of every topic name")
	f.Int32Var(&partitions, "partitions", 3, "partitions of topics created (payments.dlq gets 1)")
	f.BoolVar(&cfg.Consumers.Enabled, "consumers", cfg.Consumers.Enabled, "run the shop's services as consumer groups while live traffic flows")
	f.StringVar(&cfg.Consumers.GroupPrefix, "group-prefix", cfg.Consumers.GroupPrefix, "prefix of every consumer group name")
	f.StringVar(&cfg.Consumers.Lagging, "lagging", cfg.Consumers.Lagging, "the service that falls behind (\"\": none)")
	f.Float64Var(&cfg.Consumers.LaggingRate, "lagging-rate", cfg.Consumers.LaggingRate, "records per second the lagging service reads")
	f.StringVar(&cfg.Consumers.Stopping, "stopping", cfg.Consumers.Stopping, "the service that stops consuming (\"\": none)")
	f.DurationVar(&cfg.Consumers.StopAfter, "stop-after", cfg.Consumers.StopAfter, "how long the stopping service consumes before it leaves its group")
	f.StringVar(&manifestPath, "manifest", "", "write the manifest JSON to this file (default: stdout, at the end)")
	f.StringVar(&logLevel, "log-level", "info", "trace, debug, info, warn or error")
	return cmd
}

// applyFaultFlags sets the shares named by --fault.
func applyFaultFlags(mix *demo.FaultMix, flags map[string]string) error {
	for k, v := range flags {
		kind, ok := demo.ParseKind(k)
		if !ok {
			return fmt.Errorf("--fault %s: unknown kind (want one of %s)", k, kindList())
		}
		if n, err := strconv.Atoi(v); err == nil {
			mix.Set(kind, demo.FaultShare{Count: n})
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("--fault %s=%s: want an integer count or a fraction", k, v)
		}
		mix.Set(kind, demo.FaultShare{Fraction: x})
	}
	return nil
}

// kindList is the fault kinds, comma-separated.
func kindList() string {
	var names []string
	for _, k := range demo.Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// runDemo creates the topics, produces the history, then live traffic
// until ctx ends, writing the manifest and a summary.
func runDemo(ctx context.Context, cfg demo.Config, kc kafkaconn.Config, partitions int32,
	manifestPath string, stdout, stderr io.Writer, log zerolog.Logger) error {
	opts, err := kc.Opts(log)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	if err := kafkaconn.Ping(ctx, cl, kc.Brokers, kc.DialTimeout); err != nil {
		return err
	}
	g, err := demo.New(cfg, cl, log)
	if err != nil {
		return err
	}
	if err := g.EnsureTopics(ctx, kadm.NewClient(cl), partitions); err != nil {
		return err
	}
	// The summary goes to stdout unless the manifest itself does.
	summaryOut := stdout
	if manifestPath == "" {
		summaryOut = stderr
	}
	m, err := g.RunHistory(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(summaryOut, "history: "+m.Summary())
	live := cfg.Live.Rate > 0 && ctx.Err() == nil
	if live && cfg.Consumers.Enabled {
		stop, err := startDemoConsumers(ctx, cfg, opts, log)
		if err != nil {
			return err
		}
		defer stop()
		m.Consumers = cfg.ConsumerGroups()
	}
	if manifestPath != "" {
		if err := writeManifest(manifestPath, m); err != nil {
			return err
		}
	}
	if live {
		log.Info().Float64("rate", cfg.Live.Rate).Msg("live mode: producing until interrupted")
		live, err := g.RunLive(ctx, func(f demo.Fault) {
			log.Info().Str("kind", string(f.Kind)).Str("order", f.OrderID).Str("step", f.Step).
				Str("event_type", f.EventType).Msg("fault injected")
		})
		if live != nil {
			fmt.Fprintln(summaryOut, "live: "+live.Summary())
			m.Merge(live)
		}
		if err != nil {
			return err
		}
	}
	if manifestPath != "" {
		return writeManifest(manifestPath, m)
	}
	return m.WriteJSON(stdout)
}

// startDemoConsumers starts the services' consumer groups (demo.Consumers)
// and runs them until the returned stop is called.
func startDemoConsumers(ctx context.Context, cfg demo.Config, opts []kgo.Opt, log zerolog.Logger) (stop func(), err error) {
	cons, err := demo.NewConsumers(cfg, opts, log)
	if err != nil {
		return nil, err
	}
	if err := cons.Start(ctx); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cons.Run(rctx) }()
	return func() {
		cancel()
		<-done
		_ = cons.Shutdown(context.WithoutCancel(ctx)) // it only closes its clients
	}, nil
}

// writeManifest replaces path with the manifest, atomically.
func writeManifest(path string, m *demo.Manifest) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".manifest-*.json")
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("manifest: %w", err)
	}
	if err := m.WriteJSON(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("manifest: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}
