package consistency

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/testenv"
)

// TestYieldRule: a pass is put off only while the tap is behind, after a
// first pass, within BacklogInterval of the last one, and only when a
// backlog interval is set.
func TestYieldRule(t *testing.T) {
	behind, caughtUp := func() bool { return true }, func() bool { return false }
	recent, old := time.Now().Add(-time.Second), time.Now().Add(-2*time.Minute)
	for _, tc := range []struct {
		name    string
		behind  func() bool
		backlog time.Duration
		last    time.Time
		want    bool
	}{
		{"behind, recent pass", behind, time.Minute, recent, true},
		{"behind, pass older than the backlog interval", behind, time.Minute, old, false},
		{"behind, no pass yet", behind, time.Minute, time.Time{}, false},
		{"caught up", caughtUp, time.Minute, recent, false},
		{"no backlog interval", behind, 0, recent, false},
		{"no tap", nil, time.Minute, recent, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDetector(nil, time.Second, Windows{}, Settings{Behind: tc.behind, BacklogInterval: tc.backlog})
			assert.Equal(t, tc.want, d.yield(tc.last))
		})
	}
}

// TestDetectorYieldsToBacklog: while the tap says it is behind, Run passes
// about once a backlog interval instead of once an interval, and at every
// interval again once the tap caught up. The wall clock is a fake one
// stepped an interval at a time: each tick ends in exactly one pass or
// one yield, which the test waits for before the next step.
func TestDetectorYieldsToBacklog(t *testing.T) {
	store := testenv.Store(t)
	var behind atomic.Bool
	behind.Store(true)
	const interval = 50 * time.Millisecond
	wall := clockwork.NewFakeClock()
	d := NewDetector(NewEngine(store, Builtin()), interval, Default().Windows,
		Settings{Behind: behind.Load, BacklogInterval: 600 * time.Millisecond, WallClock: wall})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	turns := func() float64 { return testutil.ToFloat64(d.passes) + testutil.ToFloat64(d.yields) }
	require.Eventually(t, func() bool { return turns() == 1 }, 10*time.Second, time.Millisecond, "the first pass")
	step := func() {
		t.Helper()
		want := turns() + 1
		require.NoError(t, wall.BlockUntilContext(ctx, 1)) // Run's ticker exists
		wall.Advance(interval)
		require.Eventually(t, func() bool { return turns() == want }, 10*time.Second, time.Millisecond,
			"one pass or yield per tick")
	}
	for range 30 { // 1.5 s of ticks
		step()
	}
	passes := testutil.ToFloat64(d.passes)
	// At 0, 0.6 and 1.2 s; 31 without yielding.
	assert.GreaterOrEqual(t, passes, 1.0)
	assert.LessOrEqual(t, passes, 3.0, "passes while the tap was behind")
	assert.Positive(t, testutil.ToFloat64(d.yields))

	behind.Store(false)
	for range 4 {
		step()
	}
	assert.Equal(t, passes+4, testutil.ToFloat64(d.passes), "passes resume every interval once the tap caught up")
}

func TestBacklogIntervalConfig(t *testing.T) {
	c := Default()
	assert.NoError(t, c.Validate())
	for _, bad := range []time.Duration{-time.Second, 3*c.Interval + time.Minute + time.Second} {
		c.BacklogInterval = bad
		assert.ErrorContains(t, c.Validate(), "backlog_interval", bad)
	}
	c.BacklogInterval, c.Interval = time.Minute, 24*time.Hour // below interval: no effect, valid
	assert.NoError(t, c.Validate())
}
