package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/queuehealth"

	"github.com/weft-sh/weft/internal/humanize"
)

// LagView is the answer of `weft lag`: a queue-health sample and where it
// was read from.
type LagView struct {
	// Source is "kafka" (measured now) or "clickhouse" (the newest sample
	// `weft run` stored).
	Source string `json:"source"`
	queuehealth.Report
}

type lagFlags struct {
	stored         bool
	window         time.Duration
	group, topic   string
	groupRe, topRe *regexp.Regexp
}

func newLagCmd(g *globalFlags) *cobra.Command {
	var f lagFlags
	cmd := &cobra.Command{
		Use:   "lag",
		Short: "Show consumer-group lag, queue depth and dead-letter topics",
		Long: `lag shows the queue health of the tapped topics: for every consumer group
reading them (the applications' groups as well as weft's own), the lag in
messages and in seconds (the age of the oldest record the group has not
consumed, from record timestamps), worst first; then each topic's depth,
produce rate, and, for dead-letter topics, the age of the oldest record.

By default it reads live from Kafka (admin requests and single-record reads;
it commits nothing and produces nothing) and takes one sample: produce rates
and commit ages need two, so they show as "-" unless --window is given.
With --stored it reads ClickHouse instead and shows the newest sample that
` + "`weft run`" + ` stored, with the commit age it has been tracking.

A group that stopped committing shows a LAG AGE that keeps growing and,
with --stored, a COMMIT AGE that grows with it. Unknown values are "-" in
text and -1 in JSON.`,
		Example: "  weft lag\n  weft lag --group '^billing' --window 5s\n  weft lag --stored -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if f.groupRe, err = regexp.Compile(f.group); err != nil {
				return usageError{fmt.Errorf("--group: %w", err)}
			}
			if f.topRe, err = regexp.Compile(f.topic); err != nil {
				return usageError{fmt.Errorf("--topic: %w", err)}
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			view, warn := lagView(cmd.Context(), cfg, f)
			if view.Source == "" {
				return warn
			}
			if warn != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "weft: warning: "+warn.Error())
			}
			view.Report = f.filter(view.Report)
			return g.emit(cmd.OutOrStdout(), view, func(w io.Writer) { printLag(w, view) })
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.stored, "stored", false, "show the newest sample stored in ClickHouse by weft run instead of reading Kafka")
	fl.DurationVar(&f.window, "window", 0, "live: take two samples this far apart, for produce rates and commit movement")
	fl.StringVar(&f.group, "group", "", "only groups matching this regular expression")
	fl.StringVar(&f.topic, "topic", "", "only topics matching this regular expression")
	return cmd
}

// lagView measures (or reads back) one sample. A partial failure returns
// the view with an error to show as a warning; a view without Source failed.
func lagView(ctx context.Context, cfg Config, f lagFlags) (LagView, error) {
	if f.stored {
		store, err := openStore(ctx, cfg)
		if err != nil {
			return LagView{}, err
		}
		defer store.Close()
		rep, err := queuehealth.LatestStored(ctx, store)
		if err != nil {
			return LagView{}, err
		}
		return LagView{Source: "clickhouse", Report: rep}, nil
	}
	cfg.Collector.Lag.Enabled = true
	m, err := queuehealth.New(cfg.Collector.Lag, cfg.Collector.tapped(), cfg.Kafka, nil, queuehealth.Settings{Logger: zerolog.Nop()})
	if err != nil {
		return LagView{}, err
	}
	if err := m.Start(ctx); err != nil {
		return LagView{}, err
	}
	defer m.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // it only closes the Kafka client
	rep, err := m.Sample(ctx)
	if f.window > 0 && !rep.At.IsZero() {
		select {
		case <-ctx.Done():
			return LagView{}, ctx.Err()
		case <-time.After(f.window):
		}
		rep, err = m.Sample(ctx)
	}
	if rep.At.IsZero() {
		return LagView{}, err
	}
	if f.window == 0 { // one sample: no commit has been seen moving or standing
		for i := range rep.Groups {
			rep.Groups[i].CommitAgeSeconds = -1
			for j := range rep.Groups[i].Partitions {
				rep.Groups[i].Partitions[j].CommitAgeSeconds = -1
			}
		}
	}
	return LagView{Source: "kafka", Report: rep}, err
}

func (f lagFlags) filter(rep queuehealth.Report) queuehealth.Report {
	groups, topics := rep.Groups[:0:0], rep.Topics[:0:0]
	for _, g := range rep.Groups {
		if f.groupRe.MatchString(g.Group) && f.topRe.MatchString(g.Topic) {
			groups = append(groups, g)
		}
	}
	for _, t := range rep.Topics {
		if f.topRe.MatchString(t.Topic) {
			topics = append(topics, t)
		}
	}
	rep.Groups, rep.Topics = groups, topics
	return rep
}

func printLag(w io.Writer, v LagView) {
	from := "live from Kafka"
	if v.Source == "clickhouse" {
		from = "stored sample"
	}
	fmt.Fprintf(w, "Queue health at %s (%s)\n\n", v.At.UTC().Format(time.RFC3339), from)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(v.Groups) == 0 {
		fmt.Fprintln(w, "No consumer group reads the monitored topics.")
	} else {
		fmt.Fprintln(tw, "GROUP\tSTATE\tTOPIC\tLAG\tLAG AGE\tCOMMIT AGE\tPARTITIONS LAGGING")
		for _, g := range v.Groups {
			lagging := 0
			for _, p := range g.Partitions {
				if p.LagMessages > 0 {
					lagging++
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d/%d\n", g.Group, g.State, g.Topic, g.LagMessages,
				humanize.Seconds(g.LagSeconds), humanize.Seconds(g.CommitAgeSeconds), lagging, len(g.Partitions))
		}
	}
	_ = tw.Flush()
	if len(v.Topics) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "TOPIC\tDLQ\tDEPTH\tRATE/S\tOLDEST")
	for _, t := range v.Topics {
		dlq, oldest := "", "-"
		if t.DLQ {
			dlq, oldest = "yes", humanize.Seconds(t.OldestAgeSeconds)
		}
		rate := "-"
		if t.ProduceRate >= 0 {
			rate = fmt.Sprintf("%.1f", t.ProduceRate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", t.Topic, dlq, t.DepthMessages, rate, oldest)
	}
	_ = tw.Flush()
}
