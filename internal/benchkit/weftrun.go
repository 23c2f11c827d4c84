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
}

// weftRun starts weft, waits until every record of topic is stored (events
// plus quarantine), reads its peak RSS, CPU and insert time, then measures
// freshness on fresh if asked, and stops it.
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
	return res, nil
}
