package tracing

import (
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/assert"
)

// TestTracerYieldsToABackloggedTap: while the tap is behind, a pass is put
// off until backlog_interval after the last one began; not when the tap
// keeps up, not before any pass, not with backlog_interval at or below the
// interval, and not without a Behind signal.
func TestTracerYieldsToABackloggedTap(t *testing.T) {
	clock := clockwork.NewFakeClock()
	behind := true
	cfg := Default()
	tr := &Tracer{cfg: cfg, clock: clock, behind: func() bool { return behind }}
	last := clock.Now()

	assert.False(t, tr.yield(time.Time{}), "the first pass runs")
	clock.Advance(cfg.Interval)
	assert.True(t, tr.yield(last), "the tap is behind: put off")
	clock.Advance(cfg.BacklogInterval - cfg.Interval - time.Millisecond)
	assert.True(t, tr.yield(last), "still within backlog_interval")
	clock.Advance(time.Millisecond)
	assert.False(t, tr.yield(last), "backlog_interval after the last pass: it runs")

	last = clock.Now()
	behind = false
	assert.False(t, tr.yield(last), "the tap keeps up")

	behind = true
	tr.cfg.BacklogInterval = tr.cfg.Interval
	assert.False(t, tr.yield(last), "backlog_interval at the interval: no effect")
	tr.cfg.BacklogInterval = 0
	assert.False(t, tr.yield(last), "0: no effect")
	tr.cfg.BacklogInterval, tr.behind = time.Minute, nil
	assert.False(t, tr.yield(last), "no Behind signal")
}
