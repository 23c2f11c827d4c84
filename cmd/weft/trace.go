package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/tracing"
)

func newTraceCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "trace ORDER_ID",
		Short: "Write an order's OpenTelemetry trace",
		Long: `trace builds the order's trace from its stored events, as weft run exports it
(docs/tracing.md): one span per event, each under its cause, its service.name
the service that emitted it, the producer's own trace context as a link, the
order's active findings on its latest span. -o otlp-json writes it as OTLP
JSON (an ExportTraceServiceRequest, as an OTLP/HTTP receiver takes it and
the Collector's otlpjsonfile receiver reads it); text lists the spans.`,
		Example: "  weft trace o-000123\n  weft trace o-000123 -o otlp-json > o-000123.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.otlpJSON = true
			return g.withStore(cmd.Context(), func(cfg Config, store *chstore.Store) error {
				td, err := orderTrace(cmd.Context(), cfg, store, args[0])
				if err != nil {
					return err
				}
				if td.SpanCount() == 0 {
					return fmt.Errorf("order %s: no events stored", args[0])
				}
				w := cmd.OutOrStdout()
				if g.output == "otlp-json" || g.output == "json" {
					b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
					if err != nil {
						return fmt.Errorf("order %s: write trace: %w", args[0], err)
					}
					_, err = fmt.Fprintf(w, "%s\n", b)
					return err
				}
				printTrace(w, args[0], td)
				return nil
			})
		},
	}
}

// orderTrace builds an order's whole trace with the configured id key.
func orderTrace(ctx context.Context, cfg Config, store *chstore.Store, orderID string) (ptrace.Traces, error) {
	key, err := tracing.ReadIDKey(cfg.Tracing.IDKeyFile)
	if err != nil {
		return ptrace.Traces{}, err
	}
	e, err := newEngine(cfg, store)
	if err != nil {
		return ptrace.Traces{}, err
	}
	b := cfg.Tracing.Builder(key, cfg.Collector.Group)
	return tracing.OrderTrace(ctx, b, store, e, orderID)
}

// traceIDFunc gives an order's trace id from its chain: the trace of its
// first event (by tracing.trace_by: correlation_id, an order's events may
// be in several traces; docs/tracing.md).
type traceIDFunc func(orderID string, chain []consistency.ChainEvent) string

// orderTraceIDs returns what gives an order's trace id, for the API and
// the console, or nil when no id key is configured (or it cannot be read:
// `weft run` with tracing on has already refused that).
func orderTraceIDs(cfg Config) traceIDFunc {
	key, err := tracing.ReadIDKey(cfg.Tracing.IDKeyFile)
	if err != nil {
		return nil
	}
	b := cfg.Tracing.Builder(key, cfg.Collector.Group)
	return func(orderID string, chain []consistency.ChainEvent) string {
		corr := ""
		if len(chain) > 0 {
			corr = chain[0].CorrelationID
		}
		return b.TraceID(orderID, corr).String()
	}
}

func printTrace(w io.Writer, orderID string, td ptrace.Traces) {
	fmt.Fprintf(w, "Order %s: trace %s, %d spans\n\n", orderID, firstTraceID(td), td.SpanCount())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SPAN\tPARENT\tSERVICE\tNAME\tSTART\tDURATION\tSTATUS")
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		svc, _ := rss.At(i).Resource().Attributes().Get(tracing.AttrServiceName)
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				parent := s.ParentSpanID().String()
				if parent == "" {
					parent = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.SpanID(), parent, svc.AsString(), s.Name(),
					s.StartTimestamp().AsTime().Format("2006-01-02 15:04:05.000"),
					s.EndTimestamp().AsTime().Sub(s.StartTimestamp().AsTime()).Round(time.Millisecond), s.Status().Code())
			}
		}
	}
	_ = tw.Flush()
}

func firstTraceID(td ptrace.Traces) string {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			if sss.At(j).Spans().Len() > 0 {
				return sss.At(j).Spans().At(0).TraceID().String()
			}
		}
	}
	return ""
}
