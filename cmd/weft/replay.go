package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/replay"
)

// replayFlags are the flags every producing command shares.
type replayFlags struct {
	dryRun bool
	yes    bool
	rate   int
	to     string
}

func (f *replayFlags) add(cmd *cobra.Command, to string) {
	fl := cmd.Flags()
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would be produced (count per topic, first rows) and produce nothing")
	fl.BoolVar(&f.yes, "yes", false, "do not ask for confirmation above replay.confirm_above records")
	fl.IntVar(&f.rate, "rate", -1, "records a second at most (0: no cap; default replay.rate)")
	if to != "" {
		fl.StringVar(&f.to, "to", "", to)
	}
}

// ReplayReport is the answer of weft replay and weft redrive.
type ReplayReport struct {
	DryRun bool        `json:"dry_run"`
	Plan   replay.Plan `json:"plan"`
	Job    *replay.Job `json:"job,omitempty"`
}

func newReplayCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Produce an order's, a finding's or a topic's time range's records again, from their original bytes in Kafka (off by default)",
		Long: `replay re-sends records as they were first produced — read back from Kafka by
topic/partition/offset, never weft's masked copy — with their key, value and
headers, plus headers saying it is a replay (docs/replay.md). It is off until
replay.enabled is set, produces only to topics replay.allow lists, with its
own Kafka client (replay.kafka), rate-limited, one Kafka transaction per
batch; every job is resumable exactly once and logged in the audit trail.`,
	}
	cmd.AddCommand(newReplayOrderCmd(g), newReplayFindingCmd(g), newReplayRangeCmd(g), newReplayResumeCmd(g), newReplayStatusCmd(g))
	return cmd
}

func newReplayOrderCmd(g *globalFlags) *cobra.Command {
	var f replayFlags
	var types []string
	cmd := &cobra.Command{
		Use:   "order ORDER_ID",
		Short: "Replay an order's events to their topics",
		Long: `order replays every stored event of the order (its dead-letter copies left out:
weft redrive sends those), oldest first, each to its own topic or to --to.`,
		Example: "  weft replay order ord-1 --dry-run\n  weft replay order ord-1 --type PaymentAuthorized --yes",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReplayCmd(cmd, g, f, func(ctx context.Context, cfg Config, r *replay.Replayer) (replay.Plan, error) {
				return r.PlanOrder(ctx, replay.OrderRequest{OrderID: args[0], Types: types, To: f.to, DLQPattern: cfg.Collector.Lag.DLQPattern})
			})
		},
	}
	f.add(cmd, "produce every record to this topic instead of its own")
	cmd.Flags().StringSliceVar(&types, "type", nil, "only events of these types")
	return cmd
}

func newReplayFindingCmd(g *globalFlags) *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "finding FINDING_ID",
		Short: "Replay the records a finding's evidence names (a stuck order's: its last event)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReplayCmd(cmd, g, f, func(ctx context.Context, _ Config, r *replay.Replayer) (replay.Plan, error) {
				return r.PlanFinding(ctx, args[0], f.to)
			})
		},
	}
	f.add(cmd, "produce every record to this topic instead of its own")
	return cmd
}

// rangeArgs are the flags of weft replay range, as given.
type rangeArgs struct {
	topic, from, to, ordersFile, target string
	types, services                     []string
	limit                               int
}

// request checks the flags and reads the orders file: a bad time, a
// missing topic or an unreadable file is an error naming the flag.
func (a rangeArgs) request(now time.Time) (replay.RangeRequest, error) {
	q := replay.RangeRequest{Topic: a.topic, Types: a.types, Services: a.services, Target: a.target, Limit: a.limit}
	if a.topic == "" {
		return q, errors.New("--topic: required: the topic whose records to replay")
	}
	var err error
	for _, b := range []struct {
		flag, value string
		into        *time.Time
	}{{"--from", a.from, &q.From}, {"--to", a.to, &q.To}} {
		if b.value == "" {
			return q, fmt.Errorf("%s: required (RFC 3339, a date, a duration back from now, or now)", b.flag)
		}
		if b.value == "now" {
			*b.into = now.UTC()
			continue
		}
		if *b.into, err = timeBound(b.value, now); err != nil {
			return q, fmt.Errorf("%s %q: %w", b.flag, b.value, err)
		}
	}
	if a.limit < 0 {
		return q, fmt.Errorf("--limit: must not be negative, got %d", a.limit)
	}
	if a.ordersFile != "" {
		if q.OrderIDs, err = readOrderIDs(a.ordersFile); err != nil {
			return q, err
		}
	}
	return q, nil
}

// readOrderIDs reads a file of order ids, one a line; blank lines and
// lines starting with # are skipped.
func readOrderIDs(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--orders-file: %w", err)
	}
	var ids []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			ids = append(ids, line)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("--orders-file %s: no order ids in it (one a line)", path)
	}
	return ids, nil
}

func newReplayRangeCmd(g *globalFlags) *cobra.Command {
	var f replayFlags
	var a rangeArgs
	cmd := &cobra.Command{
		Use:   "range --topic TOPIC --from TIME --to TIME",
		Short: "Replay the records of a topic in a time range, filtered by type, service and orders",
		Long: `range replays the records of one topic that weft stored with a Kafka timestamp
from --from (included) to --to (excluded), oldest first, each read back from
Kafka by partition and offset and produced to the same topic or --target.
--type, --service and --orders-file (order ids, one a line) narrow it; each
flag repeated is any of its values. Times are RFC 3339
(2026-11-24T10:00:00Z), a date (midnight UTC), a duration back from now
(15m, 2h, 7d) or now. Records weft did not store (quarantined, or from
before the tap watched the topic) are not replayed.`,
		Example: "  weft replay range --topic payments --from 2h --to 1h --type PaymentAuthorized --dry-run\n" +
			"  weft replay range --topic orders --from 2026-11-24T10:00:00Z --to 2026-11-24T10:30:00Z --orders-file stuck.txt --target orders.retry --yes",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := a.request(time.Now())
			if err != nil {
				return err
			}
			return runReplayCmd(cmd, g, f, func(ctx context.Context, _ Config, r *replay.Replayer) (replay.Plan, error) {
				return r.PlanRange(ctx, q)
			})
		},
	}
	f.add(cmd, "")
	fl := cmd.Flags()
	fl.StringVar(&a.topic, "topic", "", "the topic whose stored records to replay")
	fl.StringVar(&a.from, "from", "", "records stamped at or after this time")
	fl.StringVar(&a.to, "to", "", "records stamped before this time")
	fl.StringSliceVar(&a.types, "type", nil, "only events of these types")
	fl.StringSliceVar(&a.services, "service", nil, "only events these services emitted")
	fl.StringVar(&a.ordersFile, "orders-file", "", "only events of the order ids in this file, one a line")
	fl.StringVar(&a.target, "target", "", "produce every record to this topic instead of --topic")
	fl.IntVar(&a.limit, "limit", 0, "at most this many records, the oldest (0: all)")
	return cmd
}

func newRedriveCmd(g *globalFlags) *cobra.Command {
	var f replayFlags
	var q replay.RedriveRequest
	var hdr string
	cmd := &cobra.Command{
		Use:   "redrive DLQ_TOPIC",
		Short: "Send a dead-letter topic's records back to where they failed (off by default)",
		Long: `redrive produces the records of a dead-letter topic (up to its end now, oldest
first, filtered) to the topic each came from: --to, else
replay.redrive.targets, else the record's original-topic header
(replay.redrive.original_topic_headers). The dead-letter records stay where
they are. Same guardrails as weft replay (docs/replay.md).`,
		Example: "  weft redrive payments.dlq --dry-run\n  weft redrive payments.dlq --older-than 10m --limit 100 --rate 50 --yes",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q.Topic, q.To = args[0], f.to
			if hdr != "" {
				name, value, ok := strings.Cut(hdr, "=")
				if !ok || name == "" {
					return usageError{fmt.Errorf("--header %q: want NAME=VALUE", hdr)}
				}
				q.HeaderName, q.HeaderValue = name, value
			}
			if q.Limit < 0 || q.OlderThan < 0 || q.NewerThan < 0 {
				return usageError{errors.New("--limit, --older-than and --newer-than must not be negative")}
			}
			return runReplayCmd(cmd, g, f, func(ctx context.Context, _ Config, r *replay.Replayer) (replay.Plan, error) {
				return r.PlanRedrive(ctx, q)
			})
		},
	}
	f.add(cmd, "produce every record to this topic")
	fl := cmd.Flags()
	fl.DurationVar(&q.OlderThan, "older-than", 0, "only records at least this old (e.g. 10m: not those still being retried)")
	fl.DurationVar(&q.NewerThan, "newer-than", 0, "only records at most this old")
	fl.StringVar(&hdr, "header", "", "only records with this header NAME=VALUE (e.g. dlq-reason=retries_exhausted)")
	fl.IntVar(&q.Limit, "limit", 0, "at most this many records, the oldest (0: all)")
	return cmd
}

func newReplayResumeCmd(g *globalFlags) *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "resume JOB_ID",
		Short: "Finish a replay job that was cancelled, failed or killed, producing no record of it twice",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withReplayer(cmd, g, func(ctx context.Context, cfg Config, r *replay.Replayer, _ *collector.ActionLog) error {
				j, err := r.Load(ctx, args[0])
				if err != nil {
					return err
				}
				rate := f.rate
				if rate < 0 {
					rate = cfg.Replay.Rate
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Job %s: resuming at item %d of %d\n", j.ID, j.Cursor, j.Planned)
				return runJob(ctx, cmd, g, r, j, rate)
			})
		},
	}
	cmd.Flags().IntVar(&f.rate, "rate", -1, "records a second at most (0: no cap; default replay.rate)")
	return cmd
}

func newReplayStatusCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status JOB_ID",
		Short: "Show a replay job: what it replays, how far it got",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd.Context(), func(_ Config, store *chstore.Store) error {
				j, err := replay.LoadJob(cmd.Context(), store, args[0])
				if err != nil {
					return err
				}
				return g.emit(cmd.OutOrStdout(), j, func(w io.Writer) { printJob(w, j) })
			})
		},
	}
}

// withReplayer loads the config, refuses at once when replay is off,
// opens the store and the actions log, starts a Replayer whose phases are
// logged as operator actions, and runs fn with a context Ctrl-C cancels.
func withReplayer(cmd *cobra.Command, g *globalFlags, fn func(context.Context, Config, *replay.Replayer, *collector.ActionLog) error) error {
	cfg, err := g.load()
	if err != nil {
		return err
	}
	if !cfg.Replay.Enabled {
		return errors.New("refused: replay is disabled: set replay.enabled and replay.allow (docs/replay.md)")
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	actions, err := actionLog(cfg, store)
	if err != nil {
		return err
	}
	actor, origin := cliActor()
	r, err := startReplayer(ctx, cfg, store, actions, actor, origin, func(m replay.Missing) {
		fmt.Fprintf(cmd.ErrOrStderr(), "skipped %s: %s\n", m.From, m.Reason)
	})
	if err != nil {
		return err
	}
	defer r.Shutdown(context.Background()) //nolint:errcheck // closes clients only
	return fn(ctx, cfg, r, actions)
}

// startReplayer builds a Replayer acting as actor from origin, with its
// own Kafka client (replay.kafka), each phase of its jobs logged as an
// operator action, and connects it. The CLI makes one per command, the
// HTTP API one per request and per job it runs: a Replayer serves one
// caller at a time.
func startReplayer(ctx context.Context, cfg Config, store *chstore.Store, actions *collector.ActionLog, actor, origin string, gone func(replay.Missing)) (*replay.Replayer, error) {
	kc := cfg.Replay.KafkaConfig(cfg.Kafka)
	opts, err := kc.Opts(zerolog.Nop())
	if err != nil {
		return nil, err
	}
	r, err := replay.New(cfg.Replay, replay.Settings{Store: store, Kafka: opts, Brokers: kc.Brokers, Operator: actor, Origin: origin,
		Events: func(ctx context.Context, e replay.Event) error { return logReplayEvent(ctx, actions, actor, origin, e) },
		Gone:   gone})
	if err != nil {
		return nil, err
	}
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// verbOf is the operator action's verb for a job of kind.
func verbOf(kind string) string {
	if kind == replay.KindRedrive {
		return "redrive"
	}
	return "replay"
}

// logReplayEvent logs a job's phase in the operator-actions log.
func logReplayEvent(ctx context.Context, actions *collector.ActionLog, actor, origin string, e replay.Event) error {
	j := e.Job
	detail := fmt.Sprintf("%s job %s: %d planned, %d produced, %d gone from Kafka", e.Phase, j.ID, j.Planned, j.Produced, j.Missing)
	if j.Detail != "" {
		detail += "; " + j.Detail
	}
	outcome := auditor.OutcomeSuccess
	if e.Phase == "failed" {
		outcome = auditor.OutcomeFailure
	}
	var targets []auditor.Position
	for _, p := range e.Targets[:min(len(e.Targets), auditor.MaxTargets)] {
		targets = append(targets, auditor.Position{Topic: p.Topic, Partition: p.Partition, Offset: p.Offset})
	}
	orderID, _ := strings.CutPrefix(j.Resource, "order/")
	if orderID == j.Resource {
		orderID = ""
	}
	return logAction(ctx, actions, auditor.Action{Actor: actor, Origin: origin, Verb: verbOf(j.Kind), Resource: j.Resource,
		Outcome: outcome, Detail: truncate(detail, auditor.MaxDetailLen), Targets: targets}, orderID)
}

// runReplayCmd plans, checks, prints a dry run or confirms, creates the
// job and runs it. A refusal is logged as a denied action.
func runReplayCmd(cmd *cobra.Command, g *globalFlags, f replayFlags, plan func(context.Context, Config, *replay.Replayer) (replay.Plan, error)) error {
	return withReplayer(cmd, g, func(ctx context.Context, cfg Config, r *replay.Replayer, actions *collector.ActionLog) error {
		actor, origin := cliActor()
		p, err := plan(ctx, cfg, r)
		if err == nil {
			err = r.Check(ctx, p)
		}
		if err != nil {
			if errors.Is(err, replay.ErrRefused) {
				resource := p.Resource
				if resource == "" {
					resource = cmd.CommandPath()
				}
				lerr := logAction(ctx, actions, auditor.Action{Actor: actor, Origin: origin, Verb: verbOf(p.Kind), Resource: resource,
					Outcome: auditor.OutcomeDenied, Detail: truncate(err.Error(), auditor.MaxDetailLen)}, p.OrderID)
				return errors.Join(err, lerr)
			}
			return err
		}
		for _, m := range p.Missing {
			fmt.Fprintf(cmd.ErrOrStderr(), "skipped %s: %s\n", m.From, m.Reason)
		}
		if f.dryRun {
			detail := fmt.Sprintf("dry run: %d records to %s; %d gone from Kafka", len(p.Items), perTopic(p), len(p.Missing))
			if err := logAction(ctx, actions, auditor.Action{Actor: actor, Origin: origin, Verb: verbOf(p.Kind), Resource: p.Resource,
				Outcome: auditor.OutcomeSuccess, Detail: truncate(detail, auditor.MaxDetailLen)}, p.OrderID); err != nil {
				return err
			}
			rep := ReplayReport{DryRun: true, Plan: p}
			return g.emit(cmd.OutOrStdout(), rep, func(w io.Writer) { printPlan(w, p, true) })
		}
		if n := len(p.Items); n > cfg.Replay.ConfirmAbove && !f.yes {
			if !isatty.IsTerminal(os.Stdin.Fd()) {
				return fmt.Errorf("refused: %d records to %s is above replay.confirm_above (%d): pass --yes when not on a terminal", n, perTopic(p), cfg.Replay.ConfirmAbove)
			}
			printPlan(cmd.ErrOrStderr(), p, false)
			if !confirm(cmd.InOrStdin(), cmd.ErrOrStderr(), fmt.Sprintf("Produce %d records to %s? [y/N] ", n, perTopic(p))) {
				return errors.New("not replayed: not confirmed")
			}
		}
		rate := f.rate
		if rate < 0 {
			rate = cfg.Replay.Rate
		}
		j, err := r.Create(ctx, p, rate)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Job %s: %d records to %s (resume: weft replay resume %s)\n", j.ID, j.Planned, perTopic(p), j.ID)
		return runJob(ctx, cmd, g, r, j, rate)
	})
}

// runJob runs a job with a progress bar on a terminal and prints how it ended.
func runJob(ctx context.Context, cmd *cobra.Command, g *globalFlags, r *replay.Replayer, j replay.Job, rate int) error {
	var bar *progressbar.ProgressBar
	if isatty.IsTerminal(os.Stderr.Fd()) && g.output == "text" {
		bar = progressbar.NewOptions64(int64(j.Planned), progressbar.OptionSetWriter(cmd.ErrOrStderr()),
			progressbar.OptionSetDescription(j.ID), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("records"), progressbar.OptionClearOnFinish())
		_ = bar.Set64(int64(j.Cursor))
	}
	r.SetProgress(func(j replay.Job) {
		if bar != nil {
			_ = bar.Set64(int64(j.Cursor))
		}
	})
	start := time.Now()
	j, err := r.Run(ctx, j.ID, rate)
	if bar != nil {
		_ = bar.Finish()
	}
	if errors.Is(err, replay.ErrCancelled) {
		return fmt.Errorf("job %s cancelled at item %d of %d (%d produced): weft replay resume %s finishes it", j.ID, j.Cursor, j.Planned, j.Produced, j.ID)
	}
	if err != nil {
		if j.ID != "" {
			return fmt.Errorf("job %s: %w (weft replay resume %s continues it)", j.ID, err, j.ID)
		}
		return err
	}
	return g.emit(cmd.OutOrStdout(), j, func(w io.Writer) {
		fmt.Fprintf(w, "Job %s finished: %d records produced, %d gone from Kafka, in %s\n", j.ID, j.Produced, j.Missing, time.Since(start).Round(time.Millisecond))
	})
}

func perTopic(p replay.Plan) string {
	m := p.PerTopic()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s (%d)", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// planRows is how many rows of a plan are printed.
const planRows = 10

func printPlan(w io.Writer, p replay.Plan, dryRun bool) {
	head := "Would produce"
	if !dryRun {
		head = "Will produce"
	}
	fmt.Fprintf(w, "%s %d records of %s: %s\n", head, len(p.Items), p.Resource, perTopic(p))
	if len(p.Missing) > 0 {
		fmt.Fprintf(w, "%d records gone from Kafka, skipped (listed above)\n", len(p.Missing))
	}
	for reason, n := range p.Skipped {
		fmt.Fprintf(w, "%d records left out: %s\n", n, reason)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tFROM\tTO\tTYPE\tRECORD TIME\tBYTES")
	for _, it := range p.Items[:min(len(p.Items), planRows)] {
		typ := it.Type
		if typ == "" {
			typ = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\n", it.Seq, it.From, it.To, typ, it.Time.UTC().Format("2006-01-02 15:04:05"), it.Size)
	}
	_ = tw.Flush()
	if len(p.Items) > planRows {
		fmt.Fprintf(w, "… and %d more\n", len(p.Items)-planRows)
	}
	if dryRun {
		fmt.Fprintln(w, "\nDry run: nothing produced.")
	}
}

func printJob(w io.Writer, j replay.Job) {
	fmt.Fprintf(w, "Job %s (%s %s) by %s: %s\n", j.ID, j.Kind, j.Resource, j.Actor, j.Status)
	fmt.Fprintf(w, "  created %s, updated %s\n", j.Created.Format(time.RFC3339), j.Updated.Format(time.RFC3339))
	fmt.Fprintf(w, "  %d planned, cursor %d, %d produced, %d gone from Kafka, rate %d/s\n", j.Planned, j.Cursor, j.Produced, j.Missing, j.Rate)
	if j.Detail != "" {
		fmt.Fprintf(w, "  %s\n", j.Detail)
	}
}
