package benchkit

import (
	"context"
	"fmt"
	"time"
)

// WeftResult is one `weft run` over the backlog.
type WeftResult struct {
	Run
	// PeakRSS is VmHWM once the backlog is stored; PeakRSSEnd after the
	// freshness phase too (zero without one).
	PeakRSS, PeakRSSEnd int64
	// InsertWall is the time weft spent in ClickHouse inserts (its
	// insert_duration_seconds), over Inserts batches, until the backlog
	// was stored: the rest of the run it fetched and decoded.
	InsertWall time.Duration
	Inserts    int
	Fresh      *Freshness
	// Verify is `weft audit verify` over what the run stored, with the
	// audit trail on (nil otherwise).
	Verify *VerifyResult
	// Trace is the Tracer's work once the backlog was stored, with tracing
	// on (nil otherwise).
	Trace *TraceResult
}

// TraceResult is how far the Tracer, which follows the tap by
// consistency.settle plus its interval (docs/tracing.md), had got when the
// backlog was stored, and how long it took after that to store the span of
// every stored event.
type TraceResult struct {
	// Events are the distinct (order, event id) pairs stored: one span each.
	Events uint64
	// SpansAtBacklog are the spans in otel_traces when the backlog was stored.
	SpansAtBacklog uint64
	// Spans are the spans stored in the end; CaughtUp the time from the
	// backlog stored until they were all there (or the wait gave up).
	Spans    uint64
	CaughtUp time.Duration
	// CPU is weft's CPU from the backlog stored until then: the Tracer's,
	// the tap being idle.
	CPU time.Duration
	// PeakRSS is weft's VmHWM then.
	PeakRSS int64
}

// weftRun starts weft, waits until every record of topic is stored (events
// plus quarantine), reads its peak RSS, CPU and insert time, then measures
// freshness on fresh if asked, and stops it. With the audit trail on, it
// then measures `weft audit verify` over what weft stored.
func weftRun(ctx context.Context, o Options, admin *Server, c WeftConfig, topic, fresh string, measureFresh bool) (WeftResult, error) {
	defer admin.dropDatabase(ctx, c.Database)
	var res WeftResult
	// Plain counts, answered from the parts' row counts: a filter on the
	// topic would make every poll (20 a second) read the topic column of
	// every stored row, ClickHouse CPU that weft would be charged with.
	// Exact while the backlog is read: the freshness topic, weft's only
	// other one, stays empty until the backlog is stored.
	count, err := admin.rowCounter(c.Database, "events", "quarantine")
	if err != nil {
		return res, err
	}
	m := startCPU(ctx, admin)
	start := time.Now()
	proc, err := StartWeft(c)
	if err != nil {
		return res, err
	}
	defer proc.Stop() //nolint:errcheck // stopped explicitly below; this is for the error paths
	res.Run, err = waitRows(ctx, count, o.Workload.Records, start, proc.Alive)
	if err != nil {
		return res, fmt.Errorf("weft: %w", err)
	}
	if res.PeakRSS, err = proc.PeakRSS(); err != nil {
		return res, err
	}
	if res.ClientCPU, err = proc.CPU(); err != nil {
		return res, err
	}
	m.stop(ctx, &res.Run)
	if res.InsertWall, res.Inserts, err = proc.InsertTime(); err != nil {
		return res, err
	}
	if c.Tracing {
		t, err := waitSpans(ctx, admin, c.Database, proc, res.ClientCPU)
		if err != nil {
			return res, err
		}
		o.Logf("tracing: %d spans of %d events stored when the backlog was; %d after %s more, CPU %s", t.SpansAtBacklog,
			t.Events, t.Spans, t.CaughtUp.Round(time.Millisecond), t.CPU.Round(time.Millisecond))
		res.Trace = &t
	}
	if measureFresh {
		o.Logf("freshness: %d events/s for %s into %s", o.FreshRate, o.FreshFor, fresh)
		f, err := MeasureFreshness(ctx, admin, FreshnessConfig{
			Brokers: o.Brokers, Topic: fresh, Database: c.Database,
			Rate: o.FreshRate, Duration: o.FreshFor, Workload: o.Workload,
		})
		if err != nil {
			return res, fmt.Errorf("freshness: %w\n%s", err, proc.LogTail())
		}
		o.Logf("freshness: p50 %s, p99 %s, max %s", f.P50, f.P99, f.Max)
		res.Fresh = &f
		if res.PeakRSSEnd, err = proc.PeakRSS(); err != nil {
			return res, err
		}
	}
	if err := proc.Stop(); err != nil {
		return res, fmt.Errorf("weft stop: %w\n%s", err, proc.LogTail())
	}
	if c.Audit {
		o.Logf("audit verify over %s", c.Database)
		v, err := measureVerify(ctx, admin, c)
		if err != nil {
			return res, err
		}
		o.Logf("audit verify: %s, %d leaves, %s, peak RSS %s, CPU %s; bare select: %s", v.Verdict, v.Leaves, v.Run,
			mb(v.PeakRSS), v.ClientCPU.Round(time.Millisecond), v.Bare)
		res.Verify = &v
	}
	return res, nil
}

// traceWait bounds the wait for the Tracer to store every span after the
// backlog: it follows the tap by about 11 s and reads 5,000 events a pass.
const traceWait = 3 * time.Minute

// waitSpans counts the spans stored when the backlog was, then polls until
// otel_traces holds one per stored event (or traceWait passed: the result
// says how many there were).
func waitSpans(ctx context.Context, admin *Server, db string, proc *Weft, cpuAtBacklog time.Duration) (TraceResult, error) {
	var t TraceResult
	start := time.Now()
	spans, err := admin.rowCounter(db, "otel_traces")
	if err != nil {
		return t, err
	}
	if t.SpansAtBacklog, err = spans(ctx); err != nil {
		return t, fmt.Errorf("count spans: %w", err)
	}
	if t.Events, err = admin.distinctEvents(ctx, db); err != nil {
		return t, err
	}
	t.Spans = t.SpansAtBacklog
	for t.Spans < t.Events && time.Since(start) < traceWait {
		if err := proc.Alive(); err != nil {
			return t, err
		}
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if t.Spans, err = spans(ctx); err != nil {
			return t, fmt.Errorf("count spans: %w", err)
		}
	}
	t.CaughtUp = time.Since(start)
	cpu, err := proc.CPU()
	if err != nil {
		return t, err
	}
	t.CPU = cpu - cpuAtBacklog
	t.PeakRSS, err = proc.PeakRSS()
	return t, err
}
