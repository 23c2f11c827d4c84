package benchkit

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets of issue 3.
const (
	TargetVsBare       = 0.7         // weft ≥ 0.7 × the slower of bare consume and bare insert
	TargetVsEngine     = 1.0         // weft faster than the Kafka table engine
	TargetPeakRSS      = 300_000_000 // bytes: 300 MB
	TargetFreshnessP99 = 2 * time.Second
	// TargetAuditOnOff is issue 13's: the tap with the audit trail on at
	// least 0.9 × the same tap with it off, in one run.
	TargetAuditOnOff = 0.9
	// TargetVerifyVsSelect and TargetVerifyRSS are issue 13's for `weft
	// audit verify`: at least half the rate of a bare SELECT of the
	// columns it reads, in at most 300 MB whatever the table size.
	TargetVerifyVsSelect = 0.5
	TargetVerifyRSS      = 300_000_000
	// TargetReplayVsProducer is issue 14's: weft replay without a rate
	// cap at least 0.8 × a bare franz-go producer writing the same records.
	TargetReplayVsProducer = 0.8
	// TargetTracingOnOff is issue 15's: the tap with tracing on (the
	// Tracer storing spans in ClickHouse) at least 0.9 × the same tap with
	// it off, in one run.
	TargetTracingOnOff = 0.9
)

// Report is what Suite measured.
type Report struct {
	Options   Options
	Workload  Workload
	Preload   PreloadResult
	MeanValue int // bytes per record value
	Consume   []Run
	Insert    []Run
	// Engine is the Kafka engine storing raw rows; EngineEvents the Kafka
	// engine filling weft's events schema.
	Engine, EngineEvents []Run
	// Tap are the `weft run` runs with the detector and queue-health
	// monitor off; Full those with every default.
	Tap, Full []WeftResult
	// Audit are the tap-only runs with the audit trail on.
	Audit []WeftResult
	// Tracing are the tap-only runs with tracing on.
	Tracing []WeftResult
	// Replay is the replay phase, when it ran.
	Replay *ReplayResult
}

func (r Run) String() string {
	return fmt.Sprintf("%d events in %s (%.0f events/s, first after %s)", r.Events,
		r.Elapsed.Round(time.Millisecond), r.Rate(), r.FirstRow.Round(time.Millisecond))
}

// Median is the run of median time of ws.
func Median(ws []WeftResult) Run { return median(runsOf(ws)) }

// medianWeft is the run of median time.
func medianWeft(ws []WeftResult) WeftResult {
	m := median(runsOf(ws))
	for _, w := range ws {
		if w.Run == m {
			return w
		}
	}
	return WeftResult{}
}

func runsOf(ws []WeftResult) []Run {
	runs := make([]Run, len(ws))
	for i, w := range ws {
		runs[i] = w.Run
	}
	return runs
}

// Fresh is the freshness measured on one of ws, if any.
func Fresh(ws []WeftResult) *Freshness {
	for _, w := range ws {
		if w.Fresh != nil {
			return w.Fresh
		}
	}
	return nil
}

// Ratios returns the rate of ws over the slower of bare consume and bare
// insert, over the Kafka engine storing raw rows, and over the Kafka engine
// filling weft's schema (medians); NaN where a path was not measured.
func (rep *Report) Ratios(ws []WeftResult) (vsBare, vsEngine, vsEngineEvents float64) {
	wr := medianWeft(ws).Rate()
	vsBare, vsEngine, vsEngineEvents = math.NaN(), math.NaN(), math.NaN()
	bare := math.Inf(1)
	for _, runs := range [][]Run{rep.Consume, rep.Insert} {
		if len(runs) > 0 {
			bare = min(bare, median(runs).Rate())
		}
	}
	if bare > 0 && !math.IsInf(bare, 1) {
		vsBare = wr / bare
	}
	if len(rep.Engine) > 0 {
		if e := median(rep.Engine).Rate(); e > 0 {
			vsEngine = wr / e
		}
	}
	if len(rep.EngineEvents) > 0 {
		if e := median(rep.EngineEvents).Rate(); e > 0 {
			vsEngineEvents = wr / e
		}
	}
	return vsBare, vsEngine, vsEngineEvents
}

// Verify is the `weft audit verify` of the median audit run, if any.
func (rep *Report) Verify() *VerifyResult {
	if len(rep.Audit) == 0 {
		return nil
	}
	return medianWeft(rep.Audit).Verify
}

// PeakRSS is the highest VmHWM of the runs.
func PeakRSS(ws []WeftResult) int64 {
	var m int64
	for _, w := range ws {
		m = max(m, w.PeakRSS, w.PeakRSSEnd)
		if w.Trace != nil {
			m = max(m, w.Trace.PeakRSS)
		}
	}
	return m
}

// Print writes the summary table.
func (rep *Report) Print(out io.Writer) {
	w := rep.Workload
	fmt.Fprintf(out, "\nweft ingest benchmark: %s records (values %s B on average), %d partitions of %s\n",
		thousands(float64(w.Records)), thousands(float64(rep.MeanValue)), w.Partitions, rep.Preload.Topic)
	if rep.Preload.Reused {
		fmt.Fprintf(out, "preload: reused (the broker already held this exact workload)\n\n")
	} else {
		fmt.Fprintf(out, "preload: produced in %s\n\n", secs(rep.Preload.Took))
	}

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tevents/s\tMB/s\ttime\tfirst row\tclient CPU\tClickHouse CPU\truns\t")
	row := func(name string, runs []Run) {
		if len(runs) == 0 {
			return
		}
		m := median(runs)
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", name, thousands(m.Rate()),
			m.Rate()*float64(rep.MeanValue)/1e6, secs(m.Elapsed), secs(m.FirstRow),
			secs(m.ClientCPU), secs(m.ServerCPU), runsNote(runs))
	}
	row("bare franz-go consume (no group, no decode)", rep.Consume)
	row("bare clickhouse-go insert (weft's rows and schema)", rep.Insert)
	row("ClickHouse Kafka engine → MergeTree (raw rows)", rep.Engine)
	row("ClickHouse Kafka engine → weft's schema (SQL decode)", rep.EngineEvents)
	row("weft run, tap only (all rows queryable)", runsOf(rep.Tap))
	row("weft run, tap only, audit trail on", runsOf(rep.Audit))
	row("weft run, tap only, tracing on (spans in ClickHouse)", runsOf(rep.Tracing))
	row("weft run, all defaults (+ detector, queue health)", runsOf(rep.Full))
	if r := rep.Replay; r != nil {
		row(fmt.Sprintf("bare franz-go producer (%s records in memory)", thousands(float64(r.Records))), r.Bare)
		row("weft replay, no rate cap (read back, transactions, cursor)", r.Replay)
	}
	tw.Flush()

	fmt.Fprintln(out)
	for _, v := range []struct {
		name string
		ws   []WeftResult
	}{{"tap only", rep.Tap}, {"tap, audit on", rep.Audit}, {"tap, tracing on", rep.Tracing}, {"defaults", rep.Full}} {
		if len(v.ws) == 0 {
			continue
		}
		wm := medianWeft(v.ws)
		fmt.Fprintf(out, "weft, %s: peak RSS %s (VmHWM when the backlog was stored", v.name, mb(wm.PeakRSS))
		if wm.PeakRSSEnd > 0 {
			fmt.Fprintf(out, "; %s after the freshness phase", mb(wm.PeakRSSEnd))
		}
		fmt.Fprintf(out, "); CPU %.0f µs/event (ClickHouse %.0f); %d inserts took %s, %.0f%% of the run\n",
			perEvent(wm.ClientCPU, w.Records), perEvent(wm.ServerCPU, w.Records), wm.Inserts, secs(wm.InsertWall),
			100*wm.InsertWall.Seconds()/max(wm.Elapsed.Seconds(), 1e-9))
		if f := Fresh(v.ws); f != nil {
			fmt.Fprintf(out, "  freshness at %s events/s (reached %s, %s events): produce → queryable p50 %s, p99 %s, max %s (polled every %s)\n",
				thousands(f.Rate), thousands(f.Achieved), thousands(float64(f.Events)), secs(f.P50), secs(f.P99), secs(f.Max), f.Poll)
		}
	}

	if n := min(len(rep.Tap), len(rep.Audit)); n > 0 {
		// Run i of each path ran side by side (Suite interleaves them).
		fmt.Fprint(out, "weft, audit trail on ÷ off, run by run:")
		for i := range n {
			fmt.Fprintf(out, " %.2f", rep.Audit[i].Run.Rate()/rep.Tap[i].Run.Rate())
		}
		fmt.Fprintln(out)
	}
	if n := min(len(rep.Tap), len(rep.Tracing)); n > 0 {
		fmt.Fprint(out, "weft, tracing on ÷ off, run by run:")
		for i := range n {
			fmt.Fprintf(out, " %.2f", rep.Tracing[i].Run.Rate()/rep.Tap[i].Run.Rate())
		}
		fmt.Fprintln(out)
		for i, w := range rep.Tracing {
			if t := w.Trace; t != nil {
				fmt.Fprintf(out, "  tracing run %d: %s of %s spans stored with the backlog, %s after %s more, %s spans/s (Tracer CPU %s, %.0f µs/span; peak RSS then %s)\n",
					i+1, thousands(float64(t.SpansAtBacklog)), thousands(float64(t.Events)), thousands(float64(t.Spans)),
					secs(t.CaughtUp), thousands(float64(t.Spans-t.SpansAtBacklog)/max(t.CaughtUp.Seconds(), 1e-9)), secs(t.CPU), perEvent(t.CPU, int(max(t.Spans-t.SpansAtBacklog, 1))), mb(t.PeakRSS))
			}
		}
	}

	ver := rep.Verify()
	if ver != nil {
		fmt.Fprintf(out, "\nweft audit verify over the audit run's trail (%s rows, %s leaves): %s, %d findings\n\n",
			thousands(float64(ver.Events)), thousands(float64(ver.Leaves)), ver.Verdict, ver.Findings)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "read\trows/s\ttime\tclient CPU\tClickHouse CPU\tpeak RSS\t")
		fmt.Fprintf(tw, "weft audit verify (a process)\t%s\t%s\t%s\t%s\t%s\t\n", thousands(ver.Rate()), secs(ver.Elapsed),
			secs(ver.ClientCPU), secs(ver.ServerCPU), mb(ver.PeakRSS))
		fmt.Fprintf(tw, "bare clickhouse-go SELECT of its columns (faster of 2)\t%s\t%s\t%s\t%s\t\t\n", thousands(ver.Bare.Rate()),
			secs(ver.Bare.Elapsed), secs(ver.Bare.ClientCPU), secs(ver.Bare.ServerCPU))
		tw.Flush()
	}

	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tvalue\tgoal\t")
	for _, v := range []struct {
		name string
		ws   []WeftResult
	}{{"tap only", rep.Tap}, {"defaults", rep.Full}} {
		if len(v.ws) == 0 {
			continue
		}
		vsBare, vsEngine, vsEngineEvents := rep.Ratios(v.ws)
		rss := PeakRSS(v.ws)
		if !math.IsNaN(vsBare) {
			fmt.Fprintf(tw, "weft (%s) ÷ slower of bare consume, bare insert\t%.2f\t≥ %.2f\t%s\n", v.name, vsBare, TargetVsBare, verdict(vsBare >= TargetVsBare))
		}
		if !math.IsNaN(vsEngine) {
			fmt.Fprintf(tw, "weft (%s) ÷ Kafka engine, raw rows\t%.2f\t> %.2f\t%s\n", v.name, vsEngine, TargetVsEngine, verdict(vsEngine > TargetVsEngine))
		}
		if !math.IsNaN(vsEngineEvents) {
			fmt.Fprintf(tw, "weft (%s) ÷ Kafka engine, weft's schema\t%.2f\t> %.2f\t%s\n", v.name, vsEngineEvents, TargetVsEngine, verdict(vsEngineEvents > TargetVsEngine))
		}
		fmt.Fprintf(tw, "weft (%s) peak RSS\t%s\t≤ %s\t%s\n", v.name, mb(rss), mb(TargetPeakRSS), verdict(rss <= TargetPeakRSS))
		if v.name == "tap only" && len(rep.Audit) > 0 {
			on, off := median(runsOf(rep.Audit)).Rate(), median(runsOf(rep.Tap)).Rate()
			fmt.Fprintf(tw, "weft (tap) audit trail on ÷ off\t%.2f\t≥ %.2f\t%s\n", on/off, TargetAuditOnOff, verdict(on/off >= TargetAuditOnOff))
		}
		if v.name == "tap only" && len(rep.Tracing) > 0 {
			on, off := median(runsOf(rep.Tracing)).Rate(), median(runsOf(rep.Tap)).Rate()
			fmt.Fprintf(tw, "weft (tap) tracing on ÷ off\t%.2f\t≥ %.2f\t%s\n", on/off, TargetTracingOnOff, verdict(on/off >= TargetTracingOnOff))
			rss := PeakRSS(rep.Tracing)
			fmt.Fprintf(tw, "weft (tap, tracing on) peak RSS\t%s\t≤ %s\t%s\n", mb(rss), mb(TargetPeakRSS), verdict(rss <= TargetPeakRSS))
		}
		if f := Fresh(v.ws); f != nil {
			fmt.Fprintf(tw, "weft (%s) freshness p99 at %s events/s\t%s\t≤ %s\t%s\n", v.name, thousands(f.Rate), secs(f.P99),
				secs(TargetFreshnessP99), verdict(f.P99 <= TargetFreshnessP99))
		}
	}
	if r := rep.Replay; r != nil {
		fmt.Fprintf(tw, "weft replay ÷ bare franz-go producer\t%.2f\t≥ %.2f\t%s\n", r.Ratio(), TargetReplayVsProducer, verdict(r.Ratio() >= TargetReplayVsProducer))
	}
	if ver != nil {
		fmt.Fprintf(tw, "weft audit verify ÷ bare SELECT of its columns\t%.2f\t≥ %.2f\t%s\n", ver.Ratio(), TargetVerifyVsSelect,
			verdict(ver.Ratio() >= TargetVerifyVsSelect))
		fmt.Fprintf(tw, "weft audit verify peak RSS\t%s\t≤ %s\t%s\n", mb(ver.PeakRSS), mb(TargetVerifyRSS), verdict(ver.PeakRSS <= TargetVerifyRSS))
		fmt.Fprintf(tw, "weft audit verify findings on untouched data\t%d\t0\t%s\n", ver.Findings, verdict(ver.Findings == 0 && ver.Verdict == "verified"))
	}
	tw.Flush()
}

func perEvent(d time.Duration, n int) float64 {
	return float64(d.Microseconds()) / float64(max(n, 1))
}

func runsNote(runs []Run) string {
	if len(runs) <= 1 {
		return "1"
	}
	parts := make([]string, len(runs))
	for i, r := range runs {
		parts[i] = thousands(r.Rate())
	}
	return fmt.Sprintf("median of %d (%s)", len(runs), strings.Join(parts, ", "))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

// thousands formats a rounded number with comma separators.
func thousands(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
