package consistency

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

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
// interval again once the tap caught up.
func TestDetectorYieldsToBacklog(t *testing.T) {
	store := testenv.Store(t)
	var behind atomic.Bool
	behind.Store(true)
	d := NewDetector(NewEngine(store, Builtin()), 50*time.Millisecond, Default().Windows,
		Settings{Behind: behind.Load, BacklogInterval: 600 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	time.Sleep(1500 * time.Millisecond)
	passes := testutil.ToFloat64(d.passes)
	// At 0, 0.6 and 1.2 s; 30 without yielding.
	assert.GreaterOrEqual(t, passes, 1.0)
	assert.LessOrEqual(t, passes, 3.0, "passes while the tap was behind")
	assert.Positive(t, testutil.ToFloat64(d.yields))

	behind.Store(false)
	require.Eventually(t, func() bool { return testutil.ToFloat64(d.passes) >= passes+4 }, 10*time.Second, 20*time.Millisecond,
		"passes resume every interval once the tap caught up")
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
