package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
	"gopkg.in/yaml.v3"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/embedch"
)

// devOptions are the flags of `weft dev`.
type devOptions struct {
	dataDir        string
	kafkaPort      int
	chTCP, chHTTP  int
	httpListen     string
	orders         int
	liveRate       float64
	seed           int64
	detectInterval time.Duration
	consumers      bool
}

func newDevCmd(g *globalFlags) *cobra.Command {
	o := devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run weft on embedded servers with demo traffic (what `make run` does)",
		Long: `dev starts an embedded ClickHouse (fetched on first use) and an embedded Kafka
(franz-go kfake), produces demo commerce traffic with injected faults, runs
weft on them, and prints the commands to look at stuck orders. Everything
listens on 127.0.0.1. Data is kept in --data-dir; Ctrl-C stops it all.

Once the history is produced, the shop's services consume the live traffic
in their own consumer groups (inventory-svc, payments-svc, fulfillment-svc,
notifications-svc, pickup-svc, orders-svc): fulfillment-svc falls behind,
notifications-svc stops after a minute, the others keep up, so ` + "`weft lag`" + `
and the queue-health dashboard show application lag. --consumers=false
turns them off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", ".data", "where ClickHouse and Kafka keep their data between runs")
	f.IntVar(&o.kafkaPort, "kafka-port", 19092, "embedded Kafka port on 127.0.0.1")
	f.IntVar(&o.chTCP, "clickhouse-port", 19000, "embedded ClickHouse native port on 127.0.0.1")
	f.IntVar(&o.chHTTP, "clickhouse-http-port", 18123, "embedded ClickHouse HTTP port on 127.0.0.1")
	f.StringVar(&o.httpListen, "http", "127.0.0.1:8080", "weft's HTTP API and metrics")
	f.IntVar(&o.orders, "orders", 300, "demo orders in the generated history")
	f.Float64Var(&o.liveRate, "live-rate", 2, "new demo orders per second after the history (0: none)")
	f.Int64Var(&o.seed, "seed", 0, "demo seed (0: from the clock)")
	f.DurationVar(&o.detectInterval, "detect-interval", 5*time.Second, "detector interval")
	f.BoolVar(&o.consumers, "consumers", true, "run the shop's services as consumer groups of the live traffic (one falls behind, one stops)")
	return cmd
}

func runDev(ctx context.Context, o devOptions, out io.Writer) (retErr error) {
	log := newLogger(LogConfig{Level: "info", Format: "auto"})
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	lib, err := embedch.Fetch(ctx, embedch.FetchOptions{Progress: os.Stderr})
	if err != nil {
		return err
	}
	// Supervised: if the engine dies, it is restarted on the same data and
	// ports, and weft rides through as through any ClickHouse outage
	// (docs/architecture.md, "The embedded ClickHouse").
	ch, err := embedch.Supervise(ctx, embedch.SuperviseOptions{Options: embedch.Options{
		LibPath: lib, DataDir: filepath.Join(dataDir, "clickhouse"),
		TCPPort: o.chTCP, HTTPPort: o.chHTTP, Logger: log}})
	if err != nil {
		return fmt.Errorf("embedded clickhouse: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = ch.Shutdown(sctx)
	}()

	kafkaDir := filepath.Join(dataDir, "kafka")
	kf, err := kfake.NewCluster(kfake.Ports(o.kafkaPort), kfake.DataDir(kafkaDir), kfake.SeedTopics(3))
	if err != nil {
		return fmt.Errorf("embedded kafka on 127.0.0.1:%d: %w", o.kafkaPort, err)
	}
	defer kf.Close()

	cfg := DefaultConfig()
	cfg.Kafka.Brokers = kf.ListenAddrs()
	cfg.ClickHouse.Addr = []string{ch.Addr()}
	cfg.HTTP.Listen = o.httpListen
	cfg.Consistency.Interval = o.detectInterval
	cfg.Collector.Topics.RefreshInterval = 2 * time.Second
	if cfg.Collector.InstanceID, err = devInstanceID(dataDir); err != nil {
		return err
	}
	if err := devAudit(&cfg, dataDir); err != nil {
		return err
	}
	tokens, err := devTokens(&cfg, dataDir)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dataDir, "weft.yaml")
	devReplay(&cfg, demo.DefaultConfig().Topics)
	if err := devTracing(&cfg, dataDir, os.Getenv("WEFT_DEV_OTLP_ENDPOINT")); err != nil {
		return err
	}
	if err := writeDevConfig(cfgPath, cfg); err != nil {
		return err
	}

	dcfg := demo.DefaultConfig()
	dcfg.Orders = o.orders
	dcfg.Now = time.Now().UTC()
	dcfg.Seed = o.seed
	if dcfg.Seed == 0 {
		dcfg.Seed = dcfg.Now.UnixNano()
	}
	dcfg.Live.Rate = o.liveRate
	dcfg.Consumers.Enabled = o.consumers
	if o.liveRate > 0 && dcfg.Consumers.LaggingRate >= o.liveRate {
		// Slow live traffic: the lagging service reads slower still.
		dcfg.Consumers.LaggingRate = o.liveRate / 2
	}
	if err := dcfg.Validate(); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A ClickHouse that keeps dying stops everything, with its reason.
	chGaveUp := make(chan error, 1)
	go func() {
		select {
		case <-ch.Done():
			chGaveUp <- ch.Err()
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() {
		select {
		case gaveUp := <-chGaveUp:
			if gaveUp != nil {
				retErr = gaveUp
			}
		default:
		}
	}()
	started := make(chan struct{})
	runErr := make(chan error, 1)
	go func() { runErr <- runWeft(ctx, cfg, log, started) }()
	select {
	case <-started:
	case err := <-runErr:
		return err
	}

	demoErr := make(chan error, 1)
	histDone := make(chan *demo.Manifest, 1)
	go func() { demoErr <- runDevDemo(ctx, dcfg, cfg, log, histDone) }()

	select {
	case m := <-histDone:
		printDevBanner(out, cfgPath, cfg, devAddrs{kafka: kf.ListenAddrs()[0], clickhouse: ch.Addr(), clickhouseHTTP: ch.HTTPAddr(), clickhouseLog: ch.ServerLog()}, m, tokens)
	case err := <-demoErr:
		cancel()
		<-runErr
		return err
	case err := <-runErr:
		return err
	}
	err = <-runErr
	cancel()
	if derr := <-demoErr; derr != nil && !errors.Is(derr, context.Canceled) && err == nil {
		err = derr
	}
	return err
}

// runDevDemo produces the demo history, reports it, then live traffic until ctx ends.
func runDevDemo(ctx context.Context, dcfg demo.Config, cfg Config, log zerolog.Logger, histDone chan<- *demo.Manifest) error {
	opts, err := cfg.Kafka.Opts(log)
	if err != nil {
		return err
	}
	cl, err := newProducer(opts)
	if err != nil {
		return err
	}
	defer cl.Close()
	g, err := demo.New(dcfg, cl, log)
	if err != nil {
		return err
	}
	if err := g.EnsureTopics(ctx, newAdmin(cl), 3); err != nil {
		return err
	}
	m, err := g.RunHistory(ctx)
	if err != nil {
		return err
	}
	// From now on the shop's services consume the live traffic in their own
	// groups (demo.Consumers), so queue health shows application lag.
	if dcfg.Consumers.Enabled {
		stop, err := startDemoConsumers(ctx, dcfg, opts, log)
		if err != nil {
			return err
		}
		defer stop()
		m.Consumers = dcfg.ConsumerGroups()
	}
	histDone <- m
	if dcfg.Live.Rate <= 0 {
		<-ctx.Done()
		return nil
	}
	_, err = g.RunLive(ctx, func(demo.Fault) {})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// devAudit turns the audit trail on for `weft dev`, with a signing key and
// a source key generated on first use and kept in the data directory (0600),
// and checkpoint copies in dataDir/audit beside ClickHouse's data.
func devAudit(cfg *Config, dataDir string) error {
	dir := filepath.Join(dataDir, "audit")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("audit dir: %w", err)
	}
	signing, source := filepath.Join(dir, "signing.key"), filepath.Join(dir, "source.key")
	if _, err := os.Stat(signing); errors.Is(err, os.ErrNotExist) {
		skey, _, err := auditor.GenerateKey("weft-dev")
		if err != nil {
			return err
		}
		if err := os.WriteFile(signing, []byte(skey+"\n"), 0o600); err != nil {
			return fmt.Errorf("audit signing key: %w", err)
		}
	}
	if _, err := os.Stat(source); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(source, []byte(auditor.GenerateSourceKey()+"\n"), 0o600); err != nil {
			return fmt.Errorf("audit source key: %w", err)
		}
	}
	cfg.Audit.Enabled, cfg.Audit.ClusterID = true, "dev"
	cfg.Audit.SigningKeyFile, cfg.Audit.SourceKeyFile = signing, source
	cfg.Audit.Checkpoint.Dir = filepath.Join(dir, "checkpoints")
	// Sooner than the default minute, so an order the banner suggests
	// exporting is covered by a checkpoint by the time one tries.
	cfg.Audit.Checkpoint.Every = 10 * time.Second
	// Verified by weft itself every minute (weft_audit_verify_* metrics).
	cfg.Audit.Verify.Every, cfg.Audit.Verify.Window = time.Minute, 10*time.Minute
	return cfg.Audit.Validate()
}

// devReplay turns replay on for `weft dev`, allowed to produce to the
// demo's topics but its dead-letter topic, so the banner's redrive works.
func devReplay(cfg *Config, topics demo.TopicNames) {
	cfg.Replay.Enabled = true
	cfg.Replay.Allow = nil
	for _, t := range topics.All() {
		if t != topics.Name(demo.TopicPaymentsDLQ) {
			cfg.Replay.Allow = append(cfg.Replay.Allow, regexp.QuoteMeta(t))
		}
	}
}

// devTracing turns tracing on for `weft dev`: every order's spans go into
// otel_traces (the Grafana ClickHouse data source's trace view), and to an
// OTLP/HTTP endpoint when one is given (WEFT_DEV_OTLP_ENDPOINT, e.g. a
// local Jaeger's http://127.0.0.1:4318/v1/traces). The id key is generated
// on first use and kept in the data directory (0600).
func devTracing(cfg *Config, dataDir, endpoint string) error {
	dir := filepath.Join(dataDir, "tracing")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tracing dir: %w", err)
	}
	key := filepath.Join(dir, "id.key")
	if _, err := os.Stat(key); errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		if err := os.WriteFile(key, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
			return fmt.Errorf("tracing id key: %w", err)
		}
	}
	cfg.Tracing.Enabled, cfg.Tracing.ClickHouse, cfg.Tracing.IDKeyFile = true, true, key
	cfg.Tracing.Endpoint = endpoint
	return cfg.Tracing.Validate()
}

func writeDevConfig(path string, cfg Config) error {
	b, err := yaml.Marshal(struct {
		Kafka      any `yaml:"kafka"`
		ClickHouse any `yaml:"clickhouse"`
		HTTP       any `yaml:"http"`
		Audit      any `yaml:"audit"`
		Replay     any `yaml:"replay"`
		Tracing    any `yaml:"tracing"`
	}{
		map[string]any{"brokers": cfg.Kafka.Brokers},
		map[string]any{"addr": cfg.ClickHouse.Addr, "database": cfg.ClickHouse.Database},
		map[string]any{"listen": cfg.HTTP.Listen, "auth": map[string]any{"tokens": cfg.HTTP.Auth.Tokens}},
		map[string]any{"enabled": cfg.Audit.Enabled, "cluster_id": cfg.Audit.ClusterID,
			"signing_key_file": cfg.Audit.SigningKeyFile, "source_key_file": cfg.Audit.SourceKeyFile,
			"checkpoint": map[string]any{"dir": cfg.Audit.Checkpoint.Dir}},
		map[string]any{"enabled": cfg.Replay.Enabled, "allow": cfg.Replay.Allow},
		map[string]any{"enabled": cfg.Tracing.Enabled, "id_key_file": cfg.Tracing.IDKeyFile, "clickhouse": cfg.Tracing.ClickHouse,
			"endpoint": cfg.Tracing.Endpoint},
	})
	if err != nil {
		return err
	}
	header := "# Written by `weft dev`: how the commands reach the embedded servers.\n"
	return os.WriteFile(path, append([]byte(header), b...), 0o644)
}

// devAddrs are where the embedded servers listen, for the banner.
type devAddrs struct{ kafka, clickhouse, clickhouseHTTP, clickhouseLog string }

func printDevBanner(w io.Writer, cfgPath string, cfg Config, addrs devAddrs, m *demo.Manifest, tokens map[auth.Role]string) {
	rel := cfgPath
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, cfgPath); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
		}
	}
	self := "weft"
	if exe, err := os.Executable(); err == nil {
		if wd, err := os.Getwd(); err == nil {
			if r, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(r, "..") {
				self = "./" + r
			}
		}
	}
	example := ""
	if stuck := m.FaultsOf(demo.KindStuck); len(stuck) > 0 {
		example = stuck[0].OrderID
	}
	fmt.Fprintf(w, `
weft is running on embedded servers, with demo traffic (%s).

  Stuck orders:     %[2]s stuck -c %[3]s
  As JSON:          %[2]s stuck -c %[3]s -o json
  One order:        %[2]s order %[4]s -c %[3]s
  Its events:       %[2]s events --order %[4]s -c %[3]s
  Its trace:        %[2]s trace %[4]s -o otlp-json -c %[3]s    (every order's spans also in ClickHouse otel_traces%[18]s)
  Queue health:     %[2]s lag -c %[3]s
  Audit trail:      %[2]s audit verify -c %[3]s
  Audit key:        %[2]s audit key -c %[3]s    (checkpoints signed every %[12]s; copies in %[9]s/audit/checkpoints)
  Its evidence:     %[2]s audit export --order %[4]s --out %[13]s -c %[3]s
  Checked offline:  %[2]s audit verify-bundle %[13]s --key "$(%[2]s audit key -c %[3]s)"
  Failed payments:  %[2]s redrive %[16]s --dry-run -c %[3]s    (then --yes: back to their topic, docs/replay.md)
  A time range:     %[2]s replay range --topic %[19]s --from 1h --to now --type %[20]s --dry-run -c %[3]s
  Web console:      http://%[5]s/   (log in with a token below; operator to acknowledge findings)
  HTTP API:         curl -H "Authorization: Bearer %[14]s" http://%[5]s/api/v1/stuck
  Metrics:          curl http://%[5]s/metrics
%[15]s
  Kafka (kfake):    %[6]s
  ClickHouse:       %[7]s (native), http://%[8]s
  ClickHouse log:   %[17]s (restarted if it dies)
  Data:             %[9]s

The detector runs every %[10]s; new stuck orders appear as their SLAs pass.
%[11]sPress Ctrl-C to stop everything.
`, m.Summary(), self, rel, example, cfg.HTTP.Listen, addrs.kafka, addrs.clickhouse, addrs.clickhouseHTTP,
		filepath.Dir(cfgPath), cfg.Consistency.Interval, consumersNote(m), cfg.Audit.Checkpoint.Every, filepath.Join(filepath.Dir(rel), example+".zip"),
		tokens[auth.Viewer], tokensNote(tokens, filepath.Dir(cfgPath), self), demo.DefaultConfig().Topics.Name(demo.TopicPaymentsDLQ),
		addrs.clickhouseLog, otlpNote(cfg), demo.DefaultConfig().Topics.Name(demo.TopicPayments), demo.PaymentAuthorized)
}

// otlpNote says, for the banner, where spans are exported besides ClickHouse.
func otlpNote(cfg Config) string {
	if cfg.Tracing.Endpoint == "" {
		return "; WEFT_DEV_OTLP_ENDPOINT=URL exports them over OTLP too"
	}
	return " and sent to " + cfg.Tracing.Endpoint
}

// consumersNote says, for the banner, how the services' consumer groups
// consume (empty when they do not run).
func consumersNote(m *demo.Manifest) string {
	if len(m.Consumers) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("The shop's services consume the live traffic in their own consumer groups:\n")
	for _, g := range m.GroupsWith(demo.BehaviorLagging) {
		fmt.Fprintf(&b, "  %s falls behind (it reads %g records/s of %s)\n", g.Group, g.Rate, strings.Join(g.Topics, ", "))
	}
	for _, g := range m.GroupsWith(demo.BehaviorStopped) {
		fmt.Fprintf(&b, "  %s stops after %s, for good\n", g.Group, g.StopAfter)
	}
	var keep []string
	for _, g := range m.GroupsWith(demo.BehaviorKeepsUp) {
		keep = append(keep, g.Group)
	}
	if len(keep) > 0 {
		fmt.Fprintf(&b, "  %s keep up\n", strings.Join(keep, ", "))
	}
	return b.String()
}
